"""Harness for tests/app: run app/server.py the way the container does (`cd app && python server.py`)
on a free port, talk to it over real HTTP, and never leave a process behind."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

APP_DIR = Path(__file__).resolve().parents[2] / "app"
GREETING = "hello-from-the-secret-7f3a"  # distinctive, so the log check is meaningful


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, path: str, method: str = "GET", timeout: float = 5.0):
    """One request on its own connection -> (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def parse_metrics(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label items): value} via prometheus_client's parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class Server:
    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_MULTIPROC")},
            "GREETING": GREETING,
            "FAIL_RATE": "0",
            "READINESS_DELAY_SEC": "0",
            "SHUTDOWN_DRAIN_SEC": "0.5",
            "PORT": str(self.port),
            **env,
        }
        self.env = {k: v for k, v in self.env.items() if v is not None}
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "server.py"], cwd=APP_DIR, env=self.env,
            stdout=self._out, stderr=self._err, start_new_session=True,
        )

    # -- lifecycle ----------------------------------------------------------
    def wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.stderr()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("server did not listen in time")

    def wait_ready(self, timeout: float = 10.0) -> None:
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.02)
        raise AssertionError("server not ready in time")

    def stop(self) -> None:
        """SIGINT (shutdown without the drain delay), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        # A pre-forked worker can outlive a SIGKILLed parent: sweep the group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # -- I/O --------------------------------------------------------------------
    def get(self, path: str, method: str = "GET", timeout: float = 5.0):
        return request(self.port, path, method, timeout)

    def metrics(self) -> dict:
        status, headers, body = self.get("/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain")
        return parse_metrics(body.decode())

    def stdout(self) -> str:
        self._out.seek(0)
        return self._out.read().decode()

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read().decode()

    def access_lines(self) -> list[dict]:
        lines = [json.loads(line) for line in self.stdout().splitlines() if line.strip()]
        return [d for d in lines if d.get("logger") == "access"]
