"""The real tree renders and passes every check, offline and fast."""

from __future__ import annotations

from gitops_helpers import requires_kubectl

from tasks import versions
from tasks.core import names
from tasks import validation as v
from tasks.validation import schemas
from tasks.validation.render import render

pytestmark = requires_kubectl


def test_real_tree_is_valid(repo_root):
    # Its speed (goal: under 10 s) is a benchmark's business, not a test's: hack/bench/validate_bench.py.
    assert v.validate(repo_root) == []


def test_render_substitutes_app_image_from_lab_vars(repo_root):
    image = "localhost:5001/lab-app:3f2a9c1b7d4e"
    for env in names.ENVIRONMENTS:
        objs = render(repo_root, f"flux-cd/apps/{env}", {"APP_IMAGE": image})
        deployment = next(o for o in objs if o["kind"] == "Deployment")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
        assert "${" not in str(objs)


def test_render_uses_concrete_default_without_lab_vars(repo_root):
    objs = render(repo_root, repo_root / "flux-cd/apps/dev", None)
    image = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    repo, tag = image.rsplit(":", 1)
    assert repo.endswith("/" + versions.APP_IMAGE_NAME)
    assert tag and tag != "latest"


def test_lab_vars_image_is_also_checked(repo_root):
    problems = v.validate(repo_root, {"APP_IMAGE": "localhost:5001/lab-app:latest"})
    assert any("[image]" in p and "latest" in p for p in problems)


def test_bootstrap_renders_without_variables(repo_root):
    for variant in names.BOOTSTRAP_VARIANTS:
        text = v.kustomize_build(repo_root / "flux-cd" / "bootstrap" / variant)
        assert "${" not in text


def test_every_kind_has_a_schema(repo_root):
    bootstrap, rendered = v.render_all(repo_root)
    for objs in [*bootstrap.values(), *rendered.values()]:
        for obj in objs:
            key = (obj["apiVersion"], obj["kind"])
            assert key in schemas.crd_validators() or schemas._k8s_validator(obj["kind"], obj["apiVersion"]) is not None, key


def test_expected_names(repo_root):
    _, rendered = v.render_all(repo_root)
    for env in names.ENVIRONMENTS:
        objs = rendered[f"apps/{env}"]
        kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"):
            assert (kind, "app") in kinds
        assert ("Namespace", env) in kinds
        deployment = next(o for o in objs if o["kind"] == "Deployment")
        assert deployment["metadata"]["namespace"] == env
        assert "replicas" not in deployment["spec"]
    assert any(o["kind"] == "HelmRelease" and o["metadata"] == {"name": "kube-prometheus-stack", "namespace": "monitoring"}
               for o in rendered["infrastructure"])
