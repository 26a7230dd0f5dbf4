#!/usr/bin/env python3
"""Benchmark the app's /work endpoint against its theoretical limit.

/work sleeps uniformly 50-200 ms (mean 0.125 s), so with N concurrent clients
the best possible throughput is N / 0.125 req/s (Little's law):
concurrency 32 -> 256, 200 -> 1,600, 1,000 -> 8,000 req/s.

For each concurrency the script reports requests/s, % of that limit,
p50 / p99 / max latency, non-2xx count and errors, plus the resident memory
(RSS) of every server process (gunicorn master and each worker).

Load generator: `hey -z <duration> -c N -o csv` (per-request latencies) when
`hey` is on PATH (Debian: `apt-get install hey`); otherwise a built-in asyncio
keep-alive client is used (less accurate: it shares Python's CPU costs).

This is a script, not a timed test:

    python hack/bench/app_bench.py                      # app/server.py, defaults
    python hack/bench/app_bench.py -c 200 -c 1000 -w 1  # WEB_CONCURRENCY=1
    python hack/bench/app_bench.py --design gunicorn-gevent      # a rejected candidate
    python hack/bench/app_bench.py --cmd "python my_candidate.py" --cwd /tmp/x

--design runs one of the candidate designs compared in hack/bench/README.md.
They are embedded below (same routes, metrics and JSON access log as
app/server.py, minus config validation and drain) and need packages that the
image does not ship: gunicorn, gevent, starlette, flask (pip install them).

Targets (see hack/bench/README.md): >= 95 % of the limit at 200 with
p99 <= 0.22 s; >= 85 % at 1,000 with p99 <= 0.25 s; no request above 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEAN_LATENCY_S = 0.125  # mean of uniform(0.05, 0.2)
TARGETS = {200: (0.95, 0.22), 1000: (0.85, 0.25)}  # concurrency: (share, p99)
MAX_ALLOWED_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"server not ready at {url} within {timeout}s")


def process_tree(pid: int) -> list[int]:
    """pid plus all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    return total


# --- candidate designs (for the comparison in README.md) ----------------------

CANDIDATE_COMMON = r'''
import json, os, random, sys, time
from prometheus_client import Counter, Gauge, Histogram, generate_latest, REGISTRY, CollectorRegistry
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25, 0.3,
           0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
REQ = Counter("http_requests_total", "r", ["method", "endpoint", "code"])
LAT = Histogram("http_request_duration_seconds", "l", ["endpoint", "method"], buckets=BUCKETS)
INF = Gauge("http_requests_in_flight", "i", multiprocess_mode="livesum")
FAIL = float(os.environ.get("FAIL_RATE", "0"))
GREETING = os.environ.get("GREETING", "hi")
ROUTES = ("/healthz", "/readyz", "/work", "/metrics")
def metrics():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        reg = CollectorRegistry(); multiprocess.MultiProcessCollector(reg)
        return generate_latest(reg)
    return generate_latest(REGISTRY)
def record(method, path, status, dur):
    ep = path if path in ROUTES else "unmatched"
    REQ.labels(method, ep, str(status)).inc(); LAT.labels(ep, method).observe(dur)
    sys.stdout.write(json.dumps({"ts": time.time(), "level": "info", "logger": "access",
        "method": method, "path": path, "status": status, "duration_s": round(dur, 6),
        "pid": os.getpid()}) + "\n")
def work_result():
    if random.random() < FAIL:
        return 500, json.dumps({"ok": False, "error": "simulated failure"}).encode()
    return 200, json.dumps({"ok": True, "greeting": GREETING}).encode()
'''

CANDIDATES = {
    # pure-Python parser and stdlib asyncio loop, otherwise identical to server.py
    "uvicorn-h11": ("cand.py", r'''
import asyncio
from cand_common import *
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    t0 = time.perf_counter(); INF.inc(); path = scope["path"]
    try:
        if path == "/work":
            await asyncio.sleep(random.uniform(0.05, 0.2)); code, body = work_result()
        elif path == "/metrics":
            code, body = 200, metrics()
        else:
            code, body = 200, b"ok"
    finally:
        INF.dec()
    record(scope["method"], path, code, time.perf_counter() - t0)
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
if __name__ == "__main__":
    import uvicorn
    uvicorn.run("cand:app", host="0.0.0.0", port=int(os.environ["PORT"]), loop="asyncio",
                http="h11", lifespan="off", access_log=False, backlog=2048,
                workers=int(os.environ.get("WEB_CONCURRENCY", "1")))
'''),
    "uvicorn-starlette": ("cand.py", r'''
import asyncio
from cand_common import *
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
async def work(request):
    await asyncio.sleep(random.uniform(0.05, 0.2))
    if random.random() < FAIL:
        return JSONResponse({"ok": False, "error": "simulated failure"}, 500)
    return JSONResponse({"ok": True, "greeting": GREETING})
async def ok(request):
    return PlainTextResponse("ok")
async def metrics_route(request):
    return Response(metrics(), media_type="text/plain")
inner = Starlette(routes=[Route("/work", work), Route("/healthz", ok), Route("/readyz", ok),
                          Route("/metrics", metrics_route)])
async def app(scope, receive, send):  # pure ASGI middleware: no BaseHTTPMiddleware overhead
    if scope["type"] != "http":
        return await inner(scope, receive, send)
    t0 = time.perf_counter(); INF.inc(); status = [500]
    async def send_wrapper(msg):
        if msg["type"] == "http.response.start":
            status[0] = msg["status"]
        await send(msg)
    try:
        await inner(scope, receive, send_wrapper)
    finally:
        INF.dec()
        record(scope["method"], scope["path"], status[0], time.perf_counter() - t0)
if __name__ == "__main__":
    import uvicorn
    uvicorn.run("cand:app", host="0.0.0.0", port=int(os.environ["PORT"]), loop="uvloop",
                http="httptools", lifespan="off", access_log=False, backlog=2048,
                workers=int(os.environ.get("WEB_CONCURRENCY", "1")))
'''),
    # green threads: gunicorn's gevent worker (pywsgi), a bare WSGI app
    "gunicorn-gevent": ("cand.py", r'''
from gevent import monkey; monkey.patch_all()
import gevent
from cand_common import *
def app(environ, start_response):
    t0 = time.perf_counter(); INF.inc(); path = environ["PATH_INFO"]
    try:
        if path == "/work":
            gevent.sleep(random.uniform(0.05, 0.2)); code, body = work_result()
        elif path == "/metrics":
            code, body = 200, metrics()
        else:
            code, body = 200, b"ok"
    finally:
        INF.dec()
    record(environ["REQUEST_METHOD"], path, code, time.perf_counter() - t0)
    start_response(f"{code} X", [("Content-Length", str(len(body)))])
    return [body]
if __name__ == "__main__":
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-k", "gevent",
              "-w", os.environ.get("WEB_CONCURRENCY", "1"), "--worker-connections", "2000",
              "--backlog", "2048", "-b", "0.0.0.0:" + os.environ["PORT"], "cand:app"])
'''),
    # thread per request: Flask on gunicorn's gthread worker
    "gunicorn-gthread": ("cand.py", r'''
from cand_common import *
from flask import Flask, g, jsonify, request, Response
app = Flask(__name__)
@app.before_request
def before():
    g.t0 = time.perf_counter(); INF.inc()
@app.after_request
def after(resp):
    INF.dec(); record(request.method, request.path, resp.status_code, time.perf_counter() - g.t0)
    return resp
@app.get("/work")
def work():
    time.sleep(random.uniform(0.05, 0.2))
    code, body = work_result()
    return Response(body, code, mimetype="application/json")
@app.get("/healthz")
@app.get("/readyz")
def ok():
    return "ok"
@app.get("/metrics")
def metrics_route():
    return Response(metrics(), mimetype="text/plain")
if __name__ == "__main__":
    if os.environ.get("FLASK_DEV"):
        app.run(host="0.0.0.0", port=int(os.environ["PORT"]), threaded=True)
    else:
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-k", "gthread",
                  "-w", os.environ.get("WEB_CONCURRENCY", "2"),
                  "--threads", os.environ.get("THREADS", "256"), "--backlog", "2048",
                  "-b", "0.0.0.0:" + os.environ["PORT"], "cand:app"])
'''),
}
CANDIDATES["flask-dev"] = CANDIDATES["gunicorn-gthread"]  # run with FLASK_DEV=1


def write_candidate(design: str, workdir: Path) -> tuple[str, dict[str, str]]:
    name, src = CANDIDATES[design]
    (workdir / "cand_common.py").write_text(CANDIDATE_COMMON)
    (workdir / name).write_text(src)
    env = {"FLASK_DEV": "1"} if design == "flask-dev" else {}
    return f"{shlex.quote(sys.executable)} {name}", env


# --- load generators --------------------------------------------------------


def run_hey(url: str, conc: int, duration: float) -> tuple[list[float], list[int], float]:
    cmd = ["hey", "-z", f"{duration}s", "-c", str(conc), "-t", "10", "-o", "csv", url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lats, codes, end = [], [], 0.0
    for row in csv.DictReader(io.StringIO(out)):
        lat = float(row["response-time"])
        lats.append(lat)
        codes.append(int(row["status-code"]))
        end = max(end, float(row["offset"]) + lat)
    return lats, codes, end or duration


async def _client(host, port, path, stop_at, lats, codes):
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    reader = writer = None
    while time.monotonic() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            t0 = time.monotonic()
            writer.write(req)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            lats.append(time.monotonic() - t0)
            codes.append(status)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            codes.append(-1)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def run_builtin(url: str, conc: int, duration: float) -> tuple[list[float], list[int], float]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    lats: list[float] = []
    codes: list[int] = []

    async def main():
        stop_at = time.monotonic() + duration
        await asyncio.gather(
            *(_client(u.hostname, u.port, u.path, stop_at, lats, codes) for _ in range(conc))
        )

    t0 = time.monotonic()
    asyncio.run(main())
    return lats, codes, time.monotonic() - t0


def pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    idx = min(len(sorted_vals) - 1, max(0, int(round(q * len(sorted_vals))) - 1))
    return sorted_vals[idx]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--concurrency", type=int, action="append",
                    help="repeatable; default 32, 200, 1000")
    ap.add_argument("-z", "--duration", type=float, default=10.0, help="seconds per level (10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per level (2)")
    ap.add_argument("-w", "--workers", help="WEB_CONCURRENCY for the server (default: server's own)")
    ap.add_argument("--cmd", default=f"{shlex.quote(sys.executable)} server.py",
                    help="server command (default: python server.py)")
    ap.add_argument("--cwd", default=str(REPO / "app"), help="server working dir (default app/)")
    ap.add_argument("--url", help="benchmark an already running server instead (no RSS figures)")
    ap.add_argument("--design", choices=["server", *CANDIDATES], default="server",
                    help="server = app/server.py (default); others: rejected candidates")
    ap.add_argument("--label", default="", help="name of this design in the output")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--builtin", action="store_true", help="use the built-in client even if hey exists")
    args = ap.parse_args()
    levels = args.concurrency or [32, 200, 1000]
    use_hey = shutil.which("hey") is not None and not args.builtin
    runner = run_hey if use_hey else run_builtin
    if not use_hey:
        why = "--builtin" if args.builtin else "hey not found"
        print(f"{why}: using the built-in asyncio client (less accurate)", file=sys.stderr)

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="app-bench-")
    if args.url:
        base = args.url.rstrip("/")
    else:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, PORT=str(port), FAIL_RATE="0", READINESS_DELAY_SEC="0",
                   GREETING="bench", SHUTDOWN_DRAIN_SEC="0")
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cmd, cwd = args.cmd, args.cwd
        if args.design != "server":
            cmd, extra = write_candidate(args.design, Path(tmp.name))
            cwd = tmp.name
            env.update(extra)
            args.label = args.label or args.design
        args.label = args.label or "server"
        if args.workers:
            env["WEB_CONCURRENCY"] = args.workers
        workers = int(env.get("WEB_CONCURRENCY", "1"))
        if args.design != "server" and workers > 1:
            mp = Path(tmp.name) / "prom"
            mp.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(mp)
        # Per-request logs go to a file: as cheap as a container runtime's pipe,
        # and they do not flood the terminal.
        log = open(Path(tmp.name) / "server.log", "wb")
        proc = subprocess.Popen(shlex.split(cmd), cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        wait_ready(base + "/readyz")

    results = []
    try:
        for conc in levels:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            if args.warmup > 0:
                runner(base + "/work", conc, args.warmup)
            pids = process_tree(proc.pid) if proc else []
            cpu0 = cpu_seconds(pids)
            lats, codes, elapsed = runner(base + "/work", conc, args.duration)
            cpu = cpu_seconds(pids) - cpu0
            lats.sort()
            ok = sum(1 for c in codes if 200 <= c < 300)
            limit = conc / MEAN_LATENCY_S
            rps = ok / elapsed
            rss = [r for r in (rss_mib(p) for p in process_tree(proc.pid)) if r] if proc else []
            res = {
                "label": args.label,
                "concurrency": conc,
                "requests": len(codes),
                "ok": ok,
                "non_2xx": sum(1 for c in codes if c >= 300),
                "errors": sum(1 for c in codes if c < 0),
                "rps": round(rps, 1),
                "limit_rps": limit,
                "share": round(rps / limit, 4),
                "p50": round(pct(lats, 0.50), 4),
                "p99": round(pct(lats, 0.99), 4),
                "max": round(lats[-1], 4) if lats else None,
                "mean": round(statistics.fmean(lats), 4) if lats else None,
                "over_0_5s": sum(1 for x in lats if x > MAX_ALLOWED_S),
                "server_cpu_s_per_s": round(cpu / elapsed, 2) if proc else None,
                "rss_mib": [round(r, 1) for r in rss],
            }
            target = TARGETS.get(conc)
            if target:
                res["meets_target"] = (res["share"] >= target[0] and res["p99"] <= target[1]
                                       and res["over_0_5s"] == 0)
            results.append(res)
            print(
                f"{args.label:>18} c={conc:<5} {rps:8.1f} req/s ({rps / limit:6.1%} of {limit:,.0f})"
                f"  p50={res['p50']:.3f}s p99={res['p99']:.3f}s max={res['max']:.3f}s"
                f"  >0.5s={res['over_0_5s']} non2xx={res['non_2xx']} err={res['errors']}"
                f"  cpu={res['server_cpu_s_per_s']} rss(MiB)={res['rss_mib']}"
                + ("" if target is None else f"  target={'MET' if res['meets_target'] else 'MISSED'}"),
                flush=True,
            )
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        tmp.cleanup()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
