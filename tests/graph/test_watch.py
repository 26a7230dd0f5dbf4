"""`doit watch` (issue 17) as a real subprocess against the fakes: each burst of saves is one `doit setup`
child, a change during a run is queued and runs once after it, a failure does not end the watcher,
Ctrl-C leaves nothing running; and WATCH_ENVS=dev with `doit promote`.

Each run of the watcher is one JSON line in .lab/watch-runs.jsonl (what its status line says); the
tests wait on those lines, never on a fixed sleep."""
from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.graph.conftest import Running, alive, has

ENVS = ("dev", "staging", "production")


class Watch(Running):
    """`doit watch` in its own process group (a terminal's foreground job), its output read by a thread."""

    def __init__(self, lab, *settings: str, debounce_ms: int = 150, **env):
        self.lab = lab
        self.runs_file = lab.root / ".lab" / "watch-runs.jsonl"
        super().__init__(lab, "watch", f"WATCH_DEBOUNCE_MS={debounce_ms}", *settings, **env)

    def line(self, predicate, timeout: float = 20) -> str:
        """The first output line PREDICATE accepts, once the reader has it (the run record can be read
        before the status line has come through the pipe)."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((ln for ln in list(self.lines) if predicate(ln)), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no such line in the watcher's output:\n{self.out}")
            time.sleep(0.05)

    def runs(self) -> list[dict]:
        try:
            text = self.runs_file.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_runs(self, count: int, timeout: float = 60, unpause: bool = False) -> list[dict]:
        """Until COUNT runs are recorded (UNPAUSE: releasing every FAKE_PAUSE_AT pause meanwhile)."""
        deadline = time.monotonic() + timeout
        while len(self.runs()) < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"the watcher ended (rc {self.proc.returncode}):\n{self.out}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} runs not recorded within {timeout}s: {self.runs()}\n{self.out}")
            if unpause and self.lab.world.paused():
                self.lab.world.unpause()
            time.sleep(0.05)
        return self.runs()

    def wait_paused(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.lab.world.paused():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no run reached the pause point:\n{self.out}")
            time.sleep(0.05)

    def interrupt(self, sig=signal.SIGINT) -> int:
        return self.signal_group(sig)  # Ctrl-C in a terminal signals the foreground group


@pytest.fixture
def watching(built):
    started: list[Watch] = []

    def start(*settings, **kwargs) -> Watch:
        w = Watch(built, *settings, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()


def edit(path: Path, note: str) -> float:
    path.write_text(path.read_text() + f"\n# {note}\n")
    return time.time()


def app(lab) -> Path:
    return lab.root / "app" / "server.py"


def overlay(lab, env="dev") -> Path:
    return lab.root / "flux-cd" / "apps" / env / "kustomization.yaml"


def deployment_image(lab, env: str) -> str:
    deps = [d for d in lab.world.objects("gitops-lab", "Deployment", env) if d["metadata"]["name"] == "app"]
    return deps[0]["spec"]["template"]["spec"]["containers"][0]["image"]


def leftovers(root: Path) -> list[str]:
    """A `doit` child or a port-forward of this lab still running."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if ("port-forward" in line and str(root.parent) in line) or f"{root}/dodo.py" in line]


# --- what a save runs ------------------------------------------------------------------------------

def test_an_app_edit_rebuilds_pushes_and_syncs_and_a_manifest_edit_only_syncs(watching, built):
    w = watching()
    start = w.wait_runs(1)[0]
    assert start["initial"] and start["ok"] and start["steps"] == [], start  # the built lab is up to date
    before = start["serving"]
    assert set(before) == set(ENVS) and len(set(before.values())) == 1

    built.world.clear_calls()
    saved = edit(app(built), "edit 1")
    run = w.wait_runs(2)[1]
    assert run["ok"], run
    assert run["changed"] == ["app/server.py"] and run["kinds"] == ["app"]
    assert run["steps"] == ["image", "app_push", "sync"]
    calls = built.mutating()
    assert has(calls, "docker build") and has(calls, "docker push") and has(calls, "kubectl --context kind-gitops-lab -n flux-system annotate")
    assert has(calls, "kubectl --context kind-gitops-lab apply -f -")  # lab-vars: the new image
    tags = set(run["serving"].values())
    assert len(tags) == 1 and tags != set(before.values())  # every environment serves the new image
    tag = tags.pop()
    assert all(deployment_image(built, env).split("@")[0].endswith(":" + tag) for env in ENVS)
    assert run["live"] == list(ENVS)
    assert 0 < run["save_to_serving"] < run["took"] + 5 and run["saved_at"] <= saved + 0.01
    status = w.line(lambda line: "app/server.py → " in line)
    assert "image, app_push, sync" in status and "live in dev, staging, production" in status

    built.world.clear_calls()
    edit(overlay(built), "edit 2")
    run = w.wait_runs(3)[2]
    assert run["ok"] and run["changed"] == ["flux-cd/apps/dev/kustomization.yaml"], run
    assert run["steps"] == ["sync"] and run["kinds"] == ["manifests"]
    calls = built.mutating()
    assert has(calls, "flux push artifact") and not has(calls, "docker build", "docker push", "kind")
    second = built.doit("watch", timeout=60)  # one watcher per checkout
    assert second.returncode != 0 and "`doit watch` already runs in this checkout" in second.stderr
    assert w.proc.poll() is None


def test_three_saves_within_the_debounce_window_are_one_run(watching, built):
    w = watching(debounce_ms=600)
    w.wait_runs(1)
    files = [overlay(built, env) for env in ENVS]
    for n, path in enumerate(files):
        edit(path, f"burst {n}")
        time.sleep(0.1)  # the burst itself: saves 100 ms apart, within the 600 ms window
    run = w.wait_runs(2)[1]
    assert run["ok"], run
    assert run["changed"] == sorted(str(p.relative_to(built.root)) for p in files)
    assert run["steps"] == ["sync"]
    # nothing ran after it: the next save is the next run, alone (a settings file: a run with nothing to do)
    edit(built.root / "tasks" / "versions.py", "after the burst")
    runs = w.wait_runs(3)
    assert len(runs) == 3 and runs[2]["changed"] == ["tasks/versions.py"] and runs[2]["steps"] == []


def test_a_save_during_a_run_is_queued_and_runs_exactly_once(watching, built):
    w = watching(FAKE_PAUSE_AT="flux push artifact")
    w.wait_runs(1)  # up to date: nothing pushed, no pause
    edit(overlay(built), "first")
    w.wait_paused()  # run 2 is publishing
    during = [edit(app(built), "during 1"), edit(overlay(built, "staging"), "during 2"),
              edit(app(built), "during 3")]
    runs = w.wait_runs(3, unpause=True)
    second, third = runs[1], runs[2]
    assert second["changed"] == ["flux-cd/apps/dev/kustomization.yaml"]
    assert all(second["started"] < t < second["ended"] for t in during)  # saved while it ran
    assert third["changed"] == ["app/server.py", "flux-cd/apps/staging/kustomization.yaml"]
    assert third["started"] >= second["ended"]  # after it, never beside it (the run lock holds)
    # The graph reads app/ as it goes: the run that saw it change under it may fail (verify looks for an image
    # of the new content), and says so; the queued run has the last word.
    assert second["ok"] or second["superseded"], second
    assert third["ok"] and not third["superseded"], third
    assert third["steps"] == ["image", "app_push", "sync"]
    edit(built.root / "tasks" / "versions.py", "sentinel")
    runs = w.wait_runs(4, unpause=True)
    assert len(runs) == 4 and runs[3]["changed"] == ["tasks/versions.py"]
    assert "another lab run is in progress" not in w.out


def test_a_failing_run_does_not_end_the_watcher_and_the_next_save_succeeds(watching, built):
    w = watching()
    w.wait_runs(1)
    built.world.set_fail("flux push artifact")
    edit(overlay(built), "fails")
    failed = w.wait_runs(2)[1]
    assert not failed["ok"] and not failed["superseded"] and failed["steps"] == ["sync"]
    assert failed["error"].startswith("sync: ") and "injected failure: flux push artifact" in failed["error"]
    status = w.line(lambda line: line.startswith("✗ "))
    assert "failed" in status and "injected failure" in status and len(status.splitlines()) == 1
    assert w.proc.poll() is None
    built.world.set_fail(None)
    edit(overlay(built), "fixed")
    good = w.wait_runs(3)[2]
    assert good["ok"] and good["steps"] == ["sync"], good


def test_a_changed_kind_config_gets_the_same_advice_and_the_watcher_waits(watching, built):
    w = watching()
    w.wait_runs(1)
    kind_config = built.root / "kind-three-node.yaml"
    edit(kind_config, "a new node pool, some day")
    run = w.wait_runs(2)[1]
    assert not run["ok"] and run["kinds"] == ["cluster"] and "recreate_cluster" in run["error"], run
    assert not has(built.mutating(), "kind delete", "kind create")
    assert w.proc.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_ends_the_run_and_leaves_nothing_running(watching, built, sig):
    w = watching(FAKE_PAUSE_AT="kubectl port-forward")
    w.wait_paused()  # the first run's verify has started a port-forward, which waits
    records = built.root / ".lab" / "portforwards"
    deadline = time.monotonic() + 30
    while not list(records.glob("*.pid")) and time.monotonic() < deadline:
        time.sleep(0.05)
    forwards = [int(p.stem) for p in records.glob("*.pid")]
    holder = (built.root / ".lab" / "run.lock").read_text()
    child = int(holder.split()[1].rstrip(":"))
    assert forwards and alive(child) and "dodo.py setup" in holder, holder
    rc = w.interrupt(sig)
    assert rc == 0, w.out
    assert "stopped after 1 run(s); nothing left running" in w.out
    assert not alive(child) and not any(alive(pid) for pid in forwards)
    assert not leftovers(built.root), leftovers(built.root)
    with open(built.root / ".lab" / "run.lock", "a") as lock:  # released: another run may start
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    built.world.unpause()
    again = built.doit("setup")
    assert again.returncode == 0, again.stdout + again.stderr


# --- WATCH_ENVS=dev and promote ----------------------------------------------------------------------

def test_watch_envs_dev_rolls_only_dev_on_a_save(watching, built):
    w = watching("WATCH_ENVS=dev")
    start = w.wait_runs(1)[0]
    # the bootstrap now pins staging and production (their own source and variables): sync ran once
    assert start["ok"] and start["steps"] == ["sync"], start
    old = set(start["serving"].values())
    assert len(old) == 1
    edit(app(built), "only dev")
    run = w.wait_runs(2)[1]
    assert run["ok"] and run["live"] == ["dev"], run
    assert run["serving"]["dev"] not in old
    assert {run["serving"]["staging"], run["serving"]["production"]} == old
    assert "live in dev " in w.line(lambda line: "app/server.py → " in line)


def test_promote_moves_the_tested_revision_one_environment_at_a_time(built):
    assert built.doit("setup", "WATCH_ENVS=dev").returncode == 0
    old = deployment_image(built, "dev")
    edit(app(built), "to promote")
    proc = built.doit("setup", "WATCH_ENVS=dev")  # verify expects each environment's own image
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new = deployment_image(built, "dev")
    assert new != old and deployment_image(built, "staging") == old == deployment_image(built, "production")

    built.world.clear_calls()
    proc = built.doit("promote", "WATCH_ENVS=dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "staging ← dev" in proc.stdout
    assert (deployment_image(built, "staging"), deployment_image(built, "production")) == (new, old)
    calls = built.mutating()
    tagged = [c for c in calls if c.startswith("flux tag artifact")]
    assert len(tagged) == 1 and "/lab-gitops@sha256:" in tagged[0] and tagged[0].endswith("--tag staging")
    assert not has(calls, "docker build", "docker push", "flux push artifact")  # never rebuilt or re-published
    dev_ks, staging_ks = (next(o for o in built.world.objects("gitops-lab", "Kustomization", "flux-system")
                               if o["metadata"]["name"] == f"apps-{env}") for env in ("dev", "staging"))
    applied = dev_ks["status"]["lastAppliedRevision"].split("@")[1]
    assert staging_ks["status"]["lastAppliedRevision"] == f"staging@{applied}"

    proc = built.doit("promote", "WATCH_ENVS=dev")
    assert proc.returncode == 0 and "production ← staging" in proc.stdout, proc.stdout + proc.stderr
    assert deployment_image(built, "production") == new
    proc = built.doit("promote", "WATCH_ENVS=dev")
    assert proc.returncode == 0 and "nothing to promote" in proc.stdout, proc.stdout + proc.stderr


def test_promote_into_a_suspended_environment_says_so_and_how_to_resume_it(built):
    """The lab asks Flux with its reconcile annotation: a suspended object would never handle the request,
    so the run must say so at once (flux reconcile said "resource is suspended"), not wait for a timeout."""
    assert built.doit("setup", "WATCH_ENVS=dev").returncode == 0
    edit(app(built), "to promote into a suspended staging")
    assert built.doit("setup", "WATCH_ENVS=dev").returncode == 0
    assert built.doit("flux_suspend", "FLUX_KUSTOMIZATION=apps-staging").returncode == 0
    old = deployment_image(built, "staging")
    proc = built.doit("promote", "WATCH_ENVS=dev")
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    line = [l for l in proc.stderr.splitlines() if "✗" in l]
    assert line and "apps-staging" in line[0] and "suspended" in line[0] and "doit flux_resume" in line[0], proc.stderr
    assert deployment_image(built, "staging") == old


def test_without_watch_envs_every_environment_follows_every_publish_again(built):
    refused = built.doit("promote")
    assert refused.returncode != 0 and "WATCH_ENVS is empty" in refused.stderr
    assert built.doit("setup", "WATCH_ENVS=dev").returncode == 0
    pins = {o["metadata"]["name"] for o in built.world.objects("gitops-lab", "OCIRepository", "flux-system")}
    assert pins == {"lab-gitops", "lab-gitops-staging", "lab-gitops-production"}
    assert sorted(built.world.registry_tags("lab-gitops", built.port)).count("staging") == 1
    built.world.clear_calls()
    proc = built.doit("setup", "WATCH_ENVS=dev")
    assert proc.returncode == 0 and built.mutating() == [], proc.stdout + proc.stderr + str(built.mutating())

    edit(app(built), "everyone")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len({deployment_image(built, env) for env in ENVS}) == 1
    assert not [o for o in built.world.objects("gitops-lab", "OCIRepository", "flux-system")
                if o["metadata"]["name"] != "lab-gitops"]
    assert not [o for o in built.world.objects("gitops-lab", "ConfigMap", "flux-system")
                if o["metadata"]["name"].startswith("lab-vars-")]


def test_invoke_and_doit_offer_watch_and_promote(lab):
    listed = lab.inv("--list")
    assert listed.returncode == 0 and "watch" in listed.stdout and "promote" in listed.stdout, listed.stderr
    tasks = lab.doit("list")
    assert tasks.returncode == 0
    assert {"watch", "promote"} <= {line.split()[0] for line in tasks.stdout.splitlines() if line.strip()}
