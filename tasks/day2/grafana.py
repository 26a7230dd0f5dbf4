"""`doit grafana` / `inv grafana`: open the stack's Grafana on a free local port.

    doit grafana                  port-forward, print the URL and the login, wait for Ctrl-C
    SHOW_PASSWORD=1 doit grafana  ... and print the admin password too

kube-prometheus-stack (HelmRelease monitoring/kube-prometheus-stack) names its
Grafana Service and admin Secret `<release>-grafana`: kube-prometheus-stack-grafana,
Service port 80 (named http-web), Secret keys admin-user / admin-password. The
password is read from that Secret only when it is to be printed; by default the
task says where it comes from and how to read it.

The port-forward goes through tasks/portforward.forward: a free local port chosen
by kubectl, recorded in the state directory (so `doit hpa_stop`/`teardown` end it
after a killed run) and always ended on return, error, Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import base64
import os
from collections.abc import Callable

from tasks.core import browser, console, kube, names, portforward
from tasks.core.errors import LabError
from tasks.core.signals import interrupt_on_sigterm  # SIGTERM/SIGHUP behave like Ctrl-C

NAMESPACE = names.MONITORING_NAMESPACE
RELEASE = names.MONITORING_CHART
SERVICE = f"{RELEASE}-grafana"
SECRET = f"{RELEASE}-grafana"
USER_KEY, PASSWORD_KEY = "admin-user", "admin-password"
DASHBOARD_PATH = "/d/gitops-lab-app"  # uid in flux-cd/infrastructure/monitoring/dashboards/gitops-lab-app.json
SHOW_PASSWORD_ENV = "SHOW_PASSWORD"


def show_password_requested(env=None) -> bool:
    """SHOW_PASSWORD=1/true/yes/on in the environment."""
    env = os.environ if env is None else env
    return str(env.get(SHOW_PASSWORD_ENV, "")).strip().lower() in ("1", "true", "yes", "on")


def secret_command(cfg, key: str = PASSWORD_KEY) -> str:
    """The command a person runs to read `key` from the Secret themselves."""
    return (f"kubectl --context {cfg.KUBE_CONTEXT} -n {NAMESPACE} get secret {SECRET} "
            f"-o jsonpath='{{.data.{key}}}' | base64 -d")


def service_port(svc: dict) -> int:
    """The Service port to forward to: the one named http-web, else the first (chart default 80)."""
    ports = (svc.get("spec") or {}).get("ports") or []
    for p in ports:
        if p.get("name") == "http-web":
            return int(p["port"])
    if not ports:
        raise LabError(f"Service {NAMESPACE}/{SERVICE} has no ports", "the Grafana chart values look broken",
                       f"see `kubectl -n {NAMESPACE} get svc {SERVICE} -o yaml`")
    return int(ports[0]["port"])


def _secret_value(lab, key: str) -> str | None:
    """One key of the Grafana Secret, decoded; None when the Secret or the key is missing.

    Reads only that key (jsonpath), quietly: the value never reaches the terminal
    unless the caller prints it.
    """
    res = lab.probe("kubectl", *kube.kubectl_args(lab.cfg, "-n", NAMESPACE, "get", "secret", SECRET,
                                                 "-o", f"jsonpath={{.data.{key}}}"),
                  check=False, quiet=True, timeout=30)
    if not res.ok or not res.out.strip():
        return None
    try:
        return base64.b64decode(res.out.strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def wait_healthy(base: str, timeout: float = 30) -> bool:
    """True once Grafana's /api/health answers 200 through the port-forward."""
    return portforward.answers(base + "/api/health", timeout)


def grafana(lab, *, show_password: bool | None = None,
            hold: Callable[[str], None] | None = None) -> dict:
    """Port-forward svc/kube-prometheus-stack-grafana, print the URL and the login, then wait.

    show_password: print the admin password (default: SHOW_PASSWORD=1 in the environment).
    hold: called with the base URL while the port-forward is up; returns (or raises
          KeyboardInterrupt) to end it. Default: wait until Ctrl-C / SIGTERM.
    Returns {"url": ..., "dashboard": ...} (never the password). Ctrl-C is the normal way
    to stop: it ends the port-forward and returns normally.
    """
    if show_password is None:
        show_password = bool(getattr(lab.cfg, "SHOW_PASSWORD", "")) or show_password_requested()
    show = show_password
    if lab.dry_run:
        console.info(f"dry run: would port-forward svc/{SERVICE} in {NAMESPACE} on a free local port "
                     f"(changes nothing in the cluster)")
        return {}
    svc = kube.get_json(lab, "service", SERVICE, "-n", NAMESPACE, missing_ok=True)
    if not svc:
        raise LabError(f"no Service {NAMESPACE}/{SERVICE}",
                       f"kube-prometheus-stack (HelmRelease {NAMESPACE}/{RELEASE}) is not installed yet",
                       f"run `doit setup`, then `flux --context {lab.cfg.KUBE_CONTEXT} get helmreleases -n {NAMESPACE}`")
    remote = service_port(svc)
    user = _secret_value(lab, USER_KEY)
    password = _secret_value(lab, PASSWORD_KEY) if show else None
    if user is None:
        console.warn(f"Secret {NAMESPACE}/{SECRET} has no {USER_KEY}; the chart's default user is admin")
        user = "admin"
    result: dict = {}
    try:
        with interrupt_on_sigterm(), portforward.forward(lab, NAMESPACE, f"svc/{SERVICE}", remote) as base:
            result = {"url": base, "dashboard": base + DASHBOARD_PATH}
            if not wait_healthy(base):
                console.warn("Grafana does not answer /api/health yet; it may still be starting")
            console.ok(f"Grafana: {base}")
            console.info(f"app dashboard: {base}{DASHBOARD_PATH}")
            console.info(f"user: {user}")
            if show:
                if password is None:
                    console.warn(f"Secret {NAMESPACE}/{SECRET} has no {PASSWORD_KEY}")
                else:
                    console.info(f"password: {password}")
            else:
                console.info(f"password: in Secret {NAMESPACE}/{SECRET}, key {PASSWORD_KEY} — "
                             f"not printed; rerun with {SHOW_PASSWORD_ENV}=1, or: {secret_command(lab.cfg)}")
            if browser.open_url(base + DASHBOARD_PATH):
                console.info("opened in your browser")
            console.info("Ctrl-C stops the port-forward")
            (hold or portforward.hold_forever)(base)
    except KeyboardInterrupt:
        print(flush=True)
    console.info("port-forward to Grafana ended")
    return result
