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
