"""The lab's names, in one place: used by the steps, `doit validate`, the day-2 commands and the tests.

The Flux layers are not repeated here: they are read from flux-cd/bootstrap/base, where the
Kustomization objects that Flux applies declare them (name, path, dependencies, timeout), as in
fluxcd's own examples. The environments are the layers under ./apps/. Everything else is a name
that flux-cd/, kind-three-node.yaml or the app declare too; tests/unit/test_names.py checks that
they agree, so a rename that misses one side fails there.

Only the standard library and PyYAML: importing this module runs no command.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# --- the GitOps tree and its Flux objects ----------------------------------------------------------
FLUX_DIR = "flux-cd"  # relative to the repository root; the OCI artifact's content
GITOPS_DIR = ROOT / FLUX_DIR
BOOTSTRAP_DIR = GITOPS_DIR / "bootstrap"
BOOTSTRAP_BASE = BOOTSTRAP_DIR / "base"  # the layers, shared by both sources
BOOTSTRAP_VARIANTS = ("oci", "git")  # flux-cd/bootstrap/<GITOPS_SOURCE>
FLUX_NAMESPACE = "flux-system"
SOURCE = "lab-gitops"  # OCIRepository/GitRepository flux-system/lab-gitops, and the OCI artifact's name
VARS_CONFIGMAP = "lab-vars"  # ConfigMap flux-system/lab-vars: post-build substitution variables
VARS_IMAGE_KEY = "APP_IMAGE"  # its key holding the app's image reference
PULL_SECRET = "lab-registry"  # flux-system/lab-registry: the OCIRepository's credential for a remote REGISTRY
GIT_SECRET = "lab-git"  # flux-system/lab-git: the credential of a private GITOPS_SOURCE=git repository
MANAGED_BY = {"app.kubernetes.io/managed-by": "gitops-lab"}  # on the objects the lab writes itself

_FLUX_KUSTOMIZATION_API = "kustomize.toolkit.fluxcd.io/"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # LibYAML when PyYAML has it: same objects


@dataclass(frozen=True)
class Layer:
    """One Flux Kustomization of the bootstrap: what Flux applies, from where, after what."""

    name: str  # Kustomization flux-system/<name>
    path: str  # folder under flux-cd/, without "./" (the OCI artifact's layout)
    depends_on: tuple[str, ...]
    timeout: str  # spec.timeout, a Go duration


def read_layers(base: Path = BOOTSTRAP_BASE) -> tuple[Layer, ...]:
    """The Flux Kustomizations of the bootstrap, in the order its kustomization.yaml lists them."""
    index = yaml.load((base / "kustomization.yaml").read_text(), Loader=_LOADER) or {}
    layers = []
    for resource in index.get("resources") or []:
        for doc in yaml.load_all((base / resource).read_text(), Loader=_LOADER):
            if not doc or doc.get("kind") != "Kustomization" \
                    or not str(doc.get("apiVersion", "")).startswith(_FLUX_KUSTOMIZATION_API):
                continue
            spec = doc.get("spec") or {}
            layers.append(Layer(name=doc["metadata"]["name"], path=str(spec.get("path", "")).removeprefix("./"),
                                depends_on=tuple(d["name"] for d in spec.get("dependsOn") or []),
                                timeout=str(spec.get("timeout", "5m"))))
    return tuple(layers)


LAYERS = read_layers()
FLUX_KUSTOMIZATIONS = tuple(layer.name for layer in LAYERS)
INFRASTRUCTURE_PATH = "infrastructure"  # the infrastructure layer's folder (MONITORING picks one below it)
INFRASTRUCTURE = next(layer.name for layer in LAYERS if layer.path == INFRASTRUCTURE_PATH)
APPS_PATH = "apps"  # apps/base, and one overlay apps/<env> per environment
_APPS = [layer for layer in LAYERS if layer.path.startswith(APPS_PATH + "/")]  # the overlays apps/<env>
ENVIRONMENTS = tuple(layer.path.split("/", 1)[1] for layer in _APPS)  # also the namespaces they create
APP_LAYERS = {env: layer.name for env, layer in zip(ENVIRONMENTS, _APPS)}  # dev -> apps-dev, ...
APP_PATHS = {env: layer.path for env, layer in zip(ENVIRONMENTS, _APPS)}  # dev -> apps/dev, ...


def layer(name: str) -> Layer:
    return next(x for x in LAYERS if x.name == name)


# --- nodes -----------------------------------------------------------------------------------------
WORKER_LABEL = "gitops-lab/tier"  # set on the workers by kind-three-node.yaml `labels:`
WORKER_VALUE = "worker"
WORKER_SELECTOR = f"{WORKER_LABEL}={WORKER_VALUE}"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"  # label and taint of the control-plane

# --- the app (flux-cd/apps/base) -------------------------------------------------------------------
APP = "app"  # Deployment, Service, HPA, PDB and container, in every environment
APP_LABELS = {"app.kubernetes.io/name": APP}
APP_SELECTOR = ",".join(f"{k}={v}" for k, v in APP_LABELS.items())
APP_PORT = 8000  # container port named http, Service port
APP_PORT_NAME = "http"

# --- monitoring (flux-cd/infrastructure) -------------------------------------------------------------
MONITORING_NAMESPACE = "monitoring"
MONITORING_CHART = "kube-prometheus-stack"  # the chart, and the HelmRelease monitoring/kube-prometheus-stack
PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com"  # ServiceMonitor, PrometheusRule
GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"  # the chart's Grafana sidecar loads ConfigMaps labelled so

# --- local registry mirrors (tasks/steps/mirrors.py) ---------------------------------------------------
MIRROR_FOR_LABEL = "gitops-lab.mirror-for"  # on each mirror container: the REGISTRY_NAME of its lab
MIRROR_MODE_LABEL = "gitops-lab.mirror-mode"  # on each mirror container: the MIRRORS mode it runs in

# --- what the day-2 commands create --------------------------------------------------------------------
DEBUG_LABEL = "gitops-lab/debug"  # probe, outsider, shell
PROBE_POD = "lab-debug-curl"
OUTSIDER = "lab-outsider"  # a namespace the app's NetworkPolicies do not admit
