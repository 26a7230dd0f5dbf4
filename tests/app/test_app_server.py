"""app/server.py over real HTTP, started exactly as the container starts it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from app_harness import APP_DIR, GREETING, free_port, request

WORK = ("endpoint", "/work"), ("method", "GET")


def work_count(m) -> float:
    return m[("http_request_duration_seconds_count", WORK)]


def requests_total(m, endpoint: str, code: str | None = None) -> float:
    return sum(
        v for (name, labels), v in m.items()
        if name == "http_requests_total"
        and dict(labels)["endpoint"] == endpoint
        and (code is None or dict(labels)["code"] == code)
    )


# --- routes --------------------------------------------------------------------


def test_healthz(server):
    status, headers, body = server.get("/healthz")
    assert (status, body) == (200, b"ok")


def test_readyz_when_ready(server):
    assert server.get("/readyz")[:3:2] == (200, b"ok")


def test_work_success_returns_greeting(start_server):
    srv = start_server(FAIL_RATE="0")
    srv.wait_ready()
    t0 = time.monotonic()
    status, headers, body = srv.get("/work")
    elapsed = time.monotonic() - t0
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"ok": True, "greeting": GREETING}
    assert 0.045 <= elapsed < 0.5


def test_metrics_route_is_prometheus_text(server):
    server.get("/healthz")
    m = server.metrics()
    key = ("http_requests_total", (("code", "200"), ("endpoint", "/healthz"), ("method", "GET")))
    assert m[key] == 1
    # a gauge of in-flight requests exists (the scrape itself is in flight)
    assert m[("http_requests_in_flight", ())] == 1


def test_unknown_path_and_method(server):
    assert server.get("/nope")[0] == 404
    status, headers, _ = server.get("/work", method="POST")
    assert status == 405 and "GET" in headers["allow"]
    m = server.metrics()
    assert requests_total(m, "unmatched", "404") == 1  # bounded label, not the raw path
    assert requests_total(m, "/work", "405") == 1


def test_head_has_no_body(server):
    status, headers, body = server.get("/healthz", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "2"


# --- readiness delay ------------------------------------------------------------


def test_readiness_delay(start_server):
    delay = 1.5
    srv = start_server(READINESS_DELAY_SEC=str(delay))
    srv.wait_listening()
    status, _, body = srv.get("/readyz")
    assert time.monotonic() - srv.started_at < delay, "server took too long to start"
    assert (status, body) == (503, b"starting")
    assert srv.get("/healthz")[0] == 200  # alive while not ready
    while srv.get("/readyz")[0] == 503:
        assert time.monotonic() - srv.started_at < delay + 2
        time.sleep(0.05)
    assert time.monotonic() - srv.started_at >= delay
    assert srv.get("/readyz")[0] == 200


# --- FAIL_RATE -----------------------------------------------------------------------


def _parallel_work(port: int, n: int, workers: int = 20):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: request(port, "/work"), range(n)))


def test_fail_rate_one_always_fails(start_server):
    srv = start_server(FAIL_RATE="1")
    srv.wait_ready()
    for status, _headers, body in _parallel_work(srv.port, 20):
        doc = json.loads(body)
        assert status == 500
        assert doc["ok"] is False and isinstance(doc["error"], str) and doc["error"]
        assert GREETING.encode() not in body


def test_fail_rate_zero_never_fails(start_server):
    srv = start_server(FAIL_RATE="0")
    srv.wait_ready()
    results = _parallel_work(srv.port, 40)
    assert [r[0] for r in results] == [200] * 40
    assert all(json.loads(r[2])["greeting"] == GREETING for r in results)


# --- metrics accuracy ------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_work_request_observed_once(start_server, workers):
    """Successes and failures alike land in the latency histogram (the original's bug)."""
    srv = start_server(FAIL_RATE="0.5", WEB_CONCURRENCY=workers)
    srv.wait_ready()
    n = 60
    results = _parallel_work(srv.port, n)
    ok = sum(1 for r in results if r[0] == 200)
    failed = sum(1 for r in results if r[0] == 500)
    assert ok + failed == n and ok > 0 and failed > 0

    m = srv.metrics()
    assert work_count(m) == n
    assert m[("http_request_duration_seconds_bucket", (*WORK[:1], ("le", "+Inf"), WORK[1]))] == n
    assert requests_total(m, "/work", "200") == ok
    assert requests_total(m, "/work", "500") == failed
    mean = m[("http_request_duration_seconds_sum", WORK)] / n
    assert 0.05 <= mean <= 0.25
    # buckets resolve the 50-200 ms range
    les = {float(dict(labels)["le"]) for (name, labels) in m
           if name == "http_request_duration_seconds_bucket" and dict(labels)["endpoint"] == "/work"}
    for edge in (0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2):
        assert edge in les
    assert m[("http_requests_in_flight", ())] == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_concurrent_requests_do_not_corrupt_counters(start_server, workers):
    srv = start_server(FAIL_RATE="0.3", WEB_CONCURRENCY=workers)
    srv.wait_ready()
    n = 300
    with ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(lambda _: request(srv.port, "/work")[0], range(n)))
    m = srv.metrics()
    assert work_count(m) == n
    assert requests_total(m, "/work") == n
    assert requests_total(m, "/work", "500") == statuses.count(500)
    if workers == "2":  # the load really was spread over both workers
        pids = {line["pid"] for line in srv.access_lines() if line["path"] == "/work"}
        assert len(pids) == 2


# --- logging ----------------------------------------------------------------------------


def test_one_json_log_line_per_request_and_greeting_never_logged(start_server):
    srv = start_server(FAIL_RATE="0.5")
    srv.wait_ready()
    before = len(srv.access_lines())
    paths = ["/work"] * 6 + ["/healthz", "/readyz", "/nope", "/metrics"]
    statuses = [srv.get(p)[0] for p in paths]
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10) == 0
    lines = srv.access_lines()[before:]
    assert [(d["method"], d["path"], d["status"]) for d in lines] == [
        ("GET", p, s) for p, s in zip(paths, statuses, strict=True)
    ]
    assert all(isinstance(d["duration_s"], float) for d in lines)
    out = srv.stdout() + srv.stderr()
    for line in out.splitlines():
        json.loads(line)  # every line is structured
    assert GREETING not in out


# --- configuration --------------------------------------------------------------------------

BAD = [
    ("FAIL_RATE", "1.5", "[0, 1]"),
    ("FAIL_RATE", "-0.1", "[0, 1]"),
    ("FAIL_RATE", "abc", "[0, 1]"),
    ("FAIL_RATE", "nan", "[0, 1]"),
    ("FAIL_RATE", "", "[0, 1]"),
    ("READINESS_DELAY_SEC", "-1", ">= 0"),
    ("READINESS_DELAY_SEC", "soon", ">= 0"),
    ("READINESS_DELAY_SEC", "inf", ">= 0"),
    ("GREETING", "", "non-empty"),
    ("GREETING", "   ", "non-empty"),
    ("GREETING", None, "non-empty"),  # unset
    ("PORT", "0", "[1, 65535]"),
    ("WEB_CONCURRENCY", "zero", "[1, 64]"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_bad_configuration_refused(name, value, accepted):
    port = free_port()
    env = {**os.environ, "GREETING": GREETING, "FAIL_RATE": "0.1", "READINESS_DELAY_SEC": "0",
           "PORT": str(port)}
    if value is None:
        env.pop(name, None)
    else:
        env[name] = value
    if name == "PORT":
        port = None
    # Refused before anything starts: the process ends by itself (the timeout only guards a hang; how
    # fast is no test's business here) with one line on stderr, nothing logged, no port bound.
    proc = subprocess.run([sys.executable, "server.py"], cwd=APP_DIR, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert name in line and accepted in line
    assert (repr(value) if value is not None else "<unset>") in line
    assert proc.stdout == ""  # nothing started, nothing logged
    if port is not None:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()


def test_good_edge_values_accepted(start_server):
    srv = start_server(FAIL_RATE="1.0", READINESS_DELAY_SEC="0.0")
    srv.wait_ready()
    assert srv.get("/work")[0] == 500


# --- SIGTERM --------------------------------------------------------------------------------


def _wait_in_flight(srv, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # the scrape itself counts as one in-flight request
        if srv.metrics()[("http_requests_in_flight", ())] >= n + 1:
            return
        time.sleep(0.005)
    raise AssertionError(f"never saw {n} requests in flight")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_in_flight_requests(start_server, workers):
    srv = start_server(FAIL_RATE="0", WEB_CONCURRENCY=workers, SHUTDOWN_DRAIN_SEC="0.5")
    srv.wait_ready()
    n = 30
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(request, srv.port, "/work") for _ in range(n)]
        _wait_in_flight(srv, 1)
        t_term = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        status, _, body = srv.get("/readyz")
        if workers != "1":
            # SIGTERM reaches PID 1 (the parent), which flips a flag shared with
            # the workers: a request racing the parent's handler by a few
            # microseconds may still see 200, so allow a few milliseconds.
            while status == 200 and time.monotonic() - t_term < 0.05:
                status, _, body = srv.get("/readyz")
        assert (status, body) == (503, b"draining")
        assert time.monotonic() - t_term < 0.3
        assert srv.get("/healthz")[0] == 200  # liveness unaffected
        results = [f.result(timeout=10) for f in futures]
    assert [r[0] for r in results] == [200] * n
    assert srv.proc.wait(timeout=10) == 0
    assert time.monotonic() - t_term < 3  # drain 0.5 s + in-flight <= 0.2 s + slack
    assert len([d for d in srv.access_lines() if d["path"] == "/work"]) == n


def _request_together(port: int, barrier: threading.Barrier, path: str = "/work"):
    """One request on its own connection, connected first and sent when every other one is connected
    too: a /work request can end 50 ms after it is sent, so N requests sent one by one by threads that
    start under load are not all in flight at once."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.connect()
        barrier.wait(timeout=10)
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_sigterm_without_drain_still_finishes_in_flight(start_server):
    srv = start_server(FAIL_RATE="0", SHUTDOWN_DRAIN_SEC="0")
    srv.wait_ready()
    n = 20
    barrier = threading.Barrier(n)
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(_request_together, srv.port, barrier) for _ in range(n)]
        _wait_in_flight(srv, n)
        srv.proc.send_signal(signal.SIGTERM)
        results = [f.result(timeout=10) for f in futures]
    assert [r[0] for r in results] == [200] * n
    assert srv.proc.wait(timeout=5) == 0
    # the listener is closed: a new client is refused rather than left hanging
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=0.5).close()


def test_keeps_serving_new_requests_while_draining(start_server):
    srv = start_server(FAIL_RATE="0", SHUTDOWN_DRAIN_SEC="1")
    srv.wait_ready()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    status, headers, _ = srv.get("/work")
    assert status == 200 and headers.get("connection") == "close"
    assert srv.proc.wait(timeout=5) == 0


# --- process hygiene (pre-forked workers) -------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        out = []
        for t in tasks:
            out += [int(c) for c in open(f"/proc/{pid}/task/{t}/children").read().split()]
        return out
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_die_with_their_parent(start_server, tmp_path):
    # a SIGKILLed parent cannot remove its own metrics directory: use pytest's
    srv = start_server(WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    srv.wait_ready()
    workers = _children(srv.proc.pid)
    assert len(workers) == 2
    srv.proc.kill()  # SIGKILL: no chance to forward anything
    srv.proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "orphaned worker still running"
        time.sleep(0.05)


def test_stale_multiprocess_files_are_discarded(start_server, tmp_path):
    first = start_server(WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    first.wait_ready()
    for _ in range(3):
        first.get("/healthz")
    first.stop()
    assert list(tmp_path.glob("*.db"))  # a previous run's counters are on disk
    second = start_server(WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    second.wait_ready()
    key = ("http_requests_total", (("code", "200"), ("endpoint", "/healthz"), ("method", "GET")))
    assert second.metrics().get(key, 0) == 0
    second.stop()
    assert tmp_path.exists()  # a directory given by the environment is not removed


def test_own_multiprocess_directory_is_removed(start_server):
    srv = start_server(WEB_CONCURRENCY="2")
    srv.wait_ready()
    first = json.loads(srv.stdout().splitlines()[0])
    metrics_dir = first["msg"].rsplit("metrics_dir=", 1)[1]
    assert metrics_dir.startswith("/tmp/app-metrics-") and os.path.isdir(metrics_dir)
    srv.stop()
    assert not os.path.exists(metrics_dir)
