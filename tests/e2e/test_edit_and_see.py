"""Edit and see on a real cluster: WATCH_ENVS=dev keeps staging and production on the artifact last promoted
to them (manifests and image alike) until `doit promote` moves the tested one on, one environment at a time;
`doit watch` rolls a save out and, stopped with Ctrl-C in the middle of a run, leaves nothing behind."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import CLONE, E2E_ENV, ENVS, STATE, doit, images, items, port_forward_processes

pytestmark = pytest.mark.e2e

MARK = "E2E_PROMOTED"  # a key added to the base app-config: a manifest change every environment renders


def app_config(env: str) -> dict:
    """The data of the app-config ConfigMap the Deployment in `env` uses."""
    dep = items("deployments", "-n", env, "-l", "app.kubernetes.io/name=app")
    assert len(dep) == 1, f"{env}: {len(dep)} app Deployments"
    used = {e["configMapRef"]["name"] for c in dep[0]["spec"]["template"]["spec"]["containers"]
            for e in c.get("envFrom", []) if "configMapRef" in e}
    cms = [c for c in items("configmaps", "-n", env) if c["metadata"]["name"] in used]
    assert len(cms) == 1, (env, used)
    return cms[0].get("data") or {}


def marks() -> dict[str, str | None]:
    return {env: app_config(env).get(MARK) for env in ENVS}


def test_watch_envs_dev_pins_manifests_and_image_until_promote_moves_them_one_environment_at_a_time(lab):
    before = images()
    assert len(set(before.values())) == 1
    base = CLONE / "flux-cd" / "apps" / "base" / "kustomization.yaml"
    server = CLONE / "app" / "server.py"
    originals = {base: base.read_text(), server: server.read_text()}
    try:
        doit("setup", "WATCH_ENVS=dev")  # pins staging and production where they are
        assert images() == before and marks() == {env: None for env in ENVS}
        # One publish with a manifest change (every environment's app-config) and an app change.
        base.write_text(originals[base].replace("      - FAIL_RATE=0\n", f"      - FAIL_RATE=0\n      - {MARK}=yes\n"))
        assert MARK in base.read_text()
        server.write_text(originals[server] + "\n# e2e: promote\n")
        doit("setup", "WATCH_ENVS=dev")
        after_edit = images()
        assert after_edit["dev"] != before["dev"] and marks()["dev"] == "yes"
        # the pinned environments kept the old artifact: the old manifests as well as the old image
        assert (after_edit["staging"], after_edit["production"]) == (before["staging"], before["production"])
        assert marks() == {"dev": "yes", "staging": None, "production": None}

        doit("promote", "WATCH_ENVS=dev")  # the first environment behind the one before it: staging
        assert images() == {**before, "dev": after_edit["dev"], "staging": after_edit["dev"]}
        assert marks() == {"dev": "yes", "staging": "yes", "production": None}

        doit("promote", "WATCH_ENVS=dev", "PROMOTE_TO=production")
        assert images() == {env: after_edit["dev"] for env in ENVS}
        assert marks() == {env: "yes" for env in ENVS}
        doit("verify", "WATCH_ENVS=dev")
    finally:
        for path, text in originals.items():
            path.write_text(text)
        # without WATCH_ENVS every environment follows every publish again
        doit("setup")
    assert len(set(images().values())) == 1 and marks() == {env: None for env in ENVS}


# --- doit watch ---------------------------------------------------------------------------------------------

RUNS = STATE / "watch-runs.jsonl"


def _runs() -> list[dict]:
    try:
        return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _wait_runs(proc, count: int, timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(_runs()) < count:
        assert proc.poll() is None, f"the watcher ended (rc {proc.returncode})"
        assert time.monotonic() < deadline, f"{count} runs not recorded within {timeout}s: {_runs()}"
        time.sleep(0.5)
    return _runs()


def _start_watch():
    RUNS.unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-m", "doit", "watch"], cwd=CLONE, env={**os.environ, **E2E_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _lab_processes(watcher_pid: int) -> list[str]:
    """The watcher, its `doit setup` children and their port-forwards, by what they run."""
    out = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines()
            if line.split(None, 1)[0] == str(watcher_pid) or str(CLONE / "dodo.py") in line] + port_forward_processes()


def _lock_free(name: str) -> bool:
    path = STATE / name
    if not path.exists():
        return True
    with open(path) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def test_watch_rolls_a_save_out_everywhere(lab):
    proc = _start_watch()
    try:
        first = _wait_runs(proc, 1)[0]
        assert first["ok"], first
        before = images()
        server = CLONE / "app" / "server.py"
        server.write_text(server.read_text() + f"\n# e2e: watch {time.time()}\n")
        run = _wait_runs(proc, 2)[1]
        assert run["ok"] and "image" in run["steps"] and "sync" in run["steps"], run
        now = images()
        assert all(now[env] != before[env] for env in ENVS) and len(set(now.values())) == 1
        assert run["save_to_serving"] is not None and run["save_to_serving"] > 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the watcher's terminal
        rc = proc.wait(timeout=120)
    assert rc == 0


def test_watch_ctrl_c_in_the_middle_of_a_run_with_a_port_forward_open_leaves_nothing(lab):
    proc = _start_watch()
    caught = []
    try:
        assert _wait_runs(proc, 1)[0]["ok"]
        overlay = CLONE / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
        overlay.write_text(overlay.read_text() + f"\n# e2e: interrupted run {time.time()}\n")
        # the edit's run reaches verify, which port-forwards to every environment: press Ctrl-C then
        deadline = time.monotonic() + 600
        while not caught:
            assert proc.poll() is None, f"the watcher ended (rc {proc.returncode})"
            assert len(_runs()) < 2, f"the run ended before a port-forward was seen open: {_runs()[-1]}"
            assert time.monotonic() < deadline, "no port-forward seen open during the run within 600s"
            caught = port_forward_processes()
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the watcher's terminal
        rc = proc.wait(timeout=120)
    print(f"Ctrl-C while {len(caught)} port-forward(s) were open: {caught}")
    assert rc == 0
    time.sleep(1)
    assert _lab_processes(proc.pid) == [], "left running after Ctrl-C"
    forwards = STATE / "portforwards"
    assert not (forwards.is_dir() and list(forwards.glob("*.pid"))), list(forwards.glob("*"))
    assert _lock_free("run.lock") and _lock_free("watch.lock"), "a lock is still held"
    doit("setup")  # the interrupted run's work is finished by the next one
