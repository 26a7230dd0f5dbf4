"""`doit prometheus` on a lab after `doit setup` (MONITORING=full), against the fakes: the URL and
the Targets and Alerts pages, what they show (the app's targets in every environment, health up;
the lab's rules loaded, their state following the app), Ctrl-C ending it, and one clear line when
there is no Prometheus to open."""
from __future__ import annotations

import json
import signal
import subprocess

from tasks.core import names
from tasks.day2 import prometheus
from tests.graph.conftest import Running


def kubectl(lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "--context", "kind-gitops-lab", *args], env=lab.env(),
                          capture_output=True, text=True, timeout=60)


def cause(text: str) -> str:
    """The one line saying what went wrong (the run's first error line; the last says it stopped)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("✗ ")]
    assert len(lines) == 2 and lines[1].startswith("✗ stopped after"), text
    return lines[0]


def forwards(lab) -> list[str]:
    return [what.get("desc", "") for what in lab.world.state().get("background", {}).values()
            if "port-forward" in str(what.get("kind", ""))]


def open_prometheus(lab) -> tuple[Running, str]:
    run = Running(lab, "prometheus")
    run.wait_for("Ctrl-C stops the port-forward", timeout=90)
    base = next(ln.split("Prometheus: ", 1)[1].split()[0] for ln in run.lines if "Prometheus: " in ln)
    return run, base


def test_prometheus_prints_its_pages_and_shows_the_app_and_the_labs_rules(built):
    run, base = open_prometheus(built)
    try:
        assert base.startswith("http://127.0.0.1:")
        assert f"Targets: {base}/targets" in run.out and f"Alerts: {base}/alerts" in run.out
        # every environment's app pods are targets of the app's ServiceMonitor, health up
        targets = prometheus.app_targets(base)
        assert sorted(targets) == sorted(names.ENVIRONMENTS)
        for env, ts in targets.items():
            pods = json.loads(kubectl(built, "-n", env, "get", "pods", "-l", "app.kubernetes.io/name=app",
                                      "-o", "json").stdout)["items"]
            assert {t["labels"]["pod"] for t in ts} == {p["metadata"]["name"] for p in pods}
            assert all(t["health"] == "up" and t["lastError"] == "" for t in ts), ts
            assert all(t["scrapeUrl"].endswith(":8000/metrics") for t in ts)
        assert "app targets: " + ", ".join(f"{env} {len(targets[env])}/{len(targets[env])} up"
                                           for env in names.ENVIRONMENTS) in run.out
        # the Alerts page lists every rule of the lab's PrometheusRule, in every environment, none firing
        assert prometheus.missing_lab_rules(base) == {env: set() for env in names.ENVIRONMENTS}
        loaded = prometheus.loaded_rules(base)
        alerts = [r for env in loaded.values() for r in env.values() if r["type"] == "alerting"]
        assert alerts and all(r["state"] == "inactive" and r["alerts"] == [] for r in alerts)
        assert "0 alert(s) firing, 0 pending" in run.out
        assert "not loaded" not in run.out
    finally:
        rc = run.signal_group(signal.SIGINT)
    assert rc == 0, run.out
    assert "port-forward to Prometheus ended" in run.out
    assert "Traceback" not in run.out
    assert not forwards(built)
    # it opened the Prometheus Service's port 9090, read-only
    pf = [c for c in built.calls() if " port-forward " in c]
    assert pf and "svc/kube-prometheus-stack-prometheus :9090" in pf[-1]
    assert not [c for c in built.mutating() if c.startswith("kubectl")]


def test_the_error_budget_alert_goes_pending_then_firing_and_clears(built):
    """The rules' state follows the app: dev fails half its /work requests under load (its budget is
    2 x 0.05 + 1 % = 11 %), so AppErrorBudgetExceeded in dev is pending, then firing once its 5 minutes
    have passed on Prometheus' clock; back to the configured FAIL_RATE, it is inactive again. Staging
    and production stay inactive."""
    built.world.set_load("dev", 80)
    dep = json.loads(kubectl(built, "-n", "dev", "get", "deployment", "app", "-o", "json").stdout)
    at = f"/spec/template/spec/containers/0/env/{len(dep['spec']['template']['spec']['containers'][0]['env'])}"
    raised = [{"op": "add", "path": at, "value": {"name": "FAIL_RATE", "value": "0.5"}}]  # beats envFrom's
    assert kubectl(built, "-n", "dev", "patch", "deployment", "app", "--type", "json", "-p",
                   json.dumps(raised)).returncode == 0
    run, base = open_prometheus(built)
    try:
        def state(env: str) -> str:
            return prometheus.loaded_rules(base)[env]["AppErrorBudgetExceeded"]["state"]

        assert state("dev") == "pending"
        assert state("dev") == "pending"  # its `for: 5m` has not passed
        built.world.advance_prometheus_clock(301)
        rule = prometheus.loaded_rules(base)["dev"]["AppErrorBudgetExceeded"]
        assert rule["state"] == "firing"
        (alert,) = rule["alerts"]
        assert alert["labels"] == {"alertname": "AppErrorBudgetExceeded", "namespace": "dev", "severity": "warning"}
        assert alert["value"] == "5e-01" and "dev" in alert["annotations"]["summary"]
        assert state("staging") == "inactive" and state("production") == "inactive"
        # /api/v1/alerts lists the active ones, pending included: under load dev's HPA sits at its maximum
        active = {(a["labels"]["alertname"], a["labels"]["namespace"]): a["state"]
                  for a in prometheus.api(base, "/api/v1/alerts")["alerts"]}
        assert active == {("AppErrorBudgetExceeded", "dev"): "firing", ("AppHPAAtMaxReplicas", "dev"): "pending"}
        # the fix: dev's configured FAIL_RATE again
        assert kubectl(built, "-n", "dev", "patch", "deployment", "app", "--type", "json", "-p",
                       json.dumps([{"op": "remove", "path": at}])).returncode == 0
        kubectl(built, "get", "nodes")  # a controller tick: the new pods run
        assert state("dev") == "inactive"
        assert prometheus.loaded_rules(base)["dev"]["AppErrorBudgetExceeded"]["alerts"] == []
    finally:
        run.signal_group(signal.SIGINT)


def test_a_namespace_whose_policy_drops_the_scrape_shows_its_targets_down(built):
    assert kubectl(built, "-n", "staging", "delete", "networkpolicy", "allow-monitoring-scrape").returncode == 0
    run, base = open_prometheus(built)
    try:
        targets = prometheus.app_targets(base)
        assert targets["staging"] and all(t["health"] == "down" for t in targets["staging"])
        assert all(t["lastError"] == f'Get "{t["scrapeUrl"]}": context deadline exceeded' for t in targets["staging"])
        assert all(t["health"] == "up" for env in ("dev", "production") for t in targets[env])
        assert "staging 0/" in run.out
    finally:
        run.signal_group(signal.SIGINT)


def test_without_a_prometheus_it_says_why_in_one_line(built):
    proc = built.doit("prometheus", "MONITORING=crds")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    line = cause(text)
    assert "MONITORING=crds: this lab runs no Prometheus" in line and "MONITORING=full" in line
    assert not [c for c in built.calls() if " port-forward " in c]


def test_a_stack_that_is_not_ready_is_named_with_helm_controllers_reason(built):
    # Prometheus' image from a registry no node resolves: the upgrade waits, fails, is rolled back
    values = {"spec": {"values": {"prometheus": {"prometheusSpec": {"image": {"registry": "unreachable:5000"}}}}}}
    assert kubectl(built, "-n", "monitoring", "patch", "helmrelease", "kube-prometheus-stack", "--type", "merge",
                   "-p", json.dumps(values)).returncode == 0
    release = json.loads(kubectl(built, "-n", "monitoring", "get", "helmrelease", "kube-prometheus-stack",
                                 "-o", "json").stdout)
    ready = next(c for c in release["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    proc = built.doit("prometheus")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    line = cause(text)
    assert f"kube-prometheus-stack is not Ready ({ready['reason']}: " in line
    assert "doit wait_for_flux" in line
    assert not [c for c in built.calls() if " port-forward " in c]
