"""The stack's images, known before any pod runs: the pins under the lab's values, as the chart's
templates apply them, and the same set the fake cluster's kube-prometheus-stack pulls."""
from __future__ import annotations

import copy

import pytest

from tasks import versions
from tasks.steps import stack_images
from tests.fakes.fakelib import kps_chart

PINS = versions.KUBE_PROMETHEUS_STACK_IMAGES


def test_every_pin_is_a_component_and_every_component_is_pinned():
    assert {c.name for c in stack_images.COMPONENTS} == set(PINS)


def test_the_labs_values_need_every_pinned_image_but_alertmanagers():
    # release.yaml turns alertmanager off and overrides no image
    assert stack_images.needed() == {k: v for k, v in PINS.items() if k != "alertmanager"}


@pytest.mark.parametrize("values, gone", [
    ({"grafana": {"enabled": False}}, {"grafana", "k8s-sidecar"}),
    ({"grafana": {"sidecar": {"dashboards": {"enabled": False}, "datasources": {"enabled": False}}}},
     {"k8s-sidecar"}),
    ({"prometheusOperator": {"admissionWebhooks": {"enabled": False}}}, {"kube-webhook-certgen"}),
    ({"prometheusOperator": {"admissionWebhooks": {"patch": {"enabled": False}}}}, {"kube-webhook-certgen"}),
    ({"prometheusOperator": {"admissionWebhooks": {"certManager": {"enabled": True}}}}, {"kube-webhook-certgen"}),
    ({"kubeStateMetrics": {"enabled": False}}, {"kube-state-metrics"}),
    ({"nodeExporter": {"enabled": False}}, {"node-exporter"}),
    ({"prometheus": {"enabled": False}}, {"prometheus"}),
    ({"prometheus": {"enabled": False}, "alertmanager": {"enabled": False}},
     {"prometheus", "alertmanager", "prometheus-config-reloader"}),
    ({"prometheusOperator": {"enabled": False}},
     {"prometheus-operator", "prometheus-config-reloader", "prometheus", "alertmanager", "kube-webhook-certgen"}),
])
def test_a_component_the_values_disable_is_not_needed(values, gone):
    assert set(stack_images.needed(values)) == set(PINS) - gone


def test_image_overrides_replace_their_part_of_the_pin():
    values = {"prometheus": {"prometheusSpec": {"image": {"tag": "v3.15.0"}}},
              "prometheus-node-exporter": {"image": {"tag": "v1.13.0"}},
              "grafana": {"image": {"registry": "mirror.example", "sha": "ab" * 32}},
              "kube-state-metrics": {"image": {"repository": "me/ksm"}}}
    got = stack_images.needed(values)
    assert got["prometheus"] == "quay.io/prometheus/prometheus:v3.15.0"
    # the parent chart's image.distroless: true still appends the suffix to an overridden tag
    assert got["node-exporter"] == "quay.io/prometheus/node-exporter:v1.13.0-distroless"
    assert got["grafana"] == f"mirror.example/grafana/grafana:13.2.0@sha256:{'ab' * 32}"
    assert got["kube-state-metrics"] == "registry.k8s.io/me/ksm:v2.20.0"
    plain = stack_images.needed({"prometheus-node-exporter": {"image": {"distroless": False}}})
    assert plain["node-exporter"] == "quay.io/prometheus/node-exporter:v1.12.1"
    moved = stack_images.needed({"global": {"imageRegistry": "registry.corp:5000"}})
    assert all(ref.startswith("registry.corp:5000/") for ref in moved.values())


def _fake_pulls(values: dict) -> set[str]:
    """Every image the fake cluster's kube-prometheus-stack pulls with these values."""
    objs, _ = kps_chart.objects("kube-prometheus-stack", versions.KUBE_PROMETHEUS_STACK_CHART, "monitoring", values)
    pulled = {img for _, img in kps_chart.hook_jobs("kube-prometheus-stack", values)}
    for o in objs:
        pod = (o.get("spec") or {}).get("template", {}).get("spec", {})
        pulled |= {c["image"] for c in pod.get("containers", []) + pod.get("initContainers", [])}
    return pulled


@pytest.mark.parametrize("extra", [
    {}, {"grafana": {"enabled": False}}, {"alertmanager": {"enabled": True}},
    {"prometheusOperator": {"admissionWebhooks": {"enabled": False}}},
    {"global": {"imageRegistry": "registry.corp:5000"}},
    {"prometheus": {"prometheusSpec": {"image": {"tag": "v3.15.0"}}}},
])
def test_the_product_and_the_fake_chart_agree_on_what_is_pulled(extra):
    values = copy.deepcopy(stack_images.release_values())
    kps_chart_values = stack_images_merge(values, extra)
    assert set(stack_images.needed(kps_chart_values).values()) == _fake_pulls(kps_chart_values)


def stack_images_merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            stack_images_merge(base[key], value)
        else:
            base[key] = value
    return base
