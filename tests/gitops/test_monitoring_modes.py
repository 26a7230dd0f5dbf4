"""MONITORING=full|crds|off: the bootstrap each selects, and `doit validate` on each layer,
shown failing on broken copies."""
from __future__ import annotations

import yaml
from gitops_helpers import edit_yaml, requires_kubectl

from tasks.core import names
from tasks.steps import sync
from tasks import validation as v
from tasks.validation import wiring
from tasks.validation.render import load_docs

pytestmark = requires_kubectl
CRDS = "flux-cd/infrastructure/crds"


def bootstrap_docs(repo_root) -> list[dict]:
    return load_docs(v.kustomize_build(repo_root / "flux-cd" / "bootstrap" / "oci"))


def test_the_real_tree_has_no_monitoring_problem(repo_root):
    bootstrap, rendered = v.render_all(repo_root)
    assert wiring.monitoring_problems(repo_root, bootstrap, rendered) == []


def test_each_mode_points_infrastructure_at_its_layer_and_only_off_patches_the_apps(repo_root):
    for mode, path in sync.INFRASTRUCTURE_PATHS.items():
        docs = sync.apply_monitoring(bootstrap_docs(repo_root), mode)
        kss = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Kustomization"}
        assert kss["infrastructure"]["spec"]["path"] == path
        patched = [n for n, d in kss.items() if d["spec"].get("patches")]
        assert sorted(patched) == (sorted(names.APP_LAYERS.values()) if mode == "off" else [])


def test_off_patches_remove_every_monitoring_object_with_real_kustomize(repo_root, tmp_path):
    """The patches the bootstrap adds, run through kustomize as kustomize-controller does."""
    docs = sync.apply_monitoring(bootstrap_docs(repo_root), "off")
    ks = next(d for d in docs if d["metadata"]["name"] == "apps-dev")
    wrapper = repo_root / "flux-cd" / ".test-off-wrapper"
    try:
        wrapper.mkdir()
        (wrapper / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["../apps/dev"], "patches": ks["spec"]["patches"]}))
        out = load_docs(v.kustomize_build(wrapper))
    finally:
        for f in wrapper.glob("*"):
            f.unlink()
        wrapper.rmdir()
    assert out and not [o for o in out if o["apiVersion"].startswith("monitoring.coreos.com/")]
    assert any(o["kind"] == "Deployment" for o in out)


def test_crds_layer_missing_a_crd_the_apps_use_is_reported(tree):
    kust = tree / CRDS / "kustomization.yaml"
    kust.write_text(kust.read_text().replace("  - prometheusrules.yaml\n", ""))
    problems = v.validate(tree)
    assert any("[monitoring]" in p and "PrometheusRule" in p for p in problems), problems


def test_crds_without_prune_protection_are_reported(tree):
    kust = tree / CRDS / "kustomization.yaml"
    text = kust.read_text()
    kust.write_text(text[:text.index("patches:")])
    problems = v.validate(tree)
    assert any("prune: disabled" in p for p in problems), problems


def test_off_leaving_a_monitoring_object_is_reported(tree):
    def add_podmonitor(docs):
        return docs + [{"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                        "metadata": {"name": "extra"}, "spec": {"selector": {}, "podMetricsEndpoints": [{}]}}]
    edit_yaml(tree / "flux-cd/apps/base/servicemonitor.yaml", add_podmonitor)
    problems = v.validate(tree)
    assert any("MONITORING=off" in p and "PodMonitor" in p for p in problems), problems
