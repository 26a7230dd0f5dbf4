"""MONITORING=full on the real lab: kube-prometheus-stack installed by Flux, Prometheus scraping the app in
every environment, the lab's rules loaded and its error-budget alert firing and clearing on a real failure
rate, the dashboard's every query answered, `doit hpa_demo` counted the same by Prometheus, and Prometheus'
own pages (Alerts, Targets) rendered by a headless Chromium.

Marked `monitoring`: hack/e2e/run.sh runs these as a group when the monitoring stack's kit parts are there
(MONITORING=full) and says so when they are not. Tests run in file order: the module's load starts with
dev's failure rate raised, the alert is checked last (its `for:` is 5 minutes) and the rate lowered again."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

from tests.e2e.conftest import ARTIFACTS, CLONE, CONTEXT, ENVS, doit, images, items, kubectl
from tests.e2e.incluster import Loader

pytestmark = [pytest.mark.e2e, pytest.mark.monitoring]

PROMETHEUS_SVC = "svc/kube-prometheus-stack-prometheus"
ALERT = "AppErrorBudgetExceeded"
RAISED_ENV, RAISED_RATE = "dev", "0.3"  # dev's budget: 2 x its FAIL_RATE 0.05 + 0.01 = 11 %
BUDGETS = {"dev": 0.11, "staging": 0.03, "production": 0.01}
DASHBOARD = CLONE / "flux-cd" / "infrastructure" / "monitoring" / "dashboards" / "gitops-lab-app.json"
AGREEMENT = 0.10  # hpa_demo's counts and Prometheus' may differ by this fraction at most
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


# --- Prometheus through a port-forward ------------------------------------------------------------------

class Prometheus:
    def __init__(self):
        self.proc = subprocess.Popen(["kubectl", "--context", CONTEXT, "-n", "monitoring", "port-forward",
                                      PROMETHEUS_SVC, ":9090"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"port-forward to {PROMETHEUS_SVC}: {line!r}"
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep the pipe drained
        self.base = f"http://127.0.0.1:{match.group(1)}"

    def api(self, path: str, **params) -> dict | list:
        res = requests.get(self.base + "/api/v1/" + path, params=params, timeout=30)
        body = res.json()
        assert res.status_code == 200 and body.get("status") == "success", (path, params, res.status_code, body)
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def alerts(self, name: str = ALERT) -> dict[str, str]:
        """namespace -> state (pending or firing) of the alert `name`."""
        return {a["labels"].get("namespace"): a["state"] for a in self.api("alerts")["alerts"]
                if a["labels"].get("alertname") == name}

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def prom(lab):
    p = Prometheus()
    yield p
    p.close()


def eventually(check, timeout: float, pause: float = 10):
    """check() until it returns something truthy or `timeout` s passed; the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(pause)


def lab_rules() -> dict[str, dict]:
    """namespace -> the lab's PrometheusRule there (one per environment)."""
    found = {}
    for env in ENVS:
        rules = items("prometheusrules.monitoring.coreos.com", "-n", env)
        assert [r["metadata"]["name"] for r in rules] == ["app"], (env, [r["metadata"]["name"] for r in rules])
        found[env] = rules[0]
    return found


# --- the stack ------------------------------------------------------------------------------------------

def test_helmrelease_kube_prometheus_stack_is_ready(lab):
    release = json.loads(kubectl("-n", "monitoring", "get", "helmreleases.helm.toolkit.fluxcd.io",
                                 "kube-prometheus-stack", "-o", "json").stdout)
    conditions = {c["type"]: c for c in release["status"].get("conditions", [])}
    assert conditions.get("Ready", {}).get("status") == "True", release["status"]
    pods = items("pods", "-n", "monitoring")
    assert pods, "no pods in monitoring"
    not_ready = [p["metadata"]["name"] for p in pods if p["status"].get("phase") != "Succeeded" and not all(
        c.get("ready") for c in p["status"].get("containerStatuses", [{}]))]
    assert not_ready == [], f"monitoring pods not ready: {not_ready}"


def test_prometheus_scrapes_the_app_in_every_environment(prom):
    def up_by_env():
        targets = prom.api("targets", state="active")["activeTargets"]
        app = [t for t in targets if t["labels"].get("namespace") in ENVS and t["labels"].get("job") == "app"]
        if not app or any(t["health"] != "up" for t in app) or {t["labels"]["namespace"] for t in app} != set(ENVS):
            return None
        return {env: sum(t["labels"]["namespace"] == env for t in app) for env in ENVS}

    found = eventually(up_by_env, timeout=180)
    assert found, [(t["scrapePool"], t["labels"].get("namespace"), t["health"], t.get("lastError"))
                   for t in prom.api("targets", state="active")["activeTargets"]]
    for env, minimum in ENVS.items():
        assert found[env] >= minimum, f"{env}: {found[env]} app target(s) up, want one per pod (>= {minimum})"


def test_every_rule_of_the_lab_is_loaded_and_evaluates(prom):
    rules = lab_rules()

    def loaded():
        groups = prom.api("rules")["groups"]
        out = {}
        for env in ENVS:
            mine = [g for g in groups if f"/{env}-app-" in g["file"]]
            out[env] = {g["name"]: {r["name"]: r["health"] for r in g["rules"]} for g in mine}
        return out

    def all_ok():
        now = loaded()
        return now if all(h == "ok" for g in now.values() for rs in g.values() for h in rs.values()) else None

    now = eventually(all_ok, timeout=120) or loaded()
    for env, rule in rules.items():
        want = {g["name"]: {r.get("record") or r.get("alert") for r in g["rules"]} for g in rule["spec"]["groups"]}
        assert {name: set(rs) for name, rs in now[env].items()} == want, (env, now[env])
        assert all(h == "ok" for rs in now[env].values() for h in rs.values()), (env, now[env])
    # the budget each environment's alert compares with comes from its own FAIL_RATE
    budgets = {r["metric"]["namespace"]: float(r["value"][1]) for r in prom.query("app:error_budget:ratio")}
    assert budgets == pytest.approx(BUDGETS), budgets


# --- under load, with dev failing more than it is designed to ---------------------------------------------

def raised_overlay(text: str) -> str:
    """dev's overlay with the app's FAIL_RATE raised in its Deployment (an env var wins over the ConfigMap's
    envFrom), while the ConfigMap, and with it the alert's budget, stays at the designed 0.05."""
    patch = ("  - target:\n      kind: Deployment\n      name: app\n    patch: |-\n"
             "      - op: add\n        path: /spec/template/spec/containers/0/env/-\n"
             f"        value:\n          name: FAIL_RATE\n          value: \"{RAISED_RATE}\"\n")
    assert "  - path: secret-patch.yaml\n" in text
    return text.replace("  - path: secret-patch.yaml\n", "  - path: secret-patch.yaml\n" + patch, 1)


class Load:
    def __init__(self):
        self.overlay = CLONE / "flux-cd" / "apps" / RAISED_ENV / "kustomization.yaml"
        self.original = self.overlay.read_text()
        self.loaders: dict[str, Loader] = {}
        self.raised_at = self.started = 0.0
        self.lowered = False

    def raise_rate(self, prom: Prometheus) -> None:
        assert RAISED_ENV not in prom.alerts(), f"{ALERT} is already active before the raise: {prom.alerts()}"
        self.overlay.write_text(raised_overlay(self.original))
        doit("setup")
        dep = json.loads(kubectl("-n", RAISED_ENV, "get", "deployment", "app", "-o", "json").stdout)
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        assert env.get("FAIL_RATE") == RAISED_RATE, env
        self.raised_at = time.monotonic()

    def lower_rate(self) -> None:
        self.overlay.write_text(self.original)
        doit("setup")
        self.lowered = True

    def start(self, env: str | None = None) -> None:
        now = images()
        for ns in [env] if env else list(ENVS):
            self.loaders[ns] = Loader(ns, now[ns], paths="/work,/work,/healthz").start()
        if not env:
            self.started = time.monotonic()

    def stop(self, env: str | None = None) -> None:
        for ns in [env] if env else list(self.loaders):
            self.loaders.pop(ns).stop()


@pytest.fixture(scope="module")
def load(prom):
    state = Load()
    try:
        state.raise_rate(prom)
        state.start()
        yield state
    finally:
        state.stop()
        if not state.lowered:
            state.lower_rate()


def _dashboard_queries() -> list[tuple[str, str]]:
    spec = importlib.util.spec_from_file_location("e2e_promql", CLONE / "tests" / "observability" / "promql.py")
    promql = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = promql  # its dataclasses look their module up there
    spec.loader.exec_module(promql)
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {"namespace": "|".join(ENVS)}
    out = []
    for panel in dashboard["panels"]:
        for sub in [panel, *(panel.get("panels") or [])]:
            for target in sub.get("targets") or []:
                out.append((sub["title"], promql.expand_grafana(target["expr"], variables)))
    for var in dashboard["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
        assert match, query
        out.append((f"variable {var['name']}", match.group(1)))
    assert out, "the dashboard has no queries"
    return out


def test_every_dashboard_query_returns_series_after_a_short_load(prom, load):
    queries = _dashboard_queries()
    time.sleep(max(0.0, load.started + 150 - time.monotonic()))  # two and a half minutes of load

    missing: list[tuple[str, str]] = []

    def every_query_answers() -> bool:
        missing[:] = [(title, expr) for title, expr in queries if not prom.query(expr)]
        return not missing

    eventually(every_query_answers, timeout=180, pause=15)
    assert not missing, "dashboard queries without a series:\n" + "\n".join(f"  {t}: {e}" for t, e in missing)
    # the environment variable offers the three environments
    var = [e for t, e in queries if t.startswith("variable ")][0]
    assert {r["metric"]["namespace"] for r in prom.query(var)} == set(ENVS)


def _work_counters(prom: Prometheus) -> dict[tuple, float]:
    """Every /work request counter in dev, by its labels (pod, code, ...), last value within 15 minutes."""
    result = prom.query('last_over_time(http_requests_total{namespace="dev", exported_endpoint="/work"}[15m])')
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(r["value"][1])
            for r in result}


def test_hpa_demo_numbers_agree_with_prometheus(prom, load):
    load.stop("dev")  # only hpa_demo loads dev's /work now
    time.sleep(70)    # two scrapes: the counters hold every request before the demo
    before = _work_counters(prom)
    res = doit("hpa_demo", "HPA_DURATION=60", "HPA_CONCURRENCY=20", timeout=900)
    time.sleep(70)    # two scrapes: the counters hold every request of the demo (pods are not yet scaled in)
    after = _work_counters(prom)
    doit("hpa_reset", timeout=600)
    load.start("dev")

    demo = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", res.stdout)}
    assert sum(demo.values()) > 100, res.stdout[-3000:]
    seen: dict[int, float] = {}
    for labels, value in after.items():
        delta = value - before.get(labels, 0.0)
        assert delta >= 0, f"a /work counter went down (a pod restarted?): {labels} {before.get(labels)} -> {value}"
        code = int(dict(labels)["code"])
        seen[code] = seen.get(code, 0.0) + delta
    print(f"hpa_demo: {demo}; Prometheus: { {c: round(v) for c, v in seen.items()} }")
    total_demo, total_prom = sum(demo.values()), sum(seen.values())
    assert abs(total_prom - total_demo) <= AGREEMENT * total_demo, (demo, seen)
    for code, n in demo.items():
        if n >= 100:
            assert abs(seen.get(code, 0.0) - n) <= AGREEMENT * n, (code, demo, seen)


def test_error_budget_alert_fires_when_the_failure_rate_is_raised(prom, load):
    state = eventually(lambda: prom.alerts().get(RAISED_ENV) == "firing",
                       timeout=max(60.0, load.raised_at + 15 * 60 - time.monotonic()), pause=15)
    assert state, f"{ALERT} in {RAISED_ENV} after {time.monotonic() - load.raised_at:.0f}s: {prom.alerts()}"
    print(f"{ALERT} firing in {RAISED_ENV} {time.monotonic() - load.raised_at:.0f}s after FAIL_RATE={RAISED_RATE}")
    # only there: the others fail as designed, within their budgets
    assert set(prom.alerts()) == {RAISED_ENV}, prom.alerts()


def chromium(url: str, *args: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert binary, "chromium is not installed (.ci/run installs Debian's `chromium`)"
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1600,1400",
                              "--virtual-time-budget=20000", *args, url], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, f"chromium exited {res.returncode}: {res.stderr[-2000:]}"
    return res.stdout


def test_prometheus_pages_list_the_labs_rules_and_the_apps_targets(prom, load):
    """Screenshots under the state directory, for a person; the rendered DOM, for the test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alerts = [r["alert"] for rule in lab_rules().values() for g in rule["spec"]["groups"] for r in g["rules"]
              if "alert" in r]
    for page in ("alerts", "targets"):
        chromium(f"{prom.base}/{page}", f"--screenshot={ARTIFACTS / f'prometheus-{page}.png'}")
        assert (ARTIFACTS / f"prometheus-{page}.png").stat().st_size > 10_000
        (ARTIFACTS / f"prometheus-{page}.html").write_text(chromium(f"{prom.base}/{page}", "--dump-dom"))
    # The Alerts page shows its rule groups a page at a time (`?page=N`, the UI's own parameter; a page past
    # the last shows the last): every environment's group is on one of the first few.
    pages = [chromium(f"{prom.base}/alerts?page={n}", "--dump-dom") for n in range(2, 5)]
    (ARTIFACTS / "prometheus-alerts-more.html").write_text("\n".join(pages))
    dom = "\n".join([(ARTIFACTS / "prometheus-alerts.html").read_text(), *pages])
    assert set(alerts) and all(name in dom for name in alerts), [n for n in alerts if n not in dom]
    assert all(f"{env}-app-" in dom for env in ENVS), "the alerts page does not list every environment's rule file"
    assert "firing" in dom.lower(), "the alerts page does not show the firing alert"
    dom = (ARTIFACTS / "prometheus-targets.html").read_text()
    assert all(f"serviceMonitor/{env}/app/0" in dom for env in ENVS), "the targets page lacks an environment's app"


def test_error_budget_alert_clears_after_the_failure_rate_is_lowered(prom, load):
    load.lower_rate()
    lowered = time.monotonic()
    cleared = eventually(lambda: RAISED_ENV not in prom.alerts(), timeout=12 * 60, pause=15)
    assert cleared, f"{ALERT} still {prom.alerts().get(RAISED_ENV)} {time.monotonic() - lowered:.0f}s after lowering"
    print(f"{ALERT} cleared in {RAISED_ENV} {time.monotonic() - lowered:.0f}s after FAIL_RATE was lowered")
