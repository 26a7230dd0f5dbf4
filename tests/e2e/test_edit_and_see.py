"""Edit and see on a real cluster: `doit watch` rolls a save out and stops cleanly; WATCH_ENVS=dev keeps
staging and production where they are until `doit promote` moves the tested image on, one environment
at a time. (Runs between test_cluster.py and test_lab.py: the session's lab is still up.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import E2E_ENV, ROOT, doit, kubectl

pytestmark = pytest.mark.e2e

ENVS = ("dev", "staging", "production")


def images() -> dict[str, str]:
    out = {}
    for env in ENVS:
        doc = json.loads(kubectl("-n", env, "get", "deployment", "app", "-o", "json").stdout)
        out[env] = doc["spec"]["template"]["spec"]["containers"][0]["image"]
    return out


def edited(note: str):
    """app/server.py with a comment added; the caller restores it."""
    server = ROOT / "app" / "server.py"
    original = server.read_text()
    server.write_text(original + f"\n# e2e: {note}\n")
    return server, original


def test_watch_envs_dev_then_promote_moves_the_tested_image_one_environment_at_a_time(lab):
    before = images()
    assert len(set(before.values())) == 1
    server, original = ROOT / "app" / "server.py", None
    try:
        doit("setup", "WATCH_ENVS=dev")  # pins staging and production where they are
        assert images() == before
        server, original = edited("promote")
        doit("setup", "WATCH_ENVS=dev")
        after_edit = images()
        assert after_edit["dev"] != before["dev"]
        assert after_edit["staging"] == before["staging"] and after_edit["production"] == before["production"]

        doit("promote", "WATCH_ENVS=dev")  # the first environment behind the one before it: staging
        promoted = images()
        assert promoted["staging"] == after_edit["dev"] and promoted["production"] == before["production"]

        doit("promote", "WATCH_ENVS=dev", "PROMOTE_TO=production")
        assert images()["production"] == after_edit["dev"]
        doit("verify", "WATCH_ENVS=dev")
    finally:
        if original is not None:
            server.write_text(original)
        # without WATCH_ENVS every environment follows every publish again
        doit("setup")
    assert len(set(images().values())) == 1


def _runs(path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _wait_runs(proc, path, count: int, timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(_runs(path)) < count:
        assert proc.poll() is None, f"the watcher ended (rc {proc.returncode})"
        assert time.monotonic() < deadline, f"{count} runs not recorded within {timeout}s: {_runs(path)}"
        time.sleep(0.5)
    return _runs(path)


def test_watch_rolls_a_save_out_everywhere_and_ctrl_c_leaves_nothing_running(lab):
    runs_file = ROOT / ".lab" / "watch-runs.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "doit", "watch"], cwd=ROOT, env={**os.environ, **E2E_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    server, original = None, None
    try:
        first = _wait_runs(proc, runs_file, 1)[0]
        assert first["ok"], first
        before = images()
        server, original = edited("watch")
        run = _wait_runs(proc, runs_file, 2)[1]
        assert run["ok"] and "image" in run["steps"] and "sync" in run["steps"], run
        now = images()
        assert all(now[env] != before[env] for env in ENVS) and len(set(now.values())) == 1
        assert run["save_to_serving"] is not None and run["save_to_serving"] > 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the watcher's terminal
        rc = proc.wait(timeout=120)
        if server is not None:
            server.write_text(original)
    assert rc == 0
    forwards = ROOT / ".lab" / "portforwards"
    assert not (forwards.is_dir() and list(forwards.glob("*.pid")))
    left = subprocess.run(["pgrep", "-f", f"kubectl --context kind-{E2E_ENV['CLUSTER_NAME']}.*port-forward"],
                          capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
    doit("setup")  # back to the unedited app
