"""Day-2 operations: status, Flux controls, HPA demo, debugging."""
from __future__ import annotations

from invoke import task

from tasks import status
from tasks.inv.common import run_step


@task
def flux_status(c):
    """Flux sources, Kustomizations and HelmReleases."""
    run_step("flux_status", "Flux objects", status.flux_table, lock=False)


@task
def cluster_status(c):
    """Nodes and the app's Deployments per environment."""
    run_step("cluster_status", "cluster", status.cluster_status, lock=False)


@task
def check_flux(c):
    """Fail unless every Flux object is Ready."""
    run_step("check_flux", "Flux readiness", status.check_flux, lock=False)


@task
def wait_for_flux(c):
    """Wait until every Flux object is Ready."""
    run_step("wait_for_flux", "wait for Flux", status.wait_for_flux, lock=False)


@task
def flux_logs(c):
    """Recent Flux controller logs."""
    run_step("flux_logs", "Flux logs", status.flux_logs, lock=False)


@task(help={"name": "one Flux Kustomization (default: all of the lab's)"})
def flux_suspend(c, name=None):
    """Suspend the lab's Flux Kustomizations."""
    run_step("flux_suspend", "suspend", status.flux_toggle("suspend"), FLUX_KUSTOMIZATION=name)


@task(help={"name": "one Flux Kustomization (default: all of the lab's)"})
def flux_resume(c, name=None):
    """Resume the lab's Flux Kustomizations."""
    run_step("flux_resume", "resume", status.flux_toggle("resume"), FLUX_KUSTOMIZATION=name)


@task(help={"duration": "seconds of load", "concurrency": "concurrent clients", "namespace": "environment"})
def hpa_demo(c, duration=None, concurrency=None, namespace=None):
    """Load the app and watch the HPA scale."""
    from tasks import hpa
    run_step("hpa_demo", "HPA demo", hpa.hpa_demo, HPA_DURATION=duration, HPA_CONCURRENCY=concurrency,
             HPA_NAMESPACE=namespace)


@task
def hpa_stop(c):
    """End port-forwards left over from a killed hpa_demo."""
    from tasks import hpa
    run_step("hpa_stop", "leftover port-forwards", hpa.hpa_stop, lock=False)


@task
def hpa_reset(c):
    """Scale the app back to the HPA minimum."""
    from tasks import hpa
    run_step("hpa_reset", "reset replicas", hpa.hpa_reset)


@task(help={"env": "dev, staging or production"})
def debug_metrics(c, env=None):
    """Scrape the app from the monitoring namespace; prove a foreign namespace is refused."""
    from tasks import debug
    run_step("debug_metrics", "cross-namespace metrics", debug.debug_metrics, lock=False, APP_ENV=env)


@task
def debug_cleanup(c):
    """Remove the debug pods."""
    from tasks import debug
    run_step("debug_cleanup", "debug pods", debug.debug_cleanup, lock=False)


@task
def grafana(c):
    """Port-forward Grafana and print its URL (SHOW_PASSWORD=1 prints the password)."""
    from tasks import grafana as _grafana
    run_step("grafana", "open Grafana", _grafana.grafana, lock=False)


TASKS = [grafana, flux_status, cluster_status, check_flux, wait_for_flux, flux_logs, flux_suspend, flux_resume,
         hpa_demo, hpa_stop, hpa_reset, debug_metrics, debug_cleanup]
