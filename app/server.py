"""The lab's demo service.

Routes
  GET /healthz  200 "ok" (liveness; stays 200 while draining)
  GET /readyz   503 until READINESS_DELAY_SEC after start and again from the
                moment SIGTERM arrives; 200 "ok" otherwise
  GET /work     sleeps uniform(50, 200) ms; with probability FAIL_RATE answers
                500 {"ok": false, "error": ...}, else 200 {"ok": true, "greeting": GREETING}
  GET /metrics  Prometheus text format

Start it the way the container does:  cd app && python server.py

Environment
  GREETING              (Secret)     non-empty string; never logged
  FAIL_RATE             (ConfigMap)  float in [0, 1]; default 0
  READINESS_DELAY_SEC   (ConfigMap)  finite number >= 0; default 0
  PORT                  port to bind on 0.0.0.0; default 8000
  WEB_CONCURRENCY       worker processes; default 1 (see "Process model")
  SHUTDOWN_DRAIN_SEC    seconds to keep serving, unready, after SIGTERM; default 5
  SHUTDOWN_TIMEOUT_SEC  seconds then allowed for in-flight requests; default 15
  PROMETHEUS_MULTIPROC_DIR  metrics files shared by workers; if set, its old
                        *.db files are deleted at start; if unset and
                        WEB_CONCURRENCY > 1, a fresh /tmp directory, removed at exit

Process model (measured with hack/bench/app_bench.py on 2 cores, hey on the
same cores; the figures are in hack/bench/README.md)
  The workload is sleep-bound: every /work request waits 50-200 ms and needs
  only ~60-70 microseconds of CPU.  Throughput is therefore set by how many
  requests can wait at once, not by CPU, so concurrency comes from an event
  loop (uvicorn + uvloop + httptools, a bare ASGI app), not from processes or
  threads:
    * thread-per-request servers need one thread per waiting request and
      collapse at 1,000 clients (gunicorn gthread 2 x 256 threads: 26 % of
      the limit; Flask's development server: 54 % already at 200 clients);
    * gunicorn + gevent (pure-Python pywsgi) reached 61 % at 1,000 clients;
    * uvicorn + Starlette 81 %, uvicorn with asyncio + the pure-Python h11
      parser 63 %;
    * one uvicorn/uvloop/httptools process, bare ASGI: 96-97 % at 1,000
      clients with p99 ~0.20 s, using ~0.65 core at 7,700 req/s.
  One worker per pod is therefore the default even on 2 cores: one loop
  carries the 8,000 req/s target with half a core to spare, a second process
  measured no faster (the load generator needs the other core) but costs
  ~35 MiB and file-backed metrics.  Scale out with replicas (the HPA), which
  also keeps metrics exact per pod.  WEB_CONCURRENCY=N pre-forks N workers
  sharing one listening socket for CPU-heavy variants; metrics then
  aggregate across workers through prometheus_client's multiprocess mode
  (files under PROMETHEUS_MULTIPROC_DIR, in /tmp, the only writable path).
  No thread pool is involved: nothing in a request blocks.

Shutdown (terminationGracePeriodSeconds 30)
  SIGTERM -> /readyz answers 503 at once; for SHUTDOWN_DRAIN_SEC the server
  keeps accepting and serving (endpoints and kube-proxy need a few seconds to
  stop routing here) and answers with "Connection: close"; then it stops
  listening, lets in-flight requests finish (at most SHUTDOWN_TIMEOUT_SEC) and
  exits 0.  5 + 15 s stays well inside 30 s.  A second SIGTERM or a SIGINT
  skips the drain.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import tempfile
import time

START = time.monotonic()
MAIN_PID = os.getpid()

# --- configuration (stdlib only, so a bad value is reported in milliseconds) --


class ConfigError(ValueError):
    pass


def _number(env, name, default, lo, hi, accepted, integer=False):
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip()) if integer else float(raw.strip())
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"invalid configuration: {name}={raw!r}; accepted: {accepted}")
    return value


def load_config(env=os.environ):
    """Validate the environment; return a dict or raise ConfigError(s).

    Every bad variable yields one line: name, value and accepted range.
    """
    errors = []
    cfg = {}
    checks = [
        ("fail_rate", "FAIL_RATE", 0.0, 0.0, 1.0, "a float in [0, 1]", False),
        ("readiness_delay", "READINESS_DELAY_SEC", 0.0, 0.0, math.inf, "a finite number >= 0 (seconds)", False),
        ("port", "PORT", 8000, 1, 65535, "an integer in [1, 65535]", True),
        ("workers", "WEB_CONCURRENCY", 1, 1, 64, "an integer in [1, 64]", True),
        ("drain", "SHUTDOWN_DRAIN_SEC", 5.0, 0.0, 25.0, "a number in [0, 25] (seconds)", False),
        ("shutdown_timeout", "SHUTDOWN_TIMEOUT_SEC", 15.0, 0.0, 25.0, "a number in [0, 25] (seconds)", False),
    ]
    for key, name, default, lo, hi, accepted, integer in checks:
        try:
            cfg[key] = _number(env, name, default, lo, hi, accepted, integer)
        except ConfigError as exc:
            errors.append(str(exc))
    greeting = env.get("GREETING")
    if greeting is None or not greeting.strip():
        # Only an empty or blank value is ever shown: GREETING is a secret.
        shown = "<unset>" if greeting is None else repr(greeting)
        errors.append(f"invalid configuration: GREETING={shown}; accepted: a non-empty string (from the Secret)")
    else:
        cfg["greeting"] = greeting
    if not errors and cfg["drain"] + cfg["shutdown_timeout"] > 28:
        errors.append(
            "invalid configuration: SHUTDOWN_DRAIN_SEC + SHUTDOWN_TIMEOUT_SEC="
            f"{cfg['drain'] + cfg['shutdown_timeout']:g}; accepted: at most 28 (grace period 30 s)"
        )
    if errors:
        raise ConfigError("\n".join(errors))
    return cfg


def _configure_or_exit():
    try:
        return load_config()
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.stderr.flush()
        sys.exit(2)


OWN_MULTIPROC_DIR = None  # a metrics directory this process created (removed at exit)
if __name__ == "__main__":
    CONFIG = _configure_or_exit()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Given by the environment (e.g. an emptyDir that survives container
        # restarts): drop the previous run's files, or its counters and
        # in-flight gauges would be added to ours.
        import glob

        for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
            os.unlink(stale)
    elif CONFIG["workers"] > 1:
        # Must be set before prometheus_client is imported; inherited by workers.
        OWN_MULTIPROC_DIR = tempfile.mkdtemp(prefix="app-metrics-", dir="/tmp")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = OWN_MULTIPROC_DIR
else:  # imported (e.g. by tests or tools): no validation side effects
    CONFIG = None

import asyncio  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# --- metrics (names are the original's: dashboards depend on them) -----------

# Resolve the 50-200 ms /work range in 25 ms steps; the rest for the fast
# routes and for overload.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2,
    0.225, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)
REQUESTS = Counter(
    "http_requests_total", "HTTP requests by method, endpoint and status code.",
    ["method", "endpoint", "code"],
)
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency (every request, any status).",
    ["endpoint", "method"], buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight", "HTTP requests being served.",
    multiprocess_mode="livesum",
)
ROUTES = ("/healthz", "/readyz", "/work", "/metrics")
UNMATCHED = "unmatched"  # endpoint label of unknown paths: bounded cardinality


def render_metrics():
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# --- logging: one JSON object per line on stdout --------------------------------


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record):
        doc = {"ts": _now(), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage(), "pid": os.getpid()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


log = logging.getLogger("app")


def setup_logging():
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # one write per line, even into a pipe
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").disabled = True  # replaced by access_log()


def access_log(method, path, status, duration):
    # Hot path: a hand-built dict and one write, no logging.LogRecord.
    # The response body (which holds GREETING) is never part of it.
    sys.stdout.write(json.dumps({
        "ts": _now(), "level": "info", "logger": "access", "method": method, "path": path,
        "status": status, "duration_s": round(duration, 6), "pid": os.getpid(),
    }) + "\n")


# --- the ASGI application ---------------------------------------------------------


class State:
    """Readiness state, set by the signal handlers.

    With pre-forked workers the "draining" flag also lives in a shared
    anonymous mmap that the parent sets *before* it forwards SIGTERM, so every
    worker's /readyz turns 503 the moment the parent (PID 1) gets the signal.
    """

    def __init__(self, ready_at):
        self.ready_at = ready_at
        self._draining = False
        self.shared = None  # mmap of 1 byte shared by all processes, or None

    @property
    def draining(self):
        return self._draining or (self.shared is not None and self.shared[0] == 1)

    @draining.setter
    def draining(self, value):
        self._draining = value
        if self.shared is not None:
            self.shared[0] = 1 if value else 0

    def ready(self):
        return not self.draining and time.monotonic() >= self.ready_at


TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
JSON = [(b"content-type", b"application/json")]


class App:
    def __init__(self, cfg, state):
        self.fail_rate = cfg["fail_rate"]
        self.greeting = cfg["greeting"]
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan is off; websockets are not served
            return
        start = time.perf_counter()
        method = scope["method"]
        path = scope["path"]
        endpoint = path if path in ROUTES else UNMATCHED
        IN_FLIGHT.inc()
        try:
            status, headers, body = await self.handle(method, endpoint)
        except Exception:  # noqa: BLE001 - any bug must still be a counted 500
            log.exception("unhandled error on %s %s", method, path)
            status, headers, body = 500, JSON, b'{"ok": false, "error": "internal error"}'
        finally:
            IN_FLIGHT.dec()
        # Recorded before the response is sent, so a client that has its
        # response can rely on seeing it in /metrics.
        duration = time.perf_counter() - start
        REQUESTS.labels(method, endpoint, str(status)).inc()
        LATENCY.labels(endpoint, method).observe(duration)
        access_log(method, path, status, duration)
        headers = headers + [(b"content-length", str(len(body)).encode())]
        if self.state.draining:
            headers.append((b"connection", b"close"))  # move keep-alive clients elsewhere
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if method != "HEAD" else b""})

    async def handle(self, method, endpoint):
        if endpoint == UNMATCHED:
            return 404, TEXT, b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, TEXT + [(b"allow", b"GET, HEAD")], b"method not allowed\n"
        if endpoint == "/work":
            await asyncio.sleep(random.uniform(0.05, 0.2))
            if random.random() < self.fail_rate:
                return 500, JSON, json.dumps({"ok": False, "error": "simulated failure"}).encode()
            return 200, JSON, json.dumps({"ok": True, "greeting": self.greeting}).encode()
        if endpoint == "/healthz":
            return 200, TEXT, b"ok"
        if endpoint == "/readyz":
            if self.state.ready():
                return 200, TEXT, b"ok"
            return 503, TEXT, b"draining" if self.state.draining else b"starting"
        return 200, [(b"content-type", CONTENT_TYPE_LATEST.encode())], render_metrics()


# --- server and process management ----------------------------------------------


def make_server(cfg, state):
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn.Server whose first SIGTERM only marks the pod unready."""

        drain_until = None

        def handle_exit(self, sig, frame):
            # Not recorded in _captured_signals: uvicorn would re-raise it
            # after shutdown and the process would die by SIGTERM, not exit 0.
            state.draining = True  # /readyz -> 503 from now on
            first = self.drain_until is None and not self.should_exit
            if first and sig == signal.SIGTERM and cfg["drain"] > 0:
                self.drain_until = time.monotonic() + cfg["drain"]
                log.info("SIGTERM: unready, draining for %gs", cfg["drain"])
            else:
                if self.should_exit and sig == signal.SIGINT:
                    self.force_exit = True
                self.should_exit = True
                log.info("signal %d: shutting down", sig)

        async def on_tick(self, counter):
            if self.drain_until is not None and time.monotonic() >= self.drain_until:
                self.should_exit = True
            return await super().on_tick(counter)

    config = uvicorn.Config(
        App(cfg, state),
        host="0.0.0.0",
        port=cfg["port"],
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_config=None,  # setup_logging() owns the handlers (JSON)
        access_log=False,  # access_log() writes the per-request line
        server_header=False,
        backlog=2048,  # a burst of 1,000 new connections must not overflow
        timeout_keep_alive=5,
        timeout_graceful_shutdown=cfg["shutdown_timeout"],
    )
    return DrainingServer(config)


def run_single(cfg, state):
    make_server(cfg, state).run()
    return 0


def _die_with_parent(parent_pid):
    """Linux: get SIGTERM if the parent dies, so no worker is ever orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        raise SystemExit(1)


def run_prefork(cfg, state):
    """N workers, forked after binding one shared socket; no restarts.

    A worker that dies unexpectedly stops the whole process with an error, so
    Kubernetes restarts the container rather than it running short-handed.
    """
    import mmap

    state.shared = mmap.mmap(-1, 1)  # MAP_SHARED|MAP_ANONYMOUS: inherited by fork
    server = make_server(cfg, state)
    sock = server.config.bind_socket()
    children = {}
    for _ in range(cfg["workers"]):
        pid = os.fork()
        if pid == 0:  # worker
            code = 1
            try:
                _die_with_parent(MAIN_PID)
                server.run(sockets=[sock])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001
                log.exception("worker crashed")
            finally:
                sys.stdout.flush()
                os._exit(code)
        children[pid] = None
    sock.close()  # only workers listen: once they stop, connections are refused
    stopping = []

    def forward(sig, frame):
        state.draining = True  # all workers' /readyz -> 503 before they even get the signal
        stopping.append(sig)
        for child in children:
            if children[child] is None:
                try:
                    os.kill(child, sig)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    log.info("pre-forked %d workers: %s", len(children), sorted(children))
    failed = False
    while any(v is None for v in children.values()):
        pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        children[pid] = code
        if code != 0 and not (stopping and code == -signal.SIGTERM):
            log.error("worker %d exited with %d", pid, code)
            failed = True
        if not stopping:
            log.error("worker %d exited unexpectedly; stopping", pid)
            failed = True
            forward(signal.SIGTERM, None)
        if MULTIPROC_DIR:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)
    return 1 if failed else 0


def main():
    cfg = CONFIG
    setup_logging()
    state = State(ready_at=START + cfg["readiness_delay"])
    log.info(
        "starting on 0.0.0.0:%d: workers=%d fail_rate=%g readiness_delay=%gs drain=%gs metrics_dir=%s",
        cfg["port"], cfg["workers"], cfg["fail_rate"], cfg["readiness_delay"], cfg["drain"],
        MULTIPROC_DIR or "-",
    )
    if cfg["workers"] == 1:
        return run_single(cfg, state)
    try:
        return run_prefork(cfg, state)
    finally:
        if OWN_MULTIPROC_DIR and os.getpid() == MAIN_PID:
            import shutil

            shutil.rmtree(OWN_MULTIPROC_DIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
