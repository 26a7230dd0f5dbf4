"""HPA table rendering, scale-up arithmetic, metrics summary and the SVG timeline (pure Python)."""
from __future__ import annotations

import urllib.request
import xml.etree.ElementTree as ET

import pytest

from tasks.core import svg
from tasks.day2 import hpa
from tasks.core.metrics_text import summarize_metrics
from tasks.core.errors import LabError

HPA = {
    "kind": "HorizontalPodAutoscaler",
    "spec": {"minReplicas": 1, "maxReplicas": 4,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                      "averageUtilization": 70}}},
                         {"type": "Resource", "resource": {"name": "memory",
                                                           "target": {"type": "Utilization",
                                                                      "averageUtilization": 85}}}]},
    "status": {"currentReplicas": 2, "desiredReplicas": 3,
               "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                    "current": {"averageUtilization": 140}}}]},
}
PODS = [
    {"metadata": {"name": "app-b"}, "spec": {"nodeName": "gitops-lab-worker2", "containers": [{}]},
     "status": {"phase": "Running", "containerStatuses": [{"ready": True}]}},
    {"metadata": {"name": "app-a"}, "spec": {"nodeName": "gitops-lab-worker", "containers": [{}]},
     "status": {"phase": "Running", "containerStatuses": [{"ready": False}]}},
    {"metadata": {"name": "app-c"}, "spec": {"containers": [{}]}, "status": {"phase": "Pending"}},
]


def test_render_shows_utilisation_replicas_and_nodes(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    text = hpa.render("dev", 12, HPA, PODS)
    head, *rows = text.splitlines()
    assert head == ("[  12s] HPA app (dev): cpu 140%/70%  memory <unknown>/85%  replicas 2 → desired 3"
                    "  (min 1, max 4)")
    assert rows[0].split() == ["POD", "READY", "STATUS", "NODE"]
    assert rows[1].split() == ["app-a", "0/1", "Running", "gitops-lab-worker"]
    assert rows[2].split() == ["app-b", "1/1", "Running", "gitops-lab-worker2"]
    assert rows[3].split() == ["app-c", "0/1", "Pending", "<pending>"]
    assert "\033[" not in text


def test_render_without_pods_or_status():
    text = hpa.render("dev", None, {"spec": {"maxReplicas": 2}}, [])
    assert "replicas ? → desired ?" in text and "no app pods" in text


def test_samples_and_scale_report():
    s = hpa.to_sample(5.0, HPA, 300.0, 0.2)
    assert (s.replicas, s.desired, s.cpu, s.cpu_target, s.rps, s.p99) == (2, 3, 140, 70, 300.0, 0.2)
    samples = [hpa.Sample(0, 1, 1, 3, 70), hpa.Sample(5, 1, 2, 150, 70), hpa.Sample(10, 2, 3, 120, 70),
               hpa.Sample(15, 3, 3, 80, 70), hpa.Sample(20, 3, 3, 70, 70)]
    assert hpa.scale_report(samples) == (1, 3, 10, 15)
    flat = [hpa.Sample(0, 1, 1, None, 70), hpa.Sample(5, 1, 1, None, 70)]
    assert hpa.scale_report(flat) == (1, 1, None, None)
    assert hpa.scale_report([]) == (None, None, None, None)


def test_metrics_unavailable_condition():
    broken = {"status": {"conditions": [{"type": "ScalingActive", "status": "False",
                                         "reason": "FailedGetResourceMetric",
                                         "message": "unable to get metrics for resource cpu"}]}}
    assert hpa.metrics_unavailable(broken)
    assert not hpa.metrics_unavailable(HPA)
    assert "doit metrics_server" in hpa.METRICS_HINT


def test_svg_timeline_one_path_per_series(tmp_path):
    samples = [hpa.Sample(0, 1, 1, 3, 70, None, None), hpa.Sample(5, 1, 3, 160, 70, 380.0, 0.19),
               hpa.Sample(10, 3, 3, 90, 70, 395.0, 0.2), hpa.Sample(15, 3, 3, 60, 70, 390.0, 0.21)]
    out = svg.write_timeline(samples, tmp_path / "t.svg", title="HPA <app>")
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    paths = root.findall(f".//{ns}path")
    assert sorted(p.get("data-series") for p in paths) == sorted(["replicas", "desired", "cpu", "target",
                                                                  "rps", "p99"])
    cpu = next(p for p in paths if p.get("data-series") == "cpu")
    assert cpu.get("d").count("L") == 3 and cpu.get("d").startswith("M")
    rps = next(p for p in paths if p.get("data-series") == "rps")
    assert rps.get("d").count("L") == 2  # the sample without req/s is left out
    assert "HPA &lt;app&gt;" in out.read_text()


def test_svg_leaves_out_empty_series():
    samples = [hpa.Sample(0, 1, 1, None, 70), hpa.Sample(5, 2, 2, None, 70)]
    text = svg.render(samples)
    assert 'data-series="cpu"' not in text and 'data-series="rps"' not in text
    assert text.count("<path") == 3  # replicas, desired, target


# --- /metrics parsing ------------------------------------------------------------------------------

SAMPLE = """# HELP http_requests_total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",endpoint="/work",code="200"} 90.0
http_requests_total{method="GET",endpoint="/work",code="500"} 10.0
http_requests_total{method="GET",endpoint="/healthz",code="200"} 5.0
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{endpoint="/work",method="GET",le="0.1"} 50.0
http_request_duration_seconds_bucket{endpoint="/work",method="GET",le="0.2"} 100.0
http_request_duration_seconds_bucket{endpoint="/work",method="GET",le="+Inf"} 100.0
http_request_duration_seconds_count{endpoint="/work",method="GET"} 100.0
http_request_duration_seconds_sum{endpoint="/work",method="GET"} 12.5
# TYPE http_requests_in_flight gauge
http_requests_in_flight 3.0
"""


def test_summarize_metrics_by_code_and_quantiles():
    s = summarize_metrics(SAMPLE)
    assert s["by_code"] == {"200": 95.0, "500": 10.0}
    assert s["by_endpoint"] == {"/work": 100.0, "/healthz": 5.0}
    assert s["latency"]["/work"]["p50"] == pytest.approx(0.1)
    assert s["latency"]["/work"]["p99"] == pytest.approx(0.198)
    assert s["in_flight"] == 3.0


def test_summarize_metrics_rejects_garbage():
    with pytest.raises(LabError, match="not valid Prometheus text"):
        summarize_metrics('http_requests_total{code="200" 1\n')
    with pytest.raises(LabError, match="no http_requests_total"):
        summarize_metrics("# TYPE up gauge\nup 1\n")


def test_summarize_real_app_metrics(app_server):
    for _ in range(5):
        try:
            urllib.request.urlopen(app_server + "/work", timeout=5).read()
        except Exception:  # noqa: BLE001 - FAIL_RATE answers 500
            pass
    text = urllib.request.urlopen(app_server + "/metrics", timeout=5).read().decode()
    s = summarize_metrics(text)
    assert s["by_endpoint"]["/work"] >= 5
    lat = s["latency"]["/work"]
    assert 0.05 <= lat["p50"] <= 0.2 and 0.1 <= lat["p99"] <= 0.25
    assert "(all)" in s["latency"]
