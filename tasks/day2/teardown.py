"""Taking the lab apart: never touches git, idempotent, says what it did."""
from __future__ import annotations

from tasks.core import console, debugpods, kube, names, portforward, state
from tasks.steps import cluster, registry


def teardown(lab) -> None:
    """End port-forwards and debug pods, delete cluster and registry, clear recorded state."""
    ended = portforward.stop_leftovers()
    console.info(f"port-forwards ended: {ended}")
    if lab.cfg.existing or cluster.exists(lab):
        try:
            debugpods.remove(lab)
        except Exception as exc:  # noqa: BLE001 - the cluster is going anyway
            console.warn(f"debug pods not removed ({exc}); deleting the cluster removes them")
    if lab.cfg.existing:
        console.info(f"cluster {lab.cfg.KUBE_CONTEXT}: CLUSTER_PROVIDER=existing, the lab did not create it and "
                     "leaves it alone (`doit cleanup_all` removes the app and Flux from it)")
    else:
        cluster.delete(lab)
    registry.remove(lab, purge=lab.cfg.PURGE == "1")
    if not lab.dry_run:
        state.forget("cluster.json", "doit.json", "doit-dry-run.json")
    if lab.cfg.PURGE != "1" and not lab.cfg.remote_registry and \
            lab.cfg.registry_volume in lab.probe("docker", "volume", "ls", "-q", timeout=60).out.split():
        console.info(f"registry images kept in volume {lab.cfg.registry_volume} (PURGE=1 removes them)")
    console.ok("lab torn down; `doit setup` builds it again")


def stop_cluster(lab) -> None:
    if lab.cfg.existing:
        raise cluster.refuse_existing(lab.cfg)
    nodes = cluster.nodes(lab)
    if not nodes:
        console.info(f"cluster {lab.cfg.CLUSTER_NAME} does not exist")
        return
    running = [n for n in nodes if cluster._running(lab, n)]
    if not running:
        console.info(f"the nodes of cluster {lab.cfg.CLUSTER_NAME} are already stopped")
        return
    lab.mutate("docker", "stop", *running, timeout=300)
    console.info("nodes stopped; `doit start_cluster` starts them again")


def cleanup_app(lab) -> None:
    env = lab.cfg.APP_ENV
    ks = names.APP_LAYERS[env]
    if kube.get_json(lab, "kustomizations.kustomize.toolkit.fluxcd.io", ks, "-n", names.FLUX_NAMESPACE,
                     missing_ok=True):
        # Suspend first, or Flux would put the app straight back.
        lab.mutate("flux", "suspend", "kustomization", ks, "-n", names.FLUX_NAMESPACE, "--context", lab.cfg.KUBE_CONTEXT,
                 timeout=120)
    for kind in ("hpa", "pdb", "service", "deployment"):
        lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "-n", env, "delete", kind, names.APP, "--ignore-not-found"),
                 timeout=120)
    console.info(f"app removed from {env}; bring it back with `doit flux_resume FLUX_KUSTOMIZATION={ks}`")


def cleanup_all(lab) -> None:
    for env in names.ENVIRONMENTS:
        cleanup_app(lab.replace(APP_ENV=env))
    lab.mutate("flux", "uninstall", "--silent", "--context", lab.cfg.KUBE_CONTEXT, timeout=300)
    console.info("Flux uninstalled; `doit setup` installs it again")


def cleanup_generated(lab) -> None:
    """Only files we generate; tracked files are never touched."""
    removed = 0
    # (and what `doit watch` wrote: its logs, its record, its own doit database)
    for name in ("doit-dry-run.json", "doit.corrupt", "watch.log", "watch-runs.jsonl", "watch-run.json",
                 "doit-watch.json"):
        if state.path(name).exists():
            state.forget(name)
            removed += 1
    for log in state.path(portforward.PIDS).glob("*.log") if state.path(portforward.PIDS).exists() else []:
        log.unlink()
        removed += 1
    console.info(f"generated files removed: {removed}")


def forget_task_database(cfg) -> None:
    """After a teardown, nothing doit recorded describes reality any more."""
    if not cfg.dry_run:
        state.forget("doit.json")
