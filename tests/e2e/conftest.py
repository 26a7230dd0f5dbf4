"""Real-cluster suite: real docker, kind, kubectl and flux.

Where it runs: never in your checkout. At the start of a session the suite makes a throwaway clone of
the checkout (HEAD, plus the working tree's uncommitted changes and untracked files, so it tests what
you see) under LAB_E2E_WORK (default <tmp>/gitops-lab-e2e/lab), with a state directory of its own
(LAB_STATE_DIR=<work>/state) and its own cluster, registry and port. Every `doit`/`inv` it runs works in
that clone: the tests' edits go there, never into tracked files of yours, and your `.lab/` (doit database,
port-forwards, run lock) is never read or written. The work folder is left after the session (logs,
screenshots) and replaced by the next one.

Without the tools (or a Docker daemon answering within 30 s) the tests are skipped with the reason, unless
E2E_REQUIRED=1 (hack/e2e/run.sh, CI): then that is an error, and a run where no test ran fails.

Groups: tests marked `monitoring` need MONITORING=full (kube-prometheus-stack running); hack/e2e/run.sh
selects or deselects them as a group. Module order is fixed below (the session's one lab is set up once
and torn down by the last module)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]  # the checkout the suite was started from: never written
WORK = Path(os.environ.get("LAB_E2E_WORK") or Path(tempfile.gettempdir()) / "gitops-lab-e2e")
CLONE = WORK / "lab"      # the throwaway clone every command runs in
STATE = WORK / "state"    # its LAB_STATE_DIR
ARTIFACTS = STATE / "e2e"  # screenshots and other things a person may want to look at
MARKER = ".gitops-lab-e2e"  # in WORK: proof that the folder is ours to replace

# A cluster and registry of its own, so the suite never touches a developer's lab.
E2E_ENV = {"CLUSTER_NAME": "gitops-lab-e2e", "REGISTRY_NAME": "kind-registry-e2e", "REGISTRY_PORT": "5055",
           "NO_COLOR": "1", "LAB_STATE_DIR": str(STATE), "PYTHONPATH": str(CLONE)}
CONTEXT = f"kind-{E2E_ENV['CLUSTER_NAME']}"
ENVS = {"dev": 1, "staging": 2, "production": 3}  # environment -> HPA minReplicas
# Test modules in the order they run: the lab is set up once; the last module tears it down.
ORDER = ("test_cluster", "test_lab", "test_network", "test_edit_and_see", "test_monitoring", "test_teardown")
REQUIRED = os.environ.get("E2E_REQUIRED") == "1"


def _missing() -> str | None:
    for tool in ("docker", "kind", "kubectl", "flux", "git"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    try:
        subprocess.run(["docker", "info"], check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError):
        return "the Docker daemon did not answer `docker info` within 30 s"
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "monitoring: needs MONITORING=full (kube-prometheus-stack running); "
                                       "hack/e2e/run.sh selects or deselects these as a group")


def _is_e2e(item) -> bool:
    return item.get_closest_marker("e2e") is not None


def _e2e_selected(config) -> bool:
    markexpr = config.getoption("markexpr", "") or ""
    return "e2e" in markexpr and "not e2e" not in markexpr


@pytest.hookimpl(trylast=True)  # after `-m` deselected: the fast suite never asks Docker anything here
def pytest_collection_modifyitems(config, items):
    ours = [i for i in items if _is_e2e(i)]
    if not ours:
        return
    # a stable sort: each module's tests keep their order
    items.sort(key=lambda i: ORDER.index(Path(str(i.fspath)).stem) if _is_e2e(i) and Path(str(i.fspath)).stem
               in ORDER else -1)
    reason = _missing()
    if reason and REQUIRED:
        raise pytest.UsageError(f"e2e required (E2E_REQUIRED=1) but {reason}: the suite cannot run here")
    if reason:
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=f"e2e needs a real cluster: {reason}"))
        return
    monitoring = setting("MONITORING", "full")
    for item in ours:
        if item.get_closest_marker("monitoring") and monitoring != "full":
            # Selected by hand with MONITORING unset to full: say so; run.sh deselects them instead.
            item.add_marker(pytest.mark.skip(reason=f"MONITORING={monitoring}: no Prometheus runs "
                                                    "(these tests need MONITORING=full)"))


def pytest_report_header(config):
    if not _e2e_selected(config):
        return None
    reason = _missing()
    return [f"e2e: {'SKIPPED — ' + reason if reason else 'real docker/kind/kubectl/flux found'}",
            f"e2e: throwaway clone {CLONE}, LAB_STATE_DIR={STATE}"]


# --- the per-group outcome, for hack/e2e/run.sh's one-line summary ---------------------------------------

_outcomes: dict[str, dict[str, int]] = {}


def _group(item) -> str:
    return "monitoring" if item.get_closest_marker("monitoring") else "core"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not _is_e2e(item):
        return
    counts = _outcomes.setdefault(_group(item), {"passed": 0, "failed": 0, "skipped": 0, "errors": 0})
    if report.when == "call":
        counts["passed" if report.passed else "failed" if report.failed else "skipped"] += 1
    elif report.when == "setup" and report.skipped:
        counts["skipped"] += 1
    elif report.failed:  # setup or teardown error
        counts["errors"] += 1


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("E2E_SUMMARY")
    if path:
        Path(path).write_text(json.dumps(_outcomes))
    if REQUIRED and session.testscollected and not any(c["passed"] + c["failed"] for c in _outcomes.values()):
        session.exitstatus = 1  # every test skipped: nothing was proven


# --- running the lab's commands in the clone ----------------------------------------------------------------

def run(*args: str, check: bool = True, timeout: float = 1800, env: dict | None = None, cwd: Path = CLONE,
        input: str | None = None):
    full_env = {**os.environ, **E2E_ENV, **(env or {})}
    res = subprocess.run(list(args), cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
                         input=input)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {res.returncode}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def doit(*args: str, **kw):
    return run(sys.executable, "-m", "doit", *args, **kw)


def inv(*args: str, **kw):
    return run(sys.executable, "-m", "invoke", *args, **kw)


def kubectl(*args: str, **kw):
    return run("kubectl", "--context", CONTEXT, *args, **kw)


def items(*args: str) -> list[dict]:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)["items"]


def setting(name: str, default: str) -> str:
    return {**os.environ, **E2E_ENV}.get(name) or default


def ran(stdout: str) -> list[str]:
    """The graph steps a run executed (their banners), in order."""
    return [line.split(":")[0][2:] for line in stdout.splitlines() if line.startswith("▶ ")]


def external_calls(stdout: str) -> list[str]:
    """The external commands a run echoed (`  $ kubectl ...`), as hack/bench/real_bench.py counts them."""
    return [line.strip()[2:] for line in stdout.splitlines() if line.lstrip().startswith("$ ")]


def images() -> dict[str, str]:
    out = {}
    for env in ENVS:
        doc = json.loads(kubectl("-n", env, "get", "deployment", "app", "-o", "json").stdout)
        out[env] = doc["spec"]["template"]["spec"]["containers"][0]["image"]
    return out


def port_forward_processes() -> list[str]:
    """Every process that is a kubectl port-forward to this suite's cluster (whoever started it)."""
    out = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if "port-forward" in line and CONTEXT in line
            and "kubectl" in line]


# --- the throwaway clone --------------------------------------------------------------------------------

def _git(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], check=True, capture_output=True, **kw)


def make_clone() -> None:
    """WORK/lab: the checkout at HEAD plus its uncommitted changes and untracked (not ignored) files."""
    if WORK.exists():
        if not (WORK / MARKER).exists():
            raise pytest.UsageError(f"LAB_E2E_WORK={WORK} exists and is not the e2e suite's work folder "
                                    f"(no {MARKER} in it): choose an empty or new folder")
        shutil.rmtree(WORK)  # the previous session's clone, state and screenshots
    WORK.mkdir(parents=True)
    (WORK / MARKER).write_text("the e2e suite's work folder: replaced by each session (tests/e2e/conftest.py)\n")
    try:
        head = _git("-C", str(ROOT), "rev-parse", "--verify", "HEAD", text=True).stdout.strip()
    except subprocess.CalledProcessError:
        raise pytest.UsageError(f"{ROOT} is not a git checkout with a commit: the e2e suite runs in a clone of it")
    _git("clone", "-q", "--no-hardlinks", "--no-checkout", str(ROOT), str(CLONE))
    _git("-C", str(CLONE), "checkout", "-q", "--detach", head)
    diff = _git("-C", str(ROOT), "diff", "HEAD", "--binary").stdout
    if diff.strip():
        subprocess.run(["git", "-C", str(CLONE), "apply", "--binary", "-"], input=diff, check=True, capture_output=True)
    untracked = _git("-C", str(ROOT), "ls-files", "--others", "--exclude-standard", "-z", text=True).stdout
    for rel in filter(None, untracked.split("\0")):
        target = CLONE / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    STATE.mkdir(parents=True)
    ARTIFACTS.mkdir(parents=True)
    # The lab's code must be the clone's: its paths (state.ROOT) decide what is built and published.
    where = run(sys.executable, "-c", "import tasks.core.state as s; print(s.ROOT)").stdout.strip()
    assert Path(where) == CLONE, f"the lab's code was imported from {where}, not from the clone {CLONE}"
    sandbox_values()


def sandbox_values() -> None:
    """E2E_HELM_VALUES (hack/e2e/run.sh, this sandbox only): Helm values merged into the clone's
    kube-prometheus-stack HelmRelease, e.g. grafana.enabled=false where Grafana cannot run. A user's
    run sets none; hack/e2e/README.md says which and why."""
    extra = os.environ.get("E2E_HELM_VALUES")
    if not extra:
        return
    release = CLONE / "flux-cd" / "infrastructure" / "monitoring" / "release.yaml"
    doc = yaml.safe_load(release.read_text())
    merge(doc["spec"].setdefault("values", {}), yaml.safe_load(Path(extra).read_text()) or {})
    release.write_text("# e2e sandbox values merged in from " + extra + "\n" + yaml.safe_dump(doc, sort_keys=False))


def merge(into: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


@pytest.fixture(scope="session")
def lab():
    """The clone, then `doit setup` once for the session; tearing down is the last module's business.

    Runs wherever the settings say: MIRRORS=offline (no registry reachable: the mirrors are filled from
    the local Docker first, as `doit mirror_fill` does for any offline user), MONITORING, a
    KIND_NODE_IMAGE built locally — see hack/e2e/run.sh."""
    make_clone()
    keep = os.environ.get("E2E_KEEP") == "1"  # iterating on one test: reuse the lab a previous session left
    if not keep:
        # A clean start: whatever an interrupted earlier run left of this suite's own lab goes.
        inv("teardown", check=False, timeout=900)
    if setting("MIRRORS", "off") != "off":
        doit("mirror_fill", timeout=2400)
    started = time.monotonic()
    res = doit("setup", timeout=2700)
    (ARTIFACTS / "setup-cold.log").write_text(res.stdout)
    print(f"\ne2e: cold `doit setup` (MONITORING={setting('MONITORING', 'full')}) took "
          f"{time.monotonic() - started:.0f}s", file=sys.stderr)
    yield
    if not keep:
        # Whatever the teardown module did not get to (a failure, -k): this suite's lab does not outlive it.
        inv("teardown", check=False, timeout=900)


# --- what Docker holds, for the teardown checks -------------------------------------------------------------

def inventory() -> dict[str, set[str]]:
    """Every container (name, state, image) and volume Docker has, except containers started with `--rm`
    (they remove themselves; a kit build beside the suite starts such) and anonymous volumes no kept
    container mounts."""
    ids = run("docker", "ps", "-aq", cwd=ROOT).stdout.split()
    containers, mounted = set(), {}
    if ids:
        fmt = "{{.Name}}\t{{.State.Status}}\t{{.Config.Image}}\t{{.HostConfig.AutoRemove}}\t" \
              "{{range .Mounts}}{{.Name}},{{end}}"
        for line in run("docker", "inspect", "--format", fmt, *ids, check=False, cwd=ROOT).stdout.splitlines():
            name, status, image, autoremove, mounts = line.split("\t")
            if autoremove == "true":
                continue
            containers.add(f"{name.lstrip('/')} {status} {image}")
            mounted.update((v, name.lstrip("/")) for v in filter(None, mounts.split(",")))
    volumes = set()
    for v in run("docker", "volume", "ls", "-q", cwd=ROOT).stdout.split():
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            volumes.add(v)
        elif v in mounted:
            # An anonymous volume belongs to the container that mounts it (a kind node's /var): named
            # after it, so a lab node's goes with the lab and anyone else's stays theirs.
            volumes.add(f"{mounted[v]}:{v}")
    return {"containers": containers, "volumes": volumes}


def ours(name: str) -> bool:
    """A container or volume of this suite's lab: its nodes, registry, mirrors and their volumes."""
    return name.startswith((E2E_ENV["CLUSTER_NAME"] + "-", E2E_ENV["REGISTRY_NAME"]))
