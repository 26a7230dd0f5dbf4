"""kubectl port-forwards that always end: recorded in the state directory, stopped on
exit, error or Ctrl-C, and cleaned up after a killed run by `hpa_stop`/`teardown`.
"""
from __future__ import annotations

import os
import re
import signal
import time
from contextlib import contextmanager

from tasks.core import console, kube, names, state
from tasks.core.errors import LabError
from tasks.core.tools import stop_process

PIDS = "portforwards"


def _records_dir():
    path = state.path(PIDS)
    path.mkdir(exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_port_forward(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"port-forward" in f.read()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): trust the record
        return True


@contextmanager
def forward(lab, namespace: str, target: str = f"svc/{names.APP}", remote: int = names.APP_PORT, wait: float = 30):
    """Yield the base URL of a port-forward on a free local port chosen by kubectl."""
    log = _records_dir() / f"{namespace}-{target.replace('/', '-')}-{os.getpid()}.log"
    proc = lab.background("kubectl", *kube.kubectl_args(lab.cfg, "-n", namespace, "port-forward", target,
                                                        f":{remote}", "--address", "127.0.0.1"), log=str(log))
    record = _records_dir() / f"{proc.pid}.pid"
    record.write_text(f"{namespace} {target}\n")
    try:
        deadline = time.monotonic() + wait
        while True:
            text = log.read_text() if log.exists() else ""
            found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", text)
            if found:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"port-forward to {target} in {namespace} did not start",
                               text.strip().splitlines()[-1] if text.strip() else "kubectl printed nothing",
                               f"check `kubectl -n {namespace} get pods`; is the app running?")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        stop_process(proc)
        record.unlink(missing_ok=True)
        log.unlink(missing_ok=True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # its own session: this reaches kubectl's children too
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    return True  # a zombie has ended; its (dead) parent's init reaps it
        except FileNotFoundError:
            return True
        except OSError:  # no /proc (macOS)
            if not _alive(pid):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _end(pid: int, grace: float = 5) -> None:
    """SIGTERM, wait until it has really ended, SIGKILL if it will not: "ended" must be true."""
    _signal(pid, signal.SIGTERM)
    if not _gone(pid, grace):
        _signal(pid, signal.SIGKILL)
        _gone(pid, grace)


def stop_leftovers() -> int:
    """End port-forwards left by a killed run. Returns how many were ended."""
    ended = 0
    for record in sorted(_records_dir().glob("*.pid")):
        pid = int(record.stem)
        if _alive(pid) and _is_port_forward(pid):
            _end(pid)
            ended += 1
            console.info(f"ended port-forward pid {pid} ({record.read_text().strip()})")
        record.unlink(missing_ok=True)
    for log in _records_dir().glob("*.log"):
        log.unlink(missing_ok=True)
    return ended


def answers(url: str, timeout: float = 30) -> bool:
    """True once URL (through a port-forward) answers 200 within TIMEOUT seconds: a UI's health page."""
    import urllib.error
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as res:
                if res.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def hold_forever(_base: str = "") -> None:
    """Keep a port-forward of a UI open until Ctrl-C (`doit grafana`, `doit prometheus`)."""
    while True:
        time.sleep(3600)
