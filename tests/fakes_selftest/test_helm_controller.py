"""The fake helm-controller reports a HelmRelease as helm-controller v1.6.3 (Helm 4) does: its
conditions (Ready, Released, Remediated, Reconciling, Stalled), their reasons and messages, the chart
version with the OCI digest, the failure counts and when it stops retrying; and the fake Prometheus
API keeps Prometheus 3's JSON shapes and errors."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fakes import FakeWorld  # noqa: E402
from test_fakes import make_cluster, run  # noqa: E402

SOURCE = """\
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: kube-prometheus-stack, namespace: monitoring}
spec:
  interval: 12h
  url: oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack
  ref: {tag: "88.5.3"}
"""
RELEASE = {
    "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
    "metadata": {"name": "kube-prometheus-stack", "namespace": "monitoring"},
    "spec": {"interval": "30m", "timeout": "10m", "chartRef": {"kind": "OCIRepository", "name": "kube-prometheus-stack"},
             "install": {"crds": "Create", "remediation": {"retries": 3}},
             "upgrade": {"crds": "CreateReplace", "remediation": {"retries": 3}},
             "values": {"alertmanager": {"enabled": False}}},
}
UNREACHABLE = "unreachable:5000"  # a registry name no node resolves: containerd says "no such host"


@pytest.fixture
def world(tmp_path):
    w = FakeWorld(tmp_path, repo_root=tmp_path / "norepo")
    make_cluster(w, tmp_path)
    assert run(w, "flux", "install").returncode == 0
    assert run(w, "kubectl", "apply", "-f", "-", input=SOURCE).returncode == 0
    yield w
    w.kill_background()


def apply(w, release):
    r = run(w, "kubectl", "apply", "-f", "-", input=json.dumps(release))
    assert r.returncode == 0, r.stderr


def hr(w):
    r = run(w, "kubectl", "-n", "monitoring", "get", "helmrelease", "kube-prometheus-stack", "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def conds(obj):
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in obj["status"].get("conditions", [])}


def chart_version(w):
    r = run(w, "kubectl", "-n", "monitoring", "get", "ocirepository", "kube-prometheus-stack", "-o",
            "jsonpath={.status.artifact.revision}")
    tag, digest = r.stdout.split("@")
    return "%s+%s" % (tag, digest.split(":")[1][:12]), digest


def with_values(**values):
    release = json.loads(json.dumps(RELEASE))
    release["spec"]["values"].update(values)
    return release


def test_install_then_upgrade_succeed_with_helm_controllers_texts(world):
    apply(world, RELEASE)
    obj = hr(world)
    version, digest = chart_version(world)
    msg = "Helm install succeeded for release monitoring/kube-prometheus-stack.v1 with chart " \
          "kube-prometheus-stack@%s" % version
    assert conds(obj) == {"Ready": ("True", "InstallSucceeded", msg), "Released": ("True", "InstallSucceeded", msg)}
    st = obj["status"]
    assert st["lastAttemptedRevision"] == version and st["lastAttemptedRevisionDigest"] == digest
    assert st["lastAttemptedReleaseAction"] == "install" and st["observedGeneration"] == 1
    assert st["history"][0]["chartVersion"] == version and st["history"][0]["status"] == "deployed"
    apply(world, with_values(grafana={"enabled": False}))
    msg = msg.replace("install", "upgrade").replace(".v1", ".v2")
    assert conds(hr(world)) == {"Ready": ("True", "UpgradeSucceeded", msg), "Released": ("True", "UpgradeSucceeded", msg)}
    assert [h["status"] for h in hr(world)["status"]["history"]] == ["deployed", "superseded"]


def retrying(release, retries):
    for action in ("install", "upgrade"):
        release["spec"][action]["remediation"]["retries"] = retries
    return release


def test_a_failing_install_is_uninstalled_and_retried(world):
    # (each kubectl call runs a few controller ticks, each tick one attempt: many retries keep it retrying)
    apply(world, retrying(with_values(prometheus={"prometheusSpec": {"image": {"registry": UNREACHABLE}}}), 100))
    version, _ = chart_version(world)
    failed = ("Helm install failed for release monitoring/kube-prometheus-stack with chart kube-prometheus-stack@%s: "
              "resource StatefulSet/monitoring/prometheus-kube-prometheus-stack-prometheus not ready. status: "
              "InProgress, message: Ready: 0/1\ncontext deadline exceeded" % version)
    c = conds(hr(world))
    uninstalled = "Helm uninstall succeeded for release monitoring/kube-prometheus-stack.v1 with chart " \
                  "kube-prometheus-stack@%s" % version
    assert c["Released"] == ("False", "InstallFailed", failed)
    assert c["Remediated"] == ("True", "UninstallSucceeded", uninstalled)
    assert c["Ready"] == ("False", "UninstallSucceeded", uninstalled)
    assert c["Reconciling"] == ("True", "ProgressingWithRetry", uninstalled)
    assert "Stalled" not in c and 1 <= hr(world)["status"]["installFailures"] < 100
    # the uninstall removed what the install had created
    assert run(world, "kubectl", "-n", "monitoring", "get", "statefulsets", "-o", "name").stdout == ""


def test_a_release_out_of_retries_stalls_until_the_values_change(world):
    apply(world, with_values(prometheus={"prometheusSpec": {"image": {"registry": UNREACHABLE}}}))
    version, _ = chart_version(world)
    failed = ("Helm install failed for release monitoring/kube-prometheus-stack with chart kube-prometheus-stack@%s: "
              "resource StatefulSet/monitoring/prometheus-kube-prometheus-stack-prometheus not ready. status: "
              "InProgress, message: Ready: 0/1\ncontext deadline exceeded" % version)
    for _ in range(5):  # every controller tick retries, until the 3 retries are spent
        obj = hr(world)
    c = conds(obj)
    assert c["Stalled"] == ("True", "RetriesExceeded", "Failed to install after 4 attempt(s)")
    assert c["Ready"] == ("False", "InstallFailed", failed) and "Reconciling" not in c and "Remediated" not in c
    assert obj["status"]["installFailures"] == 4 and obj["status"]["failures"] == 4
    # a reconcile request does not reset the count; new values do
    assert run(world, "flux", "reconcile", "helmrelease", "kube-prometheus-stack", "-n", "monitoring").returncode != 0
    assert conds(hr(world))["Stalled"][1] == "RetriesExceeded"
    apply(world, RELEASE)
    c = conds(hr(world))
    assert c["Ready"][:2] == ("True", "InstallSucceeded") and "Stalled" not in c and "Remediated" not in c


def test_a_failing_upgrade_is_rolled_back(world):
    apply(world, retrying(json.loads(json.dumps(RELEASE)), 100))
    version, _ = chart_version(world)
    apply(world, retrying(with_values(prometheus={"prometheusSpec": {"image": {"registry": UNREACHABLE}}}), 100))
    c = conds(hr(world))
    assert c["Released"][:2] == ("False", "UpgradeFailed")
    rolled = "Helm rollback to previous release monitoring/kube-prometheus-stack.v1 with chart " \
             "kube-prometheus-stack@%s succeeded" % version
    assert c["Ready"] == ("False", "RollbackSucceeded", rolled)
    # the previous release's Prometheus runs again
    image = run(world, "kubectl", "-n", "monitoring", "get", "statefulset", "prometheus-kube-prometheus-stack-prometheus",
                "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert image == "quay.io/prometheus/prometheus:v3.14.0-distroless"


def test_the_admission_webhook_hook_job_must_pull_first(world):
    apply(world, with_values(prometheusOperator={"admissionWebhooks": {"patch": {"image": {"registry": UNREACHABLE}}}}))
    version, _ = chart_version(world)
    assert conds(hr(world))["Released"] == ("False", "InstallFailed", (
        "Helm install failed for release monitoring/kube-prometheus-stack with chart kube-prometheus-stack@%s: "
        "failed pre-install: resource Job/monitoring/kube-prometheus-stack-admission-create not ready. status: "
        "InProgress, message: Job in progress\ncontext deadline exceeded" % version))
    # without the webhook, no hook Job: the install succeeds
    apply(world, with_values(prometheusOperator={"admissionWebhooks": {"enabled": False,
                                                                        "patch": {"image": {"registry": UNREACHABLE}}}}))
    assert conds(hr(world))["Ready"][:2] == ("True", "InstallSucceeded")


def test_a_source_that_is_not_ready_holds_the_release_in_prerequisites(world):
    release = json.loads(json.dumps(RELEASE))
    release["spec"]["chartRef"]["name"] = "nowhere"
    apply(world, release)
    c = conds(hr(world))
    assert c["Ready"] == ("False", "ArtifactFailed", 'could not get Source object: ocirepositories.source.toolkit.'
                                                     'fluxcd.io "nowhere" not found')
    assert c["Reconciling"] == ("True", "Progressing", "Fulfilling prerequisites")


def test_the_prometheus_api_keeps_prometheus_shapes_and_errors(world, tmp_path):
    apply(world, with_values(prometheus={"prometheusSpec": {"serviceMonitorSelectorNilUsesHelmValues": False}}))
    env = world.env(os.environ)
    pf = subprocess.Popen([os.path.join(world.bin_dir, "kubectl"), "-n", "monitoring", "port-forward",
                           "svc/kube-prometheus-stack-prometheus", ":9090", "--address", "127.0.0.1"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = pf.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:"), line
        base = "http://127.0.0.1:%s" % line.split(":")[1].split()[0]
        for _ in range(50):
            try:
                ready = requests.get(base + "/-/ready", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert ready.status_code == 200 and ready.text == "Prometheus Server is Ready.\n"
        body = requests.get(base + "/api/v1/targets", params={"state": "active"}, timeout=5).json()
        assert body["status"] == "success"
        assert set(body["data"]) == {"activeTargets", "droppedTargets", "droppedTargetCounts"}
        assert body["data"]["droppedTargetCounts"] is None  # state=active: the counts are not computed
        pools = {t["scrapePool"] for t in body["data"]["activeTargets"]}
        # the chart's own ServiceMonitors: Prometheus, the operator, kube-state-metrics, node-exporter
        assert pools == {"serviceMonitor/monitoring/kube-prometheus-stack-%s/0" % n for n in (
            "prometheus", "operator", "kube-state-metrics", "prometheus-node-exporter")}
        target = body["data"]["activeTargets"][0]
        assert set(target) == {"discoveredLabels", "labels", "scrapePool", "scrapeUrl", "globalUrl", "lastError",
                               "lastScrape", "lastScrapeDuration", "health", "scrapeInterval", "scrapeTimeout"}
        assert set(target["labels"]) == {"container", "endpoint", "instance", "job", "namespace", "pod", "service"}
        bad = requests.get(base + "/api/v1/rules", params={"type": "nope"}, timeout=5)
        assert bad.status_code == 400 and bad.json() == {
            "status": "error", "errorType": "bad_data", "error": 'invalid parameter "type": not supported value "nope"'}
        assert requests.get(base + "/api/v1/rules", timeout=5).json() == {"status": "success", "data": {"groups": []}}
        assert requests.get(base + "/api/v1/nothing", timeout=5).status_code == 404
        assert requests.get(base + "/alerts", timeout=5).headers["Content-Type"].startswith("text/html")
    finally:
        pf.send_signal(2)
        pf.wait(10)
