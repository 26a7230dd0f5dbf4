"""Shared by the observability tests (a uniquely named module: several test
directories have a conftest.py). What Prometheus stores, for the name checks: the app's series as the
ServiceMonitor scrapes them, plus an explicit allow-list of the
kube-state-metrics and cAdvisor series (and their labels) the lab's queries use."""
from __future__ import annotations

import pathlib

from tasks.core import names

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
DASHBOARD_FILE = REPO / "flux-cd" / "infrastructure" / "monitoring" / "dashboards" / "gitops-lab-app.json"
ENVIRONMENTS = names.ENVIRONMENTS

# kube-state-metrics v2 (kube-prometheus-stack's subchart) and the kubelet's cAdvisor.
# Every series gets job/instance/... target labels too (TARGET_LABELS).
KSM_CADVISOR: dict[str, set[str]] = {
    "kube_deployment_spec_replicas": {"namespace", "deployment"},
    "kube_deployment_status_replicas_available": {"namespace", "deployment"},
    "kube_deployment_status_replicas_unavailable": {"namespace", "deployment"},
    "kube_horizontalpodautoscaler_spec_min_replicas": {"namespace", "horizontalpodautoscaler"},
    "kube_horizontalpodautoscaler_spec_max_replicas": {"namespace", "horizontalpodautoscaler"},
    "kube_horizontalpodautoscaler_status_current_replicas": {"namespace", "horizontalpodautoscaler"},
    "kube_horizontalpodautoscaler_status_desired_replicas": {"namespace", "horizontalpodautoscaler"},
    "kube_pod_container_resource_requests": {"namespace", "pod", "container", "node", "resource", "unit"},
    "kube_pod_container_resource_limits": {"namespace", "pod", "container", "node", "resource", "unit"},
    "kube_pod_container_status_restarts_total": {"namespace", "pod", "container"},
    "container_cpu_usage_seconds_total": {"namespace", "pod", "container", "id", "image", "name", "cpu"},
    "container_memory_working_set_bytes": {"namespace", "pod", "container", "id", "image", "name"},
}

# Labels the Prometheus Operator attaches to every target of a ServiceMonitor endpoint.
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod", "container", "endpoint"}


def scraped_labels(app_labels: set[str], honor_labels: bool) -> set[str]:
    """The label names a scraped series carries in Prometheus.

    A scraped label that clashes with a target label is kept as `exported_<name>`
    unless the ServiceMonitor sets honorLabels: true (then the scraped one wins)."""
    if honor_labels:
        return set(app_labels) | TARGET_LABELS
    return {f"exported_{k}" if k in TARGET_LABELS else k for k in app_labels} | TARGET_LABELS


def stored_series(app_metrics: dict[str, dict[str, set[str]]], honor_labels: bool,
                  recorded: dict[str, set[str]]) -> dict[str, set[str]]:
    """{series name: label names} for everything a query may use."""
    out = {name: scraped_labels(set(labels), honor_labels) for name, labels in app_metrics.items()}
    out.update({name: labels | TARGET_LABELS for name, labels in KSM_CADVISOR.items()})
    out.update(recorded)
    return out


def label_values(app_metrics: dict[str, dict[str, set[str]]], name: str, label: str,
                 honor_labels: bool, target_values: dict[str, set[str]]) -> set[str] | None:
    """Values series `name` has for `label` (as stored in Prometheus); None when unknown.

    For the app's series: without honorLabels a target label (e.g. `endpoint`, the
    ServiceMonitor's port name) hides the app's label of the same name, which lives
    on as `exported_<label>`."""
    if name not in app_metrics:
        return None
    exported = app_metrics[name]
    if label.startswith("exported_") and not honor_labels:
        return exported.get(label[len("exported_"):], set())
    if label in TARGET_LABELS and (not honor_labels or label not in exported):
        return target_values.get(label)
    return exported.get(label, set())
