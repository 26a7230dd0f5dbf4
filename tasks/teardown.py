"""Taking the lab apart: never touches git, idempotent, says what it did."""
from __future__ import annotations

from tasks import cluster, console, kube, portforward, registry, state, sync


def _debug_cleanup(t, cfg) -> None:
    from tasks import debug  # day-2 module; imported late to keep teardown usable alone
    debug.debug_cleanup(t, cfg)


def teardown(t, cfg) -> None:
    """End port-forwards and debug pods, delete cluster and registry, clear recorded state."""
    ended = portforward.stop_leftovers()
    console.info(f"port-forwards ended: {ended}")
    if cfg.existing or cluster.exists(t, cfg):
        try:
            _debug_cleanup(t, cfg)
        except Exception as exc:  # noqa: BLE001 - the cluster is going anyway
            console.warn(f"debug pods not removed ({exc}); deleting the cluster removes them")
    if cfg.existing:
        console.info(f"cluster {cfg.KUBE_CONTEXT}: CLUSTER_PROVIDER=existing, the lab did not create it and "
                     "leaves it alone (`doit cleanup_all` removes the app and Flux from it)")
    else:
        cluster.delete(t, cfg)
    registry.remove(t, cfg, purge=cfg.PURGE == "1")
    if not t.dry_run:
        state.forget("cluster.json", "doit.json", "doit-dry-run.json")
    if cfg.PURGE != "1" and not cfg.remote_registry and \
            cfg.registry_volume in t.probe("docker", "volume", "ls", "-q", timeout=60).out.split():
        console.info(f"registry images kept in volume {cfg.registry_volume} (PURGE=1 removes them)")
    console.ok("lab torn down; `doit setup` builds it again")


def stop_cluster(t, cfg) -> None:
    if cfg.existing:
        raise cluster.refuse_existing(cfg)
    nodes = cluster.nodes(t, cfg)
    if not nodes:
        console.info(f"cluster {cfg.CLUSTER_NAME} does not exist")
        return
    running = [n for n in nodes if cluster._running(t, n)]
    if not running:
        console.info(f"the nodes of cluster {cfg.CLUSTER_NAME} are already stopped")
        return
    t.mutate("docker", "stop", *running, timeout=300)
    console.info("nodes stopped; `doit start_cluster` starts them again")


def cleanup_app(t, cfg) -> None:
    env = cfg.APP_ENV
    ks = f"apps-{env}"
    if kube.get_json(t, cfg, "kustomizations.kustomize.toolkit.fluxcd.io", ks, "-n", "flux-system",
                     missing_ok=True):
        # Suspend first, or Flux would put the app straight back.
        t.mutate("flux", "suspend", "kustomization", ks, "-n", "flux-system", "--context", cfg.KUBE_CONTEXT,
                 timeout=120)
    for kind in ("hpa", "pdb", "service", "deployment"):
        t.mutate("kubectl", *kube.kubectl_args(cfg, "-n", env, "delete", kind, "app", "--ignore-not-found"),
                 timeout=120)
    console.info(f"app removed from {env}; bring it back with `doit flux_resume FLUX_KUSTOMIZATION={ks}`")


def cleanup_all(t, cfg) -> None:
    for env in sync.ENVIRONMENTS:
        cleanup_app(t, cfg.__class__({**cfg.values, "APP_ENV": env}, cfg.sources))
    t.mutate("flux", "uninstall", "--silent", "--context", cfg.KUBE_CONTEXT, timeout=300)
    console.info("Flux uninstalled; `doit setup` installs it again")


def cleanup_generated(t, cfg) -> None:
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


def forget_task_database() -> None:
    """After a teardown, nothing doit recorded describes reality any more."""
    from tasks.graph import cfg
    if not cfg().dry_run:
        state.forget("doit.json")
