"""Real-cluster suite: real docker, kind, kubectl and flux. Skipped, with the reason
printed, wherever any of them (or the Docker daemon) is missing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A cluster and registry of its own, so the suite never touches a developer's lab.
E2E_ENV = {"CLUSTER_NAME": "gitops-lab-e2e", "REGISTRY_NAME": "kind-registry-e2e", "REGISTRY_PORT": "5055",
           "NO_COLOR": "1"}


def _missing() -> str | None:
    for tool in ("docker", "kind", "kubectl", "flux"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    try:
        subprocess.run(["docker", "info"], check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError):
        return "the Docker daemon is not reachable"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    if not reason:
        return
    marker = pytest.mark.skip(reason=f"e2e needs a real cluster: {reason}")
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(marker)


def pytest_report_header(config):
    reason = _missing()
    return f"e2e: {'SKIPPED — ' + reason if reason else 'real docker/kind/kubectl/flux found'}"


def run(*args: str, check: bool = True, timeout: float = 1800, env: dict | None = None):
    full_env = {**os.environ, **E2E_ENV, **(env or {})}
    res = subprocess.run(list(args), cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {res.returncode}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def doit(*args: str, **kw):
    return run(sys.executable, "-m", "doit", *args, **kw)


def kubectl(*args: str, **kw):
    return run("kubectl", "--context", f"kind-{E2E_ENV['CLUSTER_NAME']}", *args, **kw)


def setting(name: str, default: str) -> str:
    return {**os.environ, **E2E_ENV}.get(name) or default


@pytest.fixture(scope="session")
def lab():
    """`doit setup` once for the session; `inv teardown` at the end is itself a test.

    Runs wherever the settings say: MIRRORS=offline (no registry reachable: the mirrors are
    filled from the local Docker first, as `doit mirror_fill` does for any offline user),
    MONITORING=crds, a KIND_NODE_IMAGE built locally — see hack/e2e/run.sh."""
    # A clean start: whatever an interrupted earlier run left of this suite's own lab goes.
    run(sys.executable, "-m", "invoke", "teardown", check=False, timeout=900)
    if setting("MIRRORS", "off") != "off":
        doit("mirror_fill", timeout=1800)
    doit("setup", timeout=2400)
    yield
    run(sys.executable, "-m", "invoke", "teardown", check=False)
