"""The app's Prometheus text (its /metrics) summarised: requests by code and endpoint, latency
quantiles from the histogram buckets. Read by `doit debug_metrics` (through a pod) and by the HPA
demo's hey load (through the port-forward)."""
from __future__ import annotations

from collections import Counter, defaultdict

from tasks.core.errors import LabError
from tasks.core.stats import histogram_quantile


def summarize_metrics(text: str) -> dict:
    """Requests by code and per endpoint, latency p50/p99 from the histogram buckets.

    Parsed with prometheus_client's text parser; raises LabError on invalid text.
    """
    from prometheus_client.parser import text_string_to_metric_families

    by_code: Counter = Counter()
    by_endpoint: Counter = Counter()
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    in_flight = None
    seen = set()
    try:
        for fam in text_string_to_metric_families(text):
            seen.add(fam.name)
            for s in fam.samples:
                if s.name == "http_requests_total":
                    by_code[s.labels.get("code", "?")] += s.value
                    by_endpoint[s.labels.get("endpoint", "?")] += s.value
                elif s.name == "http_request_duration_seconds_bucket":
                    le = float(s.labels["le"])
                    buckets[s.labels.get("endpoint", "?")][le] += s.value
                    buckets["(all)"][le] += s.value
                elif s.name == "http_requests_in_flight":
                    in_flight = s.value
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError("the app's /metrics is not valid Prometheus text", str(exc)[:200],
                       "check app/server.py's metrics") from None
    if "http_requests" not in seen:
        raise LabError("the app's /metrics has no http_requests_total", f"families: {', '.join(sorted(seen))[:200]}",
                       "is that the lab's app? check app/server.py")
    latency = {}
    for ep, b in buckets.items():
        pairs = sorted(b.items())
        latency[ep] = {"count": pairs[-1][1] if pairs else 0,
                       "p50": histogram_quantile(0.5, pairs), "p99": histogram_quantile(0.99, pairs)}
    return {"by_code": dict(by_code), "by_endpoint": dict(by_endpoint), "latency": latency, "in_flight": in_flight,
            "buckets": {ep: dict(b) for ep, b in buckets.items()}}
