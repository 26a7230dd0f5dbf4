"""flux-cd/ repeats a few pins from tasks/versions.py: they must agree."""

from __future__ import annotations

import yaml

from tasks import versions


def test_kube_prometheus_stack_chart_matches_pin(repo_root):
    repo = yaml.safe_load((repo_root / "flux-cd/infrastructure/monitoring/repository.yaml").read_text())
    assert repo["spec"]["url"] == "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack"
    assert repo["spec"]["ref"]["tag"] == versions.KUBE_PROMETHEUS_STACK_CHART


def test_no_other_chart_version_in_the_tree(repo_root):
    """The pin appears once, so it cannot drift inside the tree either."""
    hits = [p for p in (repo_root / "flux-cd").rglob("*.yaml") if versions.KUBE_PROMETHEUS_STACK_CHART in p.read_text()]
    assert [p.name for p in hits] == ["repository.yaml"]


def _image_overrides(values: dict) -> list[tuple[str, str, str]]:
    """(component, field, value) for each image field the lab's HelmRelease values set."""
    from tasks.steps import stack_images
    found = []
    for comp in stack_images.COMPONENTS:
        image = stack_images._get(values, comp.image_values, {}) or {}
        found += [(comp.name, key, str(image[key])) for key in ("registry", "repository", "tag", "sha", "digest")
                  if isinstance(image, dict) and image.get(key)]
    return found


def check_release_images_match_pins(release_path) -> list[str]:
    """Where flux-cd/'s HelmRelease sets an image, tasks/versions.py must say the same (one place to
    read the stack's versions); it may not move every registry elsewhere either."""
    from tasks.steps import stack_images
    doc = yaml.safe_load(release_path.read_text())
    values = doc["spec"].get("values") or {}
    problems = []
    if stack_images._get(values, "global.imageRegistry"):
        problems.append("global.imageRegistry is set: pin the registries in tasks/versions.py instead")
    for name, key, value in _image_overrides(values):
        pin = versions.KUBE_PROMETHEUS_STACK_IMAGES[name]
        registry, repository, tag = stack_images._split(pin)
        pinned = {"registry": registry, "repository": repository, "tag": tag}.get(key, "")
        if key == "tag" and name == "node-exporter":
            pinned = tag.removesuffix(stack_images.DISTROLESS)
        if value != pinned:
            problems.append(f"{name}: release.yaml sets image {key} {value!r}, tasks/versions.py pins {pin}")
    return problems


def test_image_overrides_in_the_release_equal_the_pins(repo_root):
    assert check_release_images_match_pins(repo_root / "flux-cd/infrastructure/monitoring/release.yaml") == []


def test_an_override_that_differs_from_its_pin_is_caught(tmp_path, repo_root):
    release = yaml.safe_load((repo_root / "flux-cd/infrastructure/monitoring/release.yaml").read_text())
    release["spec"]["values"]["prometheus"]["prometheusSpec"]["image"] = {"tag": "v3.15.0"}
    release["spec"]["values"]["grafana"]["image"] = {"tag": "13.2.0"}  # the same as the pin: fine
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(release))
    problems = check_release_images_match_pins(path)
    assert len(problems) == 1 and problems[0].startswith("prometheus: release.yaml sets image tag 'v3.15.0'")
