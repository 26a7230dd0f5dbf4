"""The pieces of `doit watch` and `doit promote` that need no subprocess: their settings, the pinned
bootstrap, which saved paths are inputs, and the status line."""
from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from tasks.core import config, names, state
from tasks.day2 import watch
from tasks.steps import pinning
from tasks.steps import sync
from tasks.core.errors import LabError


@pytest.mark.parametrize("value,cleaned", [("", ""), ("dev", "dev"), (" dev , staging ", "dev,staging"),
                                           ("dev,staging,production", "")])
def test_watch_envs_is_the_start_of_the_promotion_order(value, cleaned):
    assert config.load({"WATCH_ENVS": value}, {}).WATCH_ENVS == cleaned


@pytest.mark.parametrize("name,value,fragment", [
    ("WATCH_ENVS", "staging", "dev, or dev,staging"),
    ("WATCH_ENVS", "dev,production", "promotion order"),
    ("WATCH_ENVS", "qa", "dev, or dev,staging"),
    ("PROMOTE_TO", "dev", "staging or production"),
    ("WATCH_DEBOUNCE_MS", "0", "10 to 60000"),
    ("WATCH_DEBOUNCE_MS", "fast", "10 to 60000"),
])
def test_invalid_watch_settings_are_refused_with_one_line(name, value, fragment):
    with pytest.raises(LabError) as err:
        config.load({name: value}, {})
    line = err.value.line()
    assert "\n" not in line and name in line and fragment in line


def test_watch_envs_needs_the_oci_source():
    with pytest.raises(LabError) as err:
        config.load({"WATCH_ENVS": "dev", "GITOPS_SOURCE": "git"}, {})
    assert "GITOPS_SOURCE=oci" in err.value.line()


def bootstrap() -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(sync.GITOPS_DIR / "bootstrap" / "oci")], check=True,
                         capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_name(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_without_watch_envs_the_bootstrap_is_untouched():
    docs = bootstrap()
    cfg = config.load({}, {})
    assert pinning.pinned(cfg) == () and pinning.watched(cfg) == names.ENVIRONMENTS
    assert pinning.apply_pinning(copy.deepcopy(docs), pinning.pinned(cfg)) == docs


def test_watch_envs_dev_pins_staging_and_production_to_their_own_tag_and_variables():
    cfg = config.load({"WATCH_ENVS": "dev"}, {})
    docs = pinning.apply_pinning(bootstrap(), pinning.pinned(cfg))
    main = by_name(docs, "OCIRepository", "lab-gitops")
    assert main["spec"]["ref"] == {"tag": "latest"}
    for env in ("staging", "production"):
        src = by_name(docs, "OCIRepository", f"lab-gitops-{env}")
        assert src["spec"]["ref"] == {"tag": env} and src["spec"]["url"] == main["spec"]["url"]
        ks = by_name(docs, "Kustomization", f"apps-{env}")
        assert ks["spec"]["sourceRef"] == {"kind": "OCIRepository", "name": f"lab-gitops-{env}"}
        assert ks["spec"]["postBuild"]["substituteFrom"] == [{"kind": "ConfigMap", "name": f"lab-vars-{env}"}]
    dev = by_name(docs, "Kustomization", "apps-dev")
    assert dev["spec"]["sourceRef"]["name"] == "lab-gitops"
    assert {"kind": "ConfigMap", "name": "lab-vars", "optional": True} in dev["spec"]["postBuild"]["substituteFrom"]
    listed = [d for d in docs if d["kind"] == "Kustomization"]
    assert pinning.bootstrap_matches(cfg, listed, [d for d in docs if d["kind"] == "OCIRepository"])
    assert not pinning.bootstrap_matches(config.load({}, {}), listed, [])
    assert pinning.stale(config.load({}, {}), listed) == ["staging", "production"]
    assert pinning.stale(cfg, listed) == []


def test_inputs_are_what_the_graph_reads(tmp_path):
    inputs = watch.Inputs(config.load({}, {}))
    root = state.ROOT
    assert inputs.kind_of(root / "app" / "server.py") == "app"
    assert inputs.kind_of(root / "app" / "Dockerfile") == "app"
    assert inputs.kind_of(root / "app" / "__pycache__" / "server.cpython-312.pyc") is None
    assert inputs.kind_of(root / "flux-cd" / "apps" / "dev" / "kustomization.yaml") == "manifests"
    assert inputs.kind_of(root / "hack" / "metrics-server" / "kustomization.yaml") == "metrics-server"
    assert inputs.kind_of(root / "hack" / "metrics-server" / "README.md") is None
    assert inputs.kind_of(root / "kind-three-node.yaml") == "cluster"
    assert inputs.kind_of(root / "tasks" / "versions.py") == "settings"
    assert inputs.kind_of(root / "tasks" / "sync.py") is None
    assert inputs.kind_of(root / "README.md") is None
    assert inputs.kind_of(root / ".lab" / "doit.json") is None
    assert root / "kind-three-node.yaml" not in [*inputs.trees]
    assert root in inputs.folders()  # the kind config is watched through its folder, not its inode
    existing = watch.Inputs(config.load({"CLUSTER_PROVIDER": "existing", "KUBE_CONTEXT": "x",
                                         "REGISTRY": "ghcr.io/me"}, {}))
    assert existing.kind_of(root / "kind-three-node.yaml") is None


def test_a_failed_run_says_what_failed_in_one_line():
    cfg = config.load({}, {})
    record = {"executed": ["preflight", "image", "app_push", "sync"], "failed":
              [{"task": "sync", "error": "`flux push artifact …` failed with exit code 1 — fake: injected failure"}],
              "errors": [], "values": {}, "finished": {}}
    changed = {state.ROOT / "app" / "server.py": 100.0}
    out = watch.summarize(cfg, 2, changed, ["app"], False, 1, 101.0, 104.5, record)
    assert not out["ok"] and out["steps"] == ["image", "app_push", "sync"]
    assert out["error"].startswith("sync: `flux push artifact") and out["save_to_serving"] is None
    good = dict(record, failed=[], values={"verify": {"serving": {"dev": "a", "staging": "a", "production": "b"}}},
                finished={"verify": 103.0})
    out = watch.summarize(cfg, 3, changed, ["app"], False, 0, 101.0, 104.5, good)
    assert out["ok"] and out["save_to_serving"] == 3.0 and out["took"] == 3.5
    assert watch.serving_text(out["serving"]) == "dev, staging: a; production: b"
    assert watch.changes_text([f"f{i}" for i in range(5)]) == "f0, f1, f2 +2 more"
