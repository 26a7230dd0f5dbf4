"""Fixtures for the day-2 tests: real local HTTP servers on free loopback ports."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CountingServer:
    """A stdlib HTTP/1.1 server that counts what it answered, by path and status.

    /ok → 200; /mixed → every third request 500; /slow → 200 after 0.2 s;
    /close → 200 with Connection: close; /chunked → 200, chunked body.
    """

    def __init__(self):
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        self.n = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                with outer.lock:
                    outer.n += 1
                    n = outer.n
                status, body, extra = 200, b"ok", {}
                if self.path == "/mixed" and n % 3 == 0:
                    status, body = 500, b"boom"
                elif self.path == "/slow":
                    time.sleep(0.2)
                elif self.path == "/close":
                    extra["Connection"] = "close"
                    self.close_connection = True
                if self.path == "/chunked":
                    self.send_response(status)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in (b"hel", b"lo"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                with outer.lock:
                    outer.counts[(self.path, status)] += 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def total(self, path: str) -> int:
        return sum(n for (p, _), n in self.counts.items() if p == path)


@pytest.fixture
def counting_server():
    srv = CountingServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited: {proc.stderr.read().decode()[-400:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


@pytest.fixture(scope="module")
def app_server():
    """The real app (app/server.py) on a free port, FAIL_RATE 0.25; yields its base URL."""
    if not (REPO / "app" / "server.py").exists():
        pytest.skip("app/server.py is absent")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "GREETING": "test", "FAIL_RATE": "0.25",
           "READINESS_DELAY_SEC": "0", "SHUTDOWN_DRAIN_SEC": "0"}
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=REPO / "app", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/readyz", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
