"""Real `doit` runs: Ctrl-C during hpa_demo leaves no port-forward behind; hpa_stop ends the
orphan of a SIGKILLed run. kubectl is tests/day2/stub_kubectl.py (see its docstring)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOIT = [sys.executable, "-m", "doit"]


@pytest.fixture
def lab(tmp_path):
    stub = tmp_path / "kubectl"
    stub.write_text(f"#!{sys.executable}\n" + (Path(__file__).parent / "stub_kubectl.py").read_text())
    stub.chmod(0o755)
    env = {**os.environ, "LAB_STATE_DIR": str(tmp_path / "state"), "STUB_DIR": str(tmp_path),
           "KUBECTL": str(stub), "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("FORCE_COLOR", None)
    procs = []

    def start(*args):
        proc = subprocess.Popen([*DOIT, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        procs.append(proc)
        return proc

    def forwarders() -> list[int]:
        f = tmp_path / "port-forward.pids"
        return [int(x) for x in f.read_text().split()] if f.exists() else []

    yield start, forwarders, env
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for pid in forwarders():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone(pid: int, within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def read_until(proc, text: str, timeout: float = 20) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} not printed; got:\n{''.join(seen)}")


def test_ctrl_c_during_hpa_demo_leaves_no_port_forward(lab):
    start, forwarders, _ = lab
    proc = start("hpa_demo", "HPA_DURATION=30", "HPA_PAUSE=1", "HPA_CONCURRENCY=4")
    read_until(proc, "HPA app (dev)")
    read_until(proc, "HPA app (dev)")  # the load is running
    [pid] = forwarders()
    assert alive(pid)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode != 0
    assert "hpa_demo interrupted" in out and "Traceback" not in out
    assert gone(pid), "the port-forward outlived Ctrl-C"


def test_sigterm_during_hpa_demo_leaves_no_port_forward(lab):
    start, forwarders, _ = lab
    proc = start("hpa_demo", "HPA_DURATION=30", "HPA_PAUSE=1", "HPA_CONCURRENCY=4")
    read_until(proc, "HPA app (dev)")
    [pid] = forwarders()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode != 0 and "Traceback" not in out
    assert gone(pid)


def test_hpa_stop_ends_the_orphan_of_a_killed_run(lab):
    start, forwarders, _ = lab
    proc = start("hpa_demo", "HPA_DURATION=30", "HPA_PAUSE=1", "HPA_CONCURRENCY=4")
    read_until(proc, "HPA app (dev)")
    [pid] = forwarders()
    os.killpg(proc.pid, signal.SIGKILL)  # no finally runs
    proc.wait()
    assert alive(pid), "the port-forward should survive its killed parent (own session)"
    stop = start("hpa_stop")
    out, _ = stop.communicate(timeout=30)
    assert stop.returncode == 0, out
    assert f"ended port-forward pid {pid}" in out and "ended 1 leftover port-forward(s)" in out
    assert gone(pid)
    again = start("hpa_stop")
    out, _ = again.communicate(timeout=30)
    assert "no leftover port-forwards" in out


def test_hpa_demo_completes_and_cleans_up(lab):
    start, forwarders, env = lab
    proc = start("hpa_demo", "HPA_DURATION=2", "HPA_PAUSE=1", "HPA_CONCURRENCY=4")
    out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, out
    assert "Requests/sec" in out and "HPA app (dev): cpu 99%/70%" in out
    assert "no scale-up within 2s" in out
    [pid] = forwarders()
    assert gone(pid)
    state = Path(env["LAB_STATE_DIR"])
    assert (state / "hpa-timeline.svg").exists()
    assert not list((state / "portforwards").glob("*"))

