"""The app's Grafana dashboard: a JSON file under flux-cd/, shipped as a ConfigMap
the stack's sidecar loads, pinned to the stack's Prometheus datasource, and every
query parses and uses only series the app, kube-state-metrics or cAdvisor export."""
from __future__ import annotations

import json

import promql
import pytest
from obs_names import DASHBOARD_FILE, ENVIRONMENTS, label_values, stored_series

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def _panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels") or []


def _queries(dashboard):
    """(panel title, expression with Grafana variables expanded)."""
    variables = {"namespace": "|".join(ENVIRONMENTS)}
    for panel in _panels(dashboard):
        for target in panel.get("targets") or []:
            yield panel["title"], promql.expand_grafana(target["expr"], variables)
    for var in dashboard["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        assert query.startswith("label_values(") and query.endswith(")")
        selector, _, label = query[len("label_values("):-1].rpartition(",")
        assert label.strip() == var["name"] == "namespace"
        yield f"variable {var['name']}", selector


def _release_values(rendered):
    release = next(o for o in rendered["infrastructure"] if o["kind"] == "HelmRelease")
    assert release["metadata"]["name"] == "kube-prometheus-stack"
    return release["spec"]["values"]


def test_dashboard_json_loads_with_a_stable_uid(dashboard):
    assert dashboard["uid"] == "gitops-lab-app"
    assert dashboard["title"]
    assert json.loads(DASHBOARD_FILE.read_text()) == dashboard
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_every_panel_and_query_is_pinned_to_the_stacks_prometheus(dashboard, rendered):
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for var in dashboard["templating"]["list"]:
        assert var["datasource"] == DATASOURCE
    # ... which is the uid the HelmRelease gives the stack's datasource.
    assert _release_values(rendered)["grafana"]["sidecar"]["datasources"]["uid"] == DATASOURCE["uid"]


def test_namespace_variable_filters_every_query(dashboard):
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["namespace"]
    var = dashboard["templating"]["list"][0]
    assert var["multi"] and var["includeAll"]
    for panel in _panels(dashboard):
        for target in panel.get("targets") or []:
            for sel in promql.selectors(promql.parse(promql.expand_grafana(target["expr"], {"namespace": "X"}))):
                assert sel.label("namespace") == ("=~", "X"), f"{panel['title']}: {sel.name} ignores $namespace"


def test_every_query_parses_and_uses_existing_series(dashboard, rendered, app_metrics):
    objs = rendered["apps/dev"]
    monitor = next(o for o in objs if o["kind"] == "ServiceMonitor")
    honor = bool(monitor["spec"]["endpoints"][0].get("honorLabels", False))
    rule = next(o for o in objs if o["kind"] == "PrometheusRule")
    recorded = {r["record"]: {"namespace"} | set(r.get("labels") or {})
                for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r}
    series = stored_series(app_metrics, honor, recorded)
    targets = {"endpoint": {monitor["spec"]["endpoints"][0]["port"]}}
    seen = set()
    for title, expr in _queries(dashboard):
        tree = promql.parse(expr)
        for sel in promql.selectors(tree):
            assert sel.name in series, f"{title}: {sel.name} is neither exported by the app nor allow-listed"
            seen.add(sel.name)
            for label, op, value in sel.matchers:
                assert label in series[sel.name], f"{title}: {sel.name} has no label {label} in Prometheus"
                known = label_values(app_metrics, sel.name, label, honor, targets)
                if known is not None and op == "=":
                    assert value in known, f"{title}: {sel.name}{{{label}={value!r}}}: Prometheus holds {sorted(known)}"
    # What the issue asks to see.
    assert {"http_requests_total", "http_request_duration_seconds_bucket", "http_requests_in_flight",
            "kube_horizontalpodautoscaler_status_current_replicas",
            "kube_horizontalpodautoscaler_status_desired_replicas",
            "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
            "kube_pod_container_resource_requests", "kube_pod_container_resource_limits",
            "kube_pod_container_status_restarts_total"} <= seen


def test_latency_panel_shows_p50_p90_p99_from_the_histogram(dashboard):
    quantiles = set()
    for _, expr in _queries(dashboard):
        if "histogram_quantile(" in expr:
            quantiles.add(float(expr.split("histogram_quantile(")[1].split(",")[0]))
            assert "http_request_duration_seconds_bucket" in expr and "le" in expr
    assert quantiles == {0.5, 0.9, 0.99}


def test_dashboard_configmap_is_generated_for_the_sidecar(rendered, dashboard):
    maps = [o for o in rendered["infrastructure"]
            if o["kind"] == "ConfigMap" and (o["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    assert len(maps) == 1
    cm = maps[0]
    assert cm["metadata"]["namespace"] == "monitoring"
    assert json.loads(cm["data"][DASHBOARD_FILE.name]) == dashboard
    # Grafana's $variables must reach Grafana untouched by Flux's post-build substitution.
    assert cm["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/substitute"] == "disabled"
    sidecar = _release_values(rendered)["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    assert sidecar["label"] == "grafana_dashboard" and str(sidecar["labelValue"]) == "1"
    assert sidecar.get("searchNamespace", "ALL") in ("ALL", "monitoring") or "monitoring" in sidecar["searchNamespace"]


def test_dashboard_is_generated_by_kustomize_from_the_json_file():
    import yaml

    kustomization = yaml.safe_load((DASHBOARD_FILE.parent / "kustomization.yaml").read_text())
    generators = kustomization["configMapGenerator"]
    assert [g["files"] for g in generators] == [[DASHBOARD_FILE.name]]
    assert generators[0]["options"]["labels"]["grafana_dashboard"] == "1"


@pytest.mark.parametrize("bad", ["sum(rate(http_requests_total[5m])", "rate(http_requests_total)"])
def test_a_broken_query_would_be_caught(bad):
    with pytest.raises(promql.PromQLError):
        promql.parse(bad)
