"""The monitoring stack the infrastructure layer installs, described once (`Chart`), and the rules
that follow from it: the pinned chart version, its CRDs' API group (what the app layer may use only
after it), its Grafana's dashboard label, the namespace that scrapes. Another chart is another
`Chart`, not an edit of every rule."""
from __future__ import annotations

import json
from dataclasses import dataclass

from tasks import versions
from tasks.core import names
from tasks.validation.render import FLUX_DIR, find, ident

INFRASTRUCTURE = names.INFRASTRUCTURE_PATH


@dataclass(frozen=True)
class Chart:
    name: str  # the chart, and the HelmRelease installing it
    version: str  # the pin (tasks/versions.py)
    namespace: str  # where it runs; the app's NetworkPolicies admit scrapes from there
    crd_group: str  # the API group of the CRDs it installs (ServiceMonitor, PrometheusRule, ...)
    dashboard_label: str  # ConfigMaps with this label are Grafana dashboards
    # values paths of the `resources` of each component it runs: the lab sizes every one of them
    sized: tuple[str, ...] = ()


MONITORING = Chart(name=names.MONITORING_CHART, version=versions.KUBE_PROMETHEUS_STACK_CHART,
                   namespace=names.MONITORING_NAMESPACE, crd_group=names.PROMETHEUS_OPERATOR_GROUP,
                   dashboard_label=names.GRAFANA_DASHBOARD_LABEL,
                   sized=("prometheus.prometheusSpec.resources", "prometheusOperator.resources",
                          "kube-state-metrics.resources", "prometheus-node-exporter.resources", "grafana.resources"))


def uses_crds(obj: dict, chart: Chart = MONITORING) -> bool:
    """Is OBJ of a kind that exists only once the chart installed its CRDs?"""
    return obj.get("apiVersion", "").startswith(chart.crd_group + "/")


def chart_version(objs: list[dict], chart: Chart = MONITORING) -> str | None:
    for o in objs:
        if o.get("kind") == "OCIRepository" and o["spec"].get("url", "").endswith(f"/{chart.name}"):
            return str((o["spec"].get("ref") or {}).get("tag"))
    return None


def version_problems(rendered: dict[str, list[dict]], chart: Chart = MONITORING) -> list[str]:
    found = chart_version(rendered[INFRASTRUCTURE], chart)
    if found != chart.version:
        return [f"{FLUX_DIR}/{INFRASTRUCTURE}: [versions] {chart.name} chart {found} != tasks/versions.py {chart.version}"]
    return []


def observability_problems(rendered: dict[str, list[dict]], chart: Chart = MONITORING) -> list[str]:
    """Alert rules fully rendered (no kustomize $(VAR) left) and dashboard ConfigMaps
    holding valid JSON that Flux will not substitute into."""
    p = []
    for env, path in names.APP_PATHS.items():
        for rule in find(rendered.get(path, []), "PrometheusRule"):
            for group in rule["spec"].get("groups") or []:
                for r in group.get("rules") or []:
                    text = json.dumps({"expr": r.get("expr"), "labels": r.get("labels")})
                    if "$(" in text:
                        p.append(f"{FLUX_DIR}/{path}: {ident(rule)}: [alerts] {r.get('alert') or r.get('record')}: "
                                 f"unresolved kustomize var in {text}")
    for cm in find(rendered.get(INFRASTRUCTURE, []), "ConfigMap"):
        meta = cm.get("metadata") or {}
        if (meta.get("labels") or {}).get(chart.dashboard_label) is None:
            continue
        for key, value in (cm.get("data") or {}).items():
            try:
                json.loads(value)
            except ValueError as exc:
                p.append(f"{FLUX_DIR}/{INFRASTRUCTURE}: {ident(cm)}: [dashboard] {key} is not JSON: {exc}")
        marks = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
        if marks.get("kustomize.toolkit.fluxcd.io/substitute") != "disabled":
            p.append(f"{FLUX_DIR}/{INFRASTRUCTURE}: {ident(cm)}: [dashboard] needs kustomize.toolkit.fluxcd.io/substitute: "
                     f"disabled (Grafana's $variables are not Flux variables)")
    return p


def _resources_blocks(values, path=""):
    """(values path, block) of every `resources` mapping in a HelmRelease's values."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        if key == "resources" and isinstance(value, dict):
            yield here, value
        else:
            yield from _resources_blocks(value, here)


def sizing_problems(rendered: dict[str, list[dict]], chart: Chart = MONITORING) -> list[str]:
    """The stack's requests and limits (spec.values of its HelmRelease, the one place they are set):
    each sized component requests cpu and memory and caps memory, and no request exceeds its limit
    (the API server refuses such a pod, and the HelmRelease would wait for it in vain)."""
    from tasks.validation.policies import parse_quantity
    p = []
    for release in find(rendered.get(INFRASTRUCTURE, []), "HelmRelease"):
        if release["metadata"]["name"] != chart.name:
            continue
        values = release["spec"].get("values") or {}
        where = f"{FLUX_DIR}/{INFRASTRUCTURE}: {ident(release)}: [sizing]"
        blocks = dict(_resources_blocks(values))
        for path in chart.sized:
            block = blocks.get(path) or {}
            missing = [f"requests.{r}" for r in ("cpu", "memory") if r not in (block.get("requests") or {})]
            missing += [] if "memory" in (block.get("limits") or {}) else ["limits.memory"]
            if missing:
                p.append(f"{where} {path} sets no {', '.join(missing)}")
        for path, block in blocks.items():
            for res, limit in (block.get("limits") or {}).items():
                request = (block.get("requests") or {}).get(res)
                if request is not None and parse_quantity(request) > parse_quantity(limit):
                    p.append(f"{where} {path}: requests.{res} {request} exceeds limits.{res} {limit}")
    return p
