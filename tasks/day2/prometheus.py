"""`doit prometheus` / `inv prometheus`: open the stack's Prometheus on a free local port.

    doit prometheus      port-forward, print the URL, its Targets and Alerts pages and what they
                         show (the app's targets per environment, the lab's rules), wait for Ctrl-C

kube-prometheus-stack (HelmRelease monitoring/kube-prometheus-stack) serves Prometheus as the
Service `<release>-prometheus`: kube-prometheus-stack-prometheus, port 9090 (http-web). Only
MONITORING=full installs it. The port-forward goes through tasks/core/portforward.forward, as
`doit grafana`'s does: a free local port, recorded, always ended (return, error, Ctrl-C, SIGTERM).

The API helpers (`api`, `app_targets`, `loaded_rules`, `missing_lab_rules`) take the base URL of
a port-forward, so tests on a real cluster check what the Targets and Alerts pages show with them.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tasks.core import browser, console, kube, names, portforward
from tasks.core.errors import LabError
from tasks.core.signals import interrupt_on_sigterm  # SIGTERM/SIGHUP behave like Ctrl-C

NAMESPACE = names.MONITORING_NAMESPACE
RELEASE = names.MONITORING_CHART
SERVICE = f"{RELEASE}-prometheus"
PORT = 9090
PAGES = {"Targets": "/targets", "Alerts": "/alerts"}  # Prometheus 3's UI
APP_RULES = names.GITOPS_DIR / "apps" / "base" / "prometheusrule.yaml"


# --- preconditions ---------------------------------------------------------------------------

def check_stack(lab) -> None:
    """One clear line unless MONITORING=full and the stack's HelmRelease is Ready."""
    cfg = lab.cfg
    if cfg.MONITORING != "full":
        raise LabError(f"MONITORING={cfg.MONITORING}: this lab runs no Prometheus",
                       "only MONITORING=full installs kube-prometheus-stack",
                       "run `doit setup MONITORING=full`, then `doit prometheus`")
    release = kube.get_json(lab, "helmreleases.helm.toolkit.fluxcd.io", RELEASE, "-n", NAMESPACE, missing_ok=True)
    if not release:
        raise LabError(f"no HelmRelease {NAMESPACE}/{RELEASE}", "kube-prometheus-stack is not installed (yet)",
                       "run `doit setup`")
    status, reason, message = kube.condition(release, "Ready")
    if status != "True":
        first = message.strip().splitlines()[0] if message.strip() else "not reconciled yet"
        raise LabError(f"kube-prometheus-stack is not Ready ({reason or 'Unknown'}: {first[:240]})",
                       "Prometheus runs once its HelmRelease is Ready",
                       f"wait with `doit wait_for_flux`, or look with "
                       f"`flux --context {cfg.KUBE_CONTEXT} get helmreleases -n {NAMESPACE}`")


# --- the HTTP API ---------------------------------------------------------------------------------

def api(base: str, path: str, timeout: float = 10, **params) -> dict:
    """GET an /api/v1 endpoint through the port-forward; its `data`, or a LabError with Prometheus' error."""
    query = urllib.parse.urlencode([(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])])
    url = f"{base}{path}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            body = json.loads(res.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            raise LabError(f"Prometheus answered {path} with HTTP {exc.code}", "", "see `doit debug_monitoring`") \
                from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabError(f"Prometheus did not answer {path}", str(exc)[:200],
                       f"is the port-forward up? `kubectl -n {NAMESPACE} get pods`") from None
    if body.get("status") != "success":
        raise LabError(f"Prometheus refused {path}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def wait_ready(base: str, timeout: float = 30) -> bool:
    """True once /-/ready answers 200 (Prometheus has loaded its TSDB and configuration)."""
    return portforward.answers(base + "/-/ready", timeout)


def app_targets(base: str) -> dict[str, list[dict]]:
    """The app's active targets (its ServiceMonitor `app`, one per pod) by namespace."""
    found: dict[str, list[dict]] = {}
    for t in api(base, "/api/v1/targets", state="active")["activeTargets"]:
        pool = t.get("scrapePool", "")
        if pool.startswith("serviceMonitor/") and pool.split("/")[2] == names.APP:
            found.setdefault(t["labels"]["namespace"], []).append(t)
    return found


def lab_rule_names(path: Path = APP_RULES) -> set[str]:
    """Every rule (alert and record) of the lab's PrometheusRule, as flux-cd/ declares it."""
    import yaml
    doc = yaml.safe_load(path.read_text())
    return {r.get("alert") or r.get("record") for g in doc["spec"]["groups"] for r in g["rules"]}


def loaded_rules(base: str) -> dict[str, dict[str, dict]]:
    """Rules Prometheus loaded from the lab's PrometheusRule `app`, by namespace: name -> the rule as
    /api/v1/rules gives it (alerting ones with their state: inactive, pending, firing). The operator
    writes each PrometheusRule to a file named <namespace>-<name>-<uid>.yaml."""
    found: dict[str, dict[str, dict]] = {}
    for group in api(base, "/api/v1/rules")["groups"]:
        stem = group["file"].rsplit("/", 1)[-1]
        for env in names.ENVIRONMENTS:
            if stem.startswith(f"{env}-{names.APP}-"):
                found.setdefault(env, {}).update({r["name"]: r for r in group["rules"]})
    return found


def missing_lab_rules(base: str) -> dict[str, set[str]]:
    """The lab's rules Prometheus has not loaded, per environment (all empty: the Alerts page lists them)."""
    want = lab_rule_names()
    have = loaded_rules(base)
    return {env: want - set(have.get(env, {})) for env in names.ENVIRONMENTS}


def summary(base: str) -> list[str]:
    """What the Targets and Alerts pages show, in a few lines."""
    lines = []
    targets = app_targets(base)
    health = []
    for env in names.ENVIRONMENTS:
        ts = targets.get(env, [])
        up = sum(t["health"] == "up" for t in ts)
        health.append(f"{env} {up}/{len(ts)} up" if ts else f"{env} none")
    lines.append("app targets: " + ", ".join(health))
    rules = loaded_rules(base)
    alerting = [r for env in rules.values() for r in env.values() if r.get("type") == "alerting"]
    states = {s: sum(r["state"] == s for r in alerting) for s in ("firing", "pending")}
    missing = {env: sorted(m) for env, m in missing_lab_rules(base).items() if m}
    lines.append(f"lab rules: {sum(len(r) for r in rules.values())} loaded in {len(rules)} environment(s), "
                 f"{states['firing']} alert(s) firing, {states['pending']} pending"
                 + (f"; not loaded: {missing}" if missing else ""))
    return lines


# --- the task --------------------------------------------------------------------------------------

def prometheus(lab, *, hold: Callable[[str], None] | None = None) -> dict:
    """Port-forward svc/kube-prometheus-stack-prometheus, print the URL and its pages, then wait.

    hold: called with the base URL while the port-forward is up; returns (or raises
          KeyboardInterrupt) to end it. Default: wait until Ctrl-C / SIGTERM.
    Returns {"url": ..., "targets": ..., "alerts": ...}.
    """
    if lab.dry_run:
        console.info(f"dry run: would port-forward svc/{SERVICE} in {NAMESPACE} on a free local port "
                     "(changes nothing in the cluster)")
        return {}
    check_stack(lab)
    svc = kube.get_json(lab, "service", SERVICE, "-n", NAMESPACE, missing_ok=True)
    if not svc:
        raise LabError(f"no Service {NAMESPACE}/{SERVICE}", "the HelmRelease is Ready but its values disable "
                       "Prometheus (prometheus.enabled: false)", "see flux-cd/infrastructure/monitoring/release.yaml")
    result: dict = {}
    try:
        with interrupt_on_sigterm(), portforward.forward(lab, NAMESPACE, f"svc/{SERVICE}", PORT) as base:
            result = {"url": base, **{page.lower(): base + path for page, path in PAGES.items()}}
            if not wait_ready(base):
                console.warn("Prometheus does not answer /-/ready yet; it may still be starting")
            console.ok(f"Prometheus: {base}")
            for page, path in PAGES.items():
                console.info(f"{page}: {base}{path}")
            try:
                for line in summary(base):
                    console.info(line)
            except LabError as exc:
                console.warn(exc.line())
            if browser.open_url(base + PAGES["Targets"]):
                console.info("opened in your browser")
            console.info("Ctrl-C stops the port-forward")
            (hold or portforward.hold_forever)(base)
    except KeyboardInterrupt:
        print(flush=True)
    console.info("port-forward to Prometheus ended")
    return result
