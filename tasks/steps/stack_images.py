"""The images kube-prometheus-stack pulls with the lab's values, known before any pod runs.

tasks/versions.py pins what the chart renders with its own defaults (KUBE_PROMETHEUS_STACK_IMAGES);
this module applies the values of the lab's HelmRelease (flux-cd/, the tree the lab publishes)
the way the chart's templates read them:
- a component the values disable pulls nothing (`grafana.enabled: false`: no Grafana, no sidecar);
- `registry` / `repository` / `tag` / `sha` (or node-exporter's `digest` and `distroless`) under
  the component's image values replace that part of the pin; `global.imageRegistry` every registry.

So `doit mirror_fill` copies, `doit mirror_status` lists and MIRRORS=offline checks the images the
cluster is about to pull, before the HelmRelease is even applied. `valuesFrom` (values read from the
cluster) cannot be known before the cluster exists and is not read: the lab declares none.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tasks import versions
from tasks.core import names


def _get(values: dict, path: str, default=None):
    cur = values
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def _on(values: dict, path: str, chart_default: bool = True) -> bool:
    return bool(_get(values, path, chart_default))


def _operator(v: dict) -> bool:
    return _on(v, "prometheusOperator.enabled")


def _grafana_sidecar(v: dict) -> bool:
    # grafana's pod runs k8s-sidecar for each of these loaders that is on (chart defaults: the
    # parent chart turns dashboards and datasources on, grafana's own chart the rest off).
    loaders = {"dashboards": True, "datasources": True, "alerts": False, "notifiers": False, "plugins": False}
    return _on(v, "grafana.enabled") and any(_on(v, f"grafana.sidecar.{name}.enabled", default)
                                             for name, default in loaders.items())


@dataclass(frozen=True)
class Component:
    name: str                         # key in versions.KUBE_PROMETHEUS_STACK_IMAGES
    image_values: str                 # where the chart's templates read its image
    needed: Callable[[dict], bool]    # with these values, does the chart run it?
    distroless: str = ""              # values path of a flag appending "-distroless" to the tag


# The conditions are the templates' own `if`s (chart 88.5.3 and its subcharts).
COMPONENTS = (
    Component("prometheus-operator", "prometheusOperator.image", _operator),
    # the operator runs it beside every Prometheus and Alertmanager it manages
    Component("prometheus-config-reloader", "prometheusOperator.prometheusConfigReloader.image",
              lambda v: _operator(v) and (_on(v, "prometheus.enabled") or _on(v, "alertmanager.enabled"))),
    Component("prometheus", "prometheus.prometheusSpec.image",
              lambda v: _operator(v) and _on(v, "prometheus.enabled")),
    Component("alertmanager", "alertmanager.alertmanagerSpec.image",
              lambda v: _operator(v) and _on(v, "alertmanager.enabled")),
    Component("kube-state-metrics", "kube-state-metrics.image", lambda v: _on(v, "kubeStateMetrics.enabled")),
    Component("node-exporter", "prometheus-node-exporter.image", lambda v: _on(v, "nodeExporter.enabled"),
              distroless="prometheus-node-exporter.image.distroless"),
    Component("kube-webhook-certgen", "prometheusOperator.admissionWebhooks.patch.image",
              lambda v: _operator(v) and _on(v, "prometheusOperator.admissionWebhooks.enabled")
              and _on(v, "prometheusOperator.admissionWebhooks.patch.enabled")
              and not _on(v, "prometheusOperator.admissionWebhooks.certManager.enabled", False)),
    Component("grafana", "grafana.image", lambda v: _on(v, "grafana.enabled")),
    Component("k8s-sidecar", "grafana.sidecar.image", _grafana_sidecar),
)
DISTROLESS = "-distroless"


def _split(ref: str) -> tuple[str, str, str]:
    """registry, repository, tag of a pinned reference (always registry/repository:tag)."""
    registry, _, rest = ref.partition("/")
    repository, _, tag = rest.rpartition(":")
    return registry, repository, tag


def image(component: Component, values: dict) -> str:
    """The reference the chart renders for `component` with `values` over its defaults."""
    registry, repository, tag = _split(versions.KUBE_PROMETHEUS_STACK_IMAGES[component.name])
    override = _get(values, component.image_values, {}) or {}
    if not isinstance(override, dict):
        override = {}
    suffix = ""
    if component.distroless:
        tag = tag.removesuffix(DISTROLESS)
        suffix = DISTROLESS if _on(values, component.distroless) else ""
    registry = _get(values, "global.imageRegistry") or override.get("registry") or registry
    repository = override.get("repository") or repository
    tag = (str(override.get("tag") or "") or tag) + suffix
    ref = f"{registry}/{repository}:{tag}"
    if override.get("digest"):
        ref += f"@{override['digest']}"
    elif override.get("sha"):
        sha = str(override["sha"])
        ref += "@" + (sha if sha.startswith("sha256:") else f"sha256:{sha}")
    return ref


def release_values(gitops_dir: Path | None = None) -> dict:
    """spec.values of the stack's HelmRelease as flux-cd/ declares it ({} if it declares none)."""
    import yaml
    from tasks.steps import sync
    layer = (gitops_dir or names.GITOPS_DIR) / sync.INFRASTRUCTURE_PATHS["full"]
    for path in sorted(layer.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if (isinstance(doc, dict) and doc.get("kind") == "HelmRelease"
                    and doc.get("metadata", {}).get("name") == names.MONITORING_CHART):
                return (doc.get("spec") or {}).get("values") or {}
    return {}


def needed(values: dict | None = None) -> dict[str, str]:
    """component → image reference, for each component the values leave on."""
    values = release_values() if values is None else values
    return {c.name: image(c, values) for c in COMPONENTS if c.needed(values)}
