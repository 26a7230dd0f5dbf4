"""Flux readiness counts the objects the lab expects by name (issue 24 item 8): a missing Kustomization
is never masked by another object being Ready, and an empty cluster is never "Ready"."""
from __future__ import annotations

import types

import pytest

from tasks.core import config, flux_status, names
from tasks.core.errors import LabError

GROUPS = {"Kustomization": "kustomize.toolkit.fluxcd.io/v1", "OCIRepository": "source.toolkit.fluxcd.io/v1",
          "HelmRelease": "helm.toolkit.fluxcd.io/v2"}


def ready(kind: str, name: str, namespace: str = names.FLUX_NAMESPACE) -> dict:
    return {"apiVersion": GROUPS[kind], "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": ""}]}}


def lab_reading(monkeypatch, objs: list[dict]):
    monkeypatch.setattr(flux_status, "objects", lambda lab, quiet=False, fresh=False: list(objs))
    return types.SimpleNamespace(cfg=config.load({}, {}))


def the_lab_without(*absent: str) -> list[dict]:
    objs = [ready("OCIRepository", names.SOURCE), ready("HelmRelease", "kube-prometheus-stack", "monitoring"),
            ready("OCIRepository", "kube-prometheus-stack", "monitoring")]
    return objs + [ready("Kustomization", ks) for ks in names.FLUX_KUSTOMIZATIONS if ks not in absent]


def test_the_whole_lab_ready_is_ready(monkeypatch):
    lab = lab_reading(monkeypatch, the_lab_without())
    assert len(flux_status.wait_ready(lab, timeout=0, poll=0)) == 3 + len(names.FLUX_KUSTOMIZATIONS)


def test_a_missing_kustomization_is_not_masked_by_other_ready_objects(monkeypatch, capsys):
    objs = the_lab_without("apps-dev")
    # As many Ready objects as the lab has Kustomizations: a count would call this done.
    assert len(objs) >= len(names.FLUX_KUSTOMIZATIONS)
    lab = lab_reading(monkeypatch, objs)
    assert flux_status.missing(lab.cfg, objs) == ["Kustomization/flux-system/apps-dev"]
    with pytest.raises(LabError) as err:
        flux_status.wait_ready(lab, timeout=0, poll=0)
    line = err.value.line()
    assert "Kustomization/flux-system/apps-dev does not exist" in line and "run `doit sync`" in line
    assert "waiting: Kustomization/flux-system/apps-dev: does not exist" in capsys.readouterr().out


def test_a_kustomization_elsewhere_or_of_another_kind_does_not_count(monkeypatch):
    objs = the_lab_without("apps-dev") + [ready("Kustomization", "apps-dev", "default"),
                                           ready("HelmRelease", "apps-dev")]
    lab = lab_reading(monkeypatch, objs)
    with pytest.raises(LabError, match="apps-dev does not exist"):
        flux_status.wait_ready(lab, timeout=0, poll=0)


def test_no_flux_objects_at_all_is_never_ready(monkeypatch):
    lab = lab_reading(monkeypatch, [])
    with pytest.raises(LabError) as err:
        flux_status.wait_ready(lab, timeout=0, poll=0)
    for ks in names.FLUX_KUSTOMIZATIONS:
        assert f"Kustomization/flux-system/{ks}" in err.value.line()
    assert f"OCIRepository/flux-system/{names.SOURCE}" in err.value.line()


def test_the_source_is_expected_by_its_kind(monkeypatch):
    objs = [o for o in the_lab_without() if o["metadata"]["name"] != names.SOURCE]
    oci = config.load({}, {})
    assert flux_status.missing(oci, objs) == [f"OCIRepository/flux-system/{names.SOURCE}"]
    git = config.load({"GITOPS_SOURCE": "git"}, {})
    assert flux_status.missing(git, the_lab_without()) == [f"GitRepository/flux-system/{names.SOURCE}"]
