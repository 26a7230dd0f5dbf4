"""hack/metrics-server renders offline, pinned, and patched for kind."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tasks.versions import METRICS_SERVER_VERSION  # noqa: E402

KUSTOMIZE_DIR = REPO_ROOT / "hack" / "metrics-server"
IMAGE_REPO = "registry.k8s.io/metrics-server/metrics-server"
REMOTE_MARKERS = ("://", "github.com/", "gitlab.com/", "bitbucket.org/", "git@", "?ref=")


def _kubectl() -> str:
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not kubectl:
        pytest.fail("kubectl not found (set KUBECTL or put kubectl on PATH)")
    return kubectl


@pytest.fixture(scope="module")
def rendered():
    proc = subprocess.run(
        [_kubectl(), "kustomize", str(KUSTOMIZE_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"kubectl kustomize failed:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _deployment(docs):
    deps = [
        d
        for d in docs
        if d.get("kind") == "Deployment" and d["metadata"]["name"] == "metrics-server"
    ]
    assert len(deps) == 1, f"expected one metrics-server Deployment, got {len(deps)}"
    return deps[0]


def _container(docs):
    containers = _deployment(docs)["spec"]["template"]["spec"]["containers"]
    matches = [c for c in containers if c["name"] == "metrics-server"]
    assert len(matches) == 1
    return matches[0]


def test_image_is_pinned_to_versions_py(rendered):
    image = _container(rendered)["image"]
    repo, _, tag = image.rpartition(":")
    assert repo == IMAGE_REPO
    assert tag == METRICS_SERVER_VERSION


def test_kubelet_insecure_tls_once(rendered):
    args = _container(rendered).get("args", []) + _container(rendered).get("command", [])
    assert args.count("--kubelet-insecure-tls") == 1, args


def test_apiservice_present(rendered):
    names = [d["metadata"]["name"] for d in rendered if d.get("kind") == "APIService"]
    assert "v1beta1.metrics.k8s.io" in names


def test_no_remote_resources():
    files = sorted(KUSTOMIZE_DIR.rglob("kustomization.yaml"))
    assert files, "no kustomization.yaml under hack/metrics-server"
    for path in files:
        doc = yaml.safe_load(path.read_text()) or {}
        for key in ("resources", "bases", "components", "crds"):
            for entry in doc.get(key) or []:
                assert not any(m in entry for m in REMOTE_MARKERS), (
                    f"{path}: remote {key} entry {entry!r}"
                )
                assert (path.parent / entry).exists(), (
                    f"{path}: {key} entry {entry!r} is not a local path"
                )
