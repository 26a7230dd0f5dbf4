"""Crash recovery: `doit setup` (and `inv teardown`) killed at each step, then run again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from pathlib import Path

# One representative mutating command per step, in graph order.
STEPS = ["docker run", "kind create cluster", "kubectl apply -k", "flux install", "docker build", "docker push",
         "flux push artifact", "kubectl annotate"]  # the last: sync asking Flux to reconcile (fake words: no globals)


def wait_paused(lab, proc, timeout=60):
    marker = Path(lab.world.state_dir) / "paused"
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before pausing:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("the run never reached the pause point")
        time.sleep(0.05)


def kill_group(proc, sig):
    # Ctrl-C in a terminal signals the whole foreground group; so does `kill -9 -PGID`.
    os.killpg(proc.pid, sig)
    proc.wait(timeout=30)


def container_names(lab) -> list[str]:
    return sorted(c["name"] for c in lab.world.state()["docker"]["containers"].values())


def assert_clean_and_complete(lab):
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = set(container_names(lab))
    assert names == {"kind-registry", "gitops-lab-control-plane", "gitops-lab-worker", "gitops-lab-worker2"}
    # nothing half-made: a further run does nothing
    lab.world.clear_calls()
    again = lab.doit("setup")
    assert again.returncode == 0 and lab.mutating() == [], lab.mutating()
    out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [l for l in out.splitlines() if "port-forward" in l and str(lab.root) in l]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("step", STEPS)
def test_setup_killed_at_each_step_then_completes(lab, step, sig):
    proc = lab.start("setup", FAKE_PAUSE_AT=step)
    wait_paused(lab, proc)
    kill_group(proc, sig)
    (Path(lab.world.state_dir) / "paused").unlink(missing_ok=True)
    assert_clean_and_complete(lab)


def test_concurrent_setup_refuses_clearly_and_corrupts_nothing(lab):
    first = lab.start("setup", FAKE_PAUSE_AT="kind create cluster")
    wait_paused(lab, first)
    second = lab.doit("setup")
    assert second.returncode != 0
    assert "another lab run is in progress in this checkout" in second.stderr
    (Path(lab.world.state_dir) / "paused").unlink()
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    lab.world.clear_calls()
    assert lab.doit("setup").returncode == 0 and lab.mutating() == []


@pytest.mark.parametrize("step", ["kind delete cluster", "docker rm"])
def test_teardown_killed_midway_then_completes(built, step):
    proc = built.start("teardown", tool="invoke", FAKE_PAUSE_AT=step)
    wait_paused(built, proc)
    kill_group(proc, signal.SIGKILL)
    (Path(built.world.state_dir) / "paused").unlink(missing_ok=True)
    done = built.inv("teardown")
    assert done.returncode == 0, done.stdout + done.stderr
    assert container_names(built) == []
    again = built.inv("teardown")  # idempotent
    assert again.returncode == 0, again.stdout + again.stderr
