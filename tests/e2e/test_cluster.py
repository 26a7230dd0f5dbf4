"""The cluster `doit setup` builds, read with the real kubectl; re-runs, edits, another provider.

Runs before test_lab.py (which ends with teardown); the session's `lab` fixture set it up once."""
from __future__ import annotations

import json
import sys

import pytest

from tests.e2e.conftest import E2E_ENV, ROOT, doit, kubectl, run

pytestmark = pytest.mark.e2e
ENVS = {"dev": 1, "staging": 2, "production": 3}
CONTEXT = f"kind-{E2E_ENV['CLUSTER_NAME']}"


def items(*args: str) -> list[dict]:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)["items"]


def ran(stdout: str) -> list[str]:
    """The graph steps a run executed (their banners), in order."""
    return [line.split(":")[0][2:] for line in stdout.splitlines() if line.startswith("▶ ")]


def test_three_nodes_ready_workers_labelled_control_plane_tainted(lab):
    nodes = {n["metadata"]["name"]: n for n in items("nodes")}
    assert len(nodes) == 3
    for node in nodes.values():
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]
    workers = [n for n in nodes.values() if n["metadata"]["labels"].get("gitops-lab/tier") == "worker"]
    assert len(workers) == 2
    cp = nodes[f"{E2E_ENV['CLUSTER_NAME']}-control-plane"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in [
        {"key": t["key"], "effect": t["effect"]} for t in cp["spec"].get("taints", [])]


def test_flux_ready_and_app_pods_on_workers_only(lab):
    for kind in ("ocirepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io"):
        for obj in items(kind, "-n", "flux-system"):
            ready = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
            assert ready.get("Ready") == "True", (kind, obj["metadata"]["name"], obj["status"]["conditions"])
    workers = {n["metadata"]["name"] for n in items("nodes", "-l", "gitops-lab/tier=worker")}
    for ns, minimum in ENVS.items():
        pods = [p for p in items("pods", "-n", ns, "-l", "app.kubernetes.io/name=app")
                if p["status"].get("phase") == "Running"]
        assert len(pods) >= minimum, ns
        assert {p["spec"]["nodeName"] for p in pods} <= workers, ns


def test_verify_passes(lab):
    res = doit("verify")
    assert "verify" in ran(res.stdout)


def test_no_op_rerun_runs_only_the_read_only_steps(lab):
    res = doit("setup")
    assert set(ran(res.stdout)) == {"preflight", "verify"}, res.stdout[-3000:]


def test_manifest_edit_is_applied_without_a_rebuild(lab):
    overlay = ROOT / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
    original = overlay.read_text()
    try:
        overlay.write_text(original.replace("FAIL_RATE=0.05", "FAIL_RATE=0.06"))
        assert overlay.read_text() != original
        res = doit("setup")
        steps = ran(res.stdout)
        assert "sync" in steps and "image" not in steps and "app_push" not in steps, steps
        cms = [c for c in items("configmaps", "-n", "dev") if c["metadata"]["name"].startswith("app-config")]
        dep = json.loads(kubectl("-n", "dev", "get", "deployment", "app", "-o", "json").stdout)
        used = {v["configMap"]["name"] for v in dep["spec"]["template"]["spec"].get("volumes", [])
                if "configMap" in v} | {e["configMapRef"]["name"] for c in dep["spec"]["template"]["spec"]["containers"]
                                        for e in c.get("envFrom", []) if "configMapRef" in e}
        assert [c["data"]["FAIL_RATE"] for c in cms if c["metadata"]["name"] in used] == ["0.06"]
    finally:
        overlay.write_text(original)
        doit("setup")


def test_existing_provider_on_the_same_cluster_creates_and_deletes_nothing(lab):
    before = set(run("docker", "ps", "-a", "--format", "{{.Names}}").stdout.split())
    env = {"CLUSTER_PROVIDER": "existing", "KUBE_CONTEXT": CONTEXT,
           "REGISTRY": f"localhost:{E2E_ENV['REGISTRY_PORT']}"}
    res = doit("setup", env=env)
    steps = ran(res.stdout)
    assert "verify" in steps
    assert set(run("docker", "ps", "-a", "--format", "{{.Names}}").stdout.split()) == before
    assert E2E_ENV["CLUSTER_NAME"] in run("kind", "get", "clusters").stdout.split()
    down = run(sys.executable, "-m", "invoke", "teardown", env=env, check=False)
    assert E2E_ENV["CLUSTER_NAME"] in run("kind", "get", "clusters").stdout.split(), down.stdout
    # back to the lab's own provider: its record was the existing one's, so it re-checks
    doit("setup")


def test_cluster_deleted_by_hand_is_recreated(lab):
    run("kind", "delete", "cluster", "--name", E2E_ENV["CLUSTER_NAME"], timeout=600)
    res = doit("setup", timeout=2400)
    steps = ran(res.stdout)
    assert "cluster" in steps and "flux" in steps and "sync" in steps, steps
    assert len(items("nodes")) == 3
    # the rest of the session runs on the recreated cluster
    test_flux_ready_and_app_pods_on_workers_only(lab)
