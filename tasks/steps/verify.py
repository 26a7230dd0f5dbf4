"""Is the lab what `doit setup` promised? Flux Ready, the right image everywhere,
pods on workers only, the app answering through a port-forward."""
from __future__ import annotations

import time

import requests

from tasks.core import console, flux_status, kube, names, parallel, portforward
from tasks.steps import image, pinning, sync
from tasks.core.errors import LabError



def unlabelled_workers(lab) -> LabError:
    nodes = sorted(n["metadata"]["name"] for n in kube.setup_read(lab, "nodes") or []
                   if names.CONTROL_PLANE_LABEL not in (n["metadata"].get("labels") or {}))
    fix = (f"label them: `kubectl --context {lab.cfg.KUBE_CONTEXT} label node {' '.join(nodes)} "
           f"{names.WORKER_SELECTOR}`" if nodes else "run `doit recreate_cluster`, then `doit setup`")
    return LabError(f"no node carries {names.WORKER_SELECTOR}",
                    "the app runs on the workers only, and kind-three-node.yaml labels them so", fix)


def worker_nodes(lab) -> set[str]:
    nodes = kube.setup_read(lab, "nodes") or []
    return {n["metadata"]["name"] for n in nodes
            if n["metadata"].get("labels", {}).get(names.WORKER_LABEL) == names.WORKER_VALUE}


def check_http(base: str, readiness_wait: float = 60) -> dict[str, int]:
    codes = {}
    for path in ("/healthz", "/readyz", "/metrics"):
        deadline = time.monotonic() + (readiness_wait if path == "/readyz" else 10)
        while True:
            try:
                res = requests.get(base + path, timeout=5)
                codes[path] = res.status_code
                if res.status_code == 200:
                    if path == "/metrics" and "http_requests_total" not in res.text:
                        raise LabError("/metrics answers without http_requests_total",
                                       "the app's metrics are missing", "check app/server.py")
                    break
            except requests.RequestException as exc:
                codes[path] = 0
                last = str(exc)
            if time.monotonic() > deadline:
                raise LabError(f"{path} did not answer 200 through the port-forward (got {codes[path] or last})",
                               "the app is not serving", "look at `kubectl logs deploy/app`")
            time.sleep(1)
    return codes


def app_deployment(lab, env: str) -> dict | None:
    found = kube.objects(kube.namespaced(lab, "deployments.apps", env), name=names.APP)
    return found[0] if found else None


def check_environment(lab, env: str, workers: set[str], expected: str) -> list[str]:
    dep = app_deployment(lab, env)
    if not dep:
        raise LabError(f"no Deployment {names.APP} in {env}",
                       f"{names.APP_LAYERS[env]} is Ready: it was deleted since (Flux restores it at its next interval)",
                       f"run `doit deploy_{env}` (Flux applies {env} again now)")
    running = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    if running != expected:
        raise LabError(f"{env} runs {running}, expected {expected}",
                       "the Deployment differs from what Flux applies (changed since; Flux restores it at its next "
                       "interval)", f"run `doit deploy_{env}` (Flux applies {env} again now)")
    if not kube.rollout_complete(dep):  # the run's read says it is not done: wait for it, then read again
        lab.probe("kubectl", *kube.kubectl_args(lab.cfg, "-n", env, "rollout", "status", f"deployment/{names.APP}",
                                              "--timeout=300s"), timeout=320)
        kube.forget(lab, "deployments.apps", "pods")
        dep = app_deployment(lab, env) or dep
    pods = kube.namespaced(lab, "pods", env, labels=names.APP_LABELS)
    pods = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    strays = [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") not in workers]
    if strays:
        raise LabError(f"app pods {', '.join(strays)} in {env} run outside the worker nodes",
                       "the Deployment's node affinity is not applied", "check flux-cd/apps/base/deployment.yaml")
    with portforward.forward(lab, env) as base:
        check_http(base)
    status = dep.get("status", {})
    nodes = sorted({p["spec"].get("nodeName", "?") for p in pods})
    return [env, f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}",
            running.split("@")[0].rsplit(":", 1)[-1], ", ".join(nodes), "200 200 200"]


def reads(cfg) -> list[str]:
    """What verify reads from the cluster (in one `kubectl get`; sync reads them with its final check)."""
    return [*flux_status.KINDS, "nodes", *(() if cfg.existing else kube.LAB_CLUSTER_ONLY)]


def run(lab) -> dict:
    if lab.dry_run:
        console.info("dry run: nothing to verify")
        return {"verified": "dry-run"}
    # What follows reads these; one `kubectl get` for those this run has not read yet.
    kube.snapshot(lab, reads(lab.cfg))
    objs = flux_status.objects(lab)
    gone = flux_status.missing(lab.cfg, objs)
    if gone:
        raise flux_status.missing_error(gone)
    paused = flux_status.suspended(lab.cfg, objs)
    if paused:
        raise flux_status.suspended_error(lab.cfg, paused)
    # What the environments substitute, before their readiness: without it they fail for its sake.
    try:
        expected = image.pinned_ref(lab)
    except LabError:
        raise LabError(f"the registry holds no {image.image_ref(lab.cfg)}",
                       "the lab runs the app image by the digest its push returned (the registry's data deleted?)",
                       "run `doit sync` (it pushes the image again first)") from None
    wrong = sync.vars_problem(lab, expected)
    if wrong:
        raise wrong
    want = pinning.expected_images(lab, expected)  # WATCH_ENVS: a pinned environment runs its promotion
    bad = flux_status.not_ready(objs)
    if bad:
        raise flux_status.not_ready_error(lab.cfg, *bad[0])
    workers = worker_nodes(lab)
    if not workers:
        raise unlabelled_workers(lab)
    # Side by side: each environment's port-forward and routes wait on their own (one table, in order).
    rows = parallel.side_by_side(lambda env: check_environment(lab, env, workers, want[env]), names.ENVIRONMENTS)
    print()
    console.print_table(["ENV", "READY", "IMAGE TAG", "NODES", "/healthz /readyz /metrics"], rows)
    return {"verified": expected, "serving": {row[0]: row[2] for row in rows}}


NEXT_STEPS = """
Next:
  doit hpa_demo            load the app in dev and watch the HPA scale
  doit cluster_status      nodes and app Deployments per environment
  doit flux_status         Flux sources, Kustomizations and HelmReleases
  kubectl -n dev port-forward svc/app 8000:8000   then open http://localhost:8000/work
  edit app/server.py, then `doit setup` again: only build, push, sync and verify re-run
  inv teardown             delete the cluster and the registry
"""
