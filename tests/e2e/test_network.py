"""The app's NetworkPolicies on the real CNI, in every environment, with positive controls.

"Refused" proves isolation only if the same request can succeed: so the outsider's pod and monitoring's
pod sit on the same node, monitoring's request (allowed by the lab's policy) must answer, and the very
outsider pod that was refused must be admitted once a NetworkPolicy allows its namespace (then refused
again when that policy goes). A broken route, DNS or Service fails the controls instead of passing as
"refused"."""
from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import ENVS, doit, items, kubectl
from tests.e2e.incluster import apply, curl, curl_pod, delete, delete_pod

pytestmark = pytest.mark.e2e

OUTSIDER = "e2e-outsider"  # a namespace of the suite's own, which no policy of the lab admits
MONITORING = "monitoring"
PROBE = "e2e-curl"
REFUSED = (7, 28)  # curl: connection refused, timed out (a dropped SYN)
ALLOW = "e2e-allow-outsider"


def outsider_until(url: str, admitted: bool, timeout: float = 60) -> tuple[int, str]:
    """Ask from the outsider's pod until it is admitted (or refused), for at most `timeout` s: a policy
    change reaches the node's rules within seconds."""
    deadline = time.monotonic() + timeout
    while True:
        rc, out = curl(OUTSIDER, PROBE, url)
        if ((rc, out) == (0, "ok")) if admitted else rc in REFUSED:
            return rc, out
        if time.monotonic() > deadline:
            return rc, out
        time.sleep(2)


@pytest.fixture(scope="module")
def probes(lab):
    node = sorted(n["metadata"]["name"] for n in items("nodes", "-l", "gitops-lab/tier=worker"))[0]
    kubectl("create", "namespace", OUTSIDER, check=False)
    curl_pod(OUTSIDER, PROBE, node)
    curl_pod(MONITORING, PROBE, node)
    yield node
    delete_pod(MONITORING, PROBE)
    kubectl("delete", "namespace", OUTSIDER, "--ignore-not-found", "--wait=false", check=False)


@pytest.mark.parametrize("env", list(ENVS))
def test_network_policy_admits_monitoring_refuses_an_outsider_and_the_outsider_gets_in_when_allowed(probes, env):
    url = f"http://app.{env}.svc.cluster.local:8000/healthz"
    rc, out = curl(MONITORING, PROBE, url)
    assert (rc, out) == (0, "ok"), f"from {MONITORING} (the lab's policy allows it): curl exit {rc} {out!r}"

    rc, out = curl(OUTSIDER, PROBE, url)
    assert rc in REFUSED, f"from {OUTSIDER} (no policy allows it): curl exit {rc} {out!r}, want a refusal"

    # The positive control: the same pod, the same URL, admitted by a policy naming its namespace.
    apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": ALLOW, "namespace": env},
           "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}}, "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                        "kubernetes.io/metadata.name": OUTSIDER}}}], "ports": [{"protocol": "TCP", "port": "http"}]}]}})
    try:
        rc, out = outsider_until(url, admitted=True)
        assert (rc, out) == (0, "ok"), f"from {OUTSIDER} with {env}/{ALLOW} in place: curl exit {rc} {out!r}"
    finally:
        delete("networkpolicy", ALLOW, env)
    rc, out = outsider_until(url, admitted=False)
    assert rc in REFUSED, f"from {OUTSIDER} after {ALLOW} was deleted: curl exit {rc} {out!r}"


def test_debug_metrics_scrapes_from_monitoring_and_reports_the_outsider_refused(lab):
    """`doit debug_metrics` (the lab's own look at the same policies) agrees on the real CNI."""
    res = doit("debug_metrics", "APP_ENV=dev")
    assert "refused (" in res.stdout and "as the NetworkPolicies require" in res.stdout, res.stdout[-2000:]
    doit("debug_cleanup")
