"""tasks/core/names.py agrees with the files that declare the same names: flux-cd/ (the bootstrap's
layers, the overlays, the app, the monitoring stack) and kind-three-node.yaml. A rename on one side
only fails here. Read straight from the YAML (no kustomize): nothing to install."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tasks.core import config, names

ROOT = names.ROOT
FLUX = ROOT / names.FLUX_DIR


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(path: Path, kind: str) -> dict:
    (found,) = [d for d in docs(path) if d.get("kind") == kind]
    return found


def flux_kustomizations(folder: Path) -> list[dict]:
    return [d for path in sorted(folder.glob("*.yaml")) for d in docs(path)
            if d.get("kind") == "Kustomization" and d["apiVersion"].startswith("kustomize.toolkit.fluxcd.io/")]


def test_the_layers_are_the_bootstraps_flux_kustomizations():
    declared = flux_kustomizations(names.BOOTSTRAP_BASE)
    assert sorted(names.FLUX_KUSTOMIZATIONS) == sorted(d["metadata"]["name"] for d in declared)
    for doc in declared:
        layer = names.layer(doc["metadata"]["name"])
        assert doc["metadata"]["namespace"] == names.FLUX_NAMESPACE
        assert "./" + layer.path == doc["spec"]["path"] and (FLUX / layer.path).is_dir()
        assert layer.depends_on == tuple(d["name"] for d in doc["spec"].get("dependsOn") or [])
        assert layer.timeout == doc["spec"]["timeout"]
    # the infrastructure first, every app layer after it
    assert names.FLUX_KUSTOMIZATIONS[0] == names.INFRASTRUCTURE
    assert all(names.layer(name).depends_on == (names.INFRASTRUCTURE,) for name in names.APP_LAYERS.values())


def test_a_layer_added_to_the_bootstrap_is_a_layer_of_the_lab(tmp_path):
    base = tmp_path / "base"
    shutil.copytree(names.BOOTSTRAP_BASE, base)
    apps = base / "apps.yaml"
    qa = docs(apps)[0] | {"metadata": {"name": "apps-qa", "namespace": names.FLUX_NAMESPACE}}
    qa["spec"] = qa["spec"] | {"path": "./apps/qa"}
    apps.write_text(apps.read_text() + "---\n" + yaml.safe_dump(qa))
    assert [layer.name for layer in names.read_layers(base)] == [*names.FLUX_KUSTOMIZATIONS, "apps-qa"]


def test_the_environments_are_the_overlays():
    overlays = sorted(p.name for p in (FLUX / names.APPS_PATH).iterdir() if p.is_dir() and p.name != "base")
    assert sorted(names.ENVIRONMENTS) == overlays
    for env in names.ENVIRONMENTS:
        assert names.APP_PATHS[env] == f"{names.APPS_PATH}/{env}"
        assert one(FLUX / names.APP_PATHS[env] / "namespace.yaml", "Namespace")["metadata"]["name"] == env
        cfg = config.load({"APP_ENV": env, "HPA_NAMESPACE": env}, env={})  # the settings accept each one
        assert (cfg.APP_ENV, cfg.HPA_NAMESPACE) == (env, env)


def test_the_source_and_the_substitution_configmap():
    for variant in names.BOOTSTRAP_VARIANTS:
        source = docs(names.BOOTSTRAP_DIR / variant / "source.yaml")[0]
        assert source["metadata"] == {"name": names.SOURCE, "namespace": names.FLUX_NAMESPACE}
    assert one(names.BOOTSTRAP_DIR / "oci" / "source.yaml", "OCIRepository")["spec"]["url"].endswith("/" + names.SOURCE)
    for doc in flux_kustomizations(names.BOOTSTRAP_BASE):
        if doc["metadata"]["name"] in names.APP_LAYERS.values():
            assert {"kind": "ConfigMap", "name": names.VARS_CONFIGMAP, "optional": True} \
                in doc["spec"]["postBuild"]["substituteFrom"]
    assert "${" + names.VARS_IMAGE_KEY + ":=" in (FLUX / names.APPS_PATH / "base" / "deployment.yaml").read_text()


def test_the_worker_label_is_the_kind_configs_and_the_apps():
    nodes = yaml.safe_load((ROOT / "kind-three-node.yaml").read_text())["nodes"]
    for node in nodes:
        if node["role"] == "worker":
            assert node["labels"] == {names.WORKER_LABEL: names.WORKER_VALUE}
    pod = one(FLUX / names.APPS_PATH / "base" / "deployment.yaml", "Deployment")["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": names.WORKER_LABEL, "operator": "In", "values": [names.WORKER_VALUE]}]
    assert names.WORKER_SELECTOR == f"{names.WORKER_LABEL}={names.WORKER_VALUE}"


def test_the_apps_names():
    base = FLUX / names.APPS_PATH / "base"
    dep = one(base / "deployment.yaml", "Deployment")
    assert dep["metadata"]["name"] == names.APP
    assert dep["spec"]["selector"]["matchLabels"] == names.APP_LABELS
    assert names.APP_LABELS.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["name"] == names.APP
    assert {"name": names.APP_PORT_NAME, "containerPort": names.APP_PORT} in \
        [{k: p[k] for k in ("name", "containerPort")} for p in container["ports"]]
    svc = one(base / "service.yaml", "Service")
    assert svc["metadata"]["name"] == names.APP and svc["spec"]["selector"] == names.APP_LABELS
    assert [p["port"] for p in svc["spec"]["ports"]] == [names.APP_PORT]
    for kind, file in (("HorizontalPodAutoscaler", "hpa.yaml"), ("PodDisruptionBudget", "pdb.yaml")):
        assert one(base / file, kind)["metadata"]["name"] == names.APP
    assert names.APP_SELECTOR == "app.kubernetes.io/name=" + names.APP


def test_the_monitoring_names():
    infra = FLUX / names.INFRASTRUCTURE_PATH
    assert one(infra / "namespace" / "namespace.yaml", "Namespace")["metadata"]["name"] == names.MONITORING_NAMESPACE
    release = one(infra / "monitoring" / "release.yaml", "HelmRelease")
    assert release["metadata"] == {"name": names.MONITORING_CHART, "namespace": names.MONITORING_NAMESPACE}
    chart = one(infra / "monitoring" / "repository.yaml", "OCIRepository")
    assert chart["spec"]["url"].endswith("/" + names.MONITORING_CHART)
    dashboards = yaml.safe_load((infra / "monitoring" / "dashboards" / "kustomization.yaml").read_text())
    assert names.GRAFANA_DASHBOARD_LABEL in dashboards["configMapGenerator"][0]["options"]["labels"]
    for file in ("servicemonitor.yaml", "prometheusrule.yaml"):
        assert docs(FLUX / names.APPS_PATH / "base" / file)[0]["apiVersion"].startswith(names.PROMETHEUS_OPERATOR_GROUP + "/")
    netpols = docs(FLUX / names.APPS_PATH / "base" / "networkpolicies.yaml")
    admitted = [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for pol in netpols for rule in pol["spec"].get("ingress") or [] for peer in rule.get("from") or []
                if "namespaceSelector" in peer]
    assert admitted == [names.MONITORING_NAMESPACE]
