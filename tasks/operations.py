"""Every operation of the lab, declared once.

One row per operation: its name, what its step line says, the library function that does it,
its doc, what it needs first, how it is up to date (files, earlier results, reality, settings),
whether it changes anything (the run lock), its invoke options and the original Makefile's
names for it. dodo.py's tasks (`doit list`), the invoke collection (`inv --list`) and the
README's Makefile table are all generated from this table, so they cannot drift apart.

Adding a step: write its function in a module of its own, add a row here, add its name to
GRAPH in dodo.py if `doit setup` should run it. Nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tasks.core import console, names
from tasks.day2 import debug, grafana, hpa, info, prometheus, promote, status, teardown
from tasks.steps import cluster, flux, image, metrics_server, mirrors, preflight, registry, sync, verify


@dataclass(frozen=True)
class Option:
    """An invoke option that sets one setting (`inv hpa-demo --duration 30` = HPA_DURATION=30)."""
    name: str
    setting: str
    help: str
    flag: bool = False  # a switch: present means "1"


@dataclass(frozen=True)
class Operation:
    name: str
    doc: str
    run: Callable | None = None           # fn(lab); None: only runs what it `needs`
    doing: str = ""                       # the step line; {SETTING} is filled from the config
    needs: tuple[str, ...] = ()           # operations that run first (doit task_dep)
    results: tuple[str, ...] = ()         # up to date only while these produced the same result
    files: Callable[[object], list] | None = None   # cfg -> input files (doit file_dep)
    ready: tuple[Callable, ...] = ()      # fn(lab) -> bool: reality says it is done
    settings: tuple[str, ...] = ()        # a change of any of these redoes it
    framed: bool = True                   # False: prints its own output (tables, commands to copy)
    mutates: bool = True                  # False: read-only, needs no run lock from invoke
    invoke: bool = False                  # offered by `inv` too
    options: tuple[Option, ...] = ()
    make: tuple[str, ...] = ()            # the original Makefile's targets this answers to
    after: Callable | None = None         # fn(cfg): once the whole run ended (doit `teardown`)
    graph: bool = False                   # runs the build graph (dodo.py's GRAPH) first

    @property
    def in_graph(self) -> bool:
        """Decided by doit (dependencies or up-to-date checks), not a plain call."""
        return bool(self.graph or self.needs or self.results or self.files or self.ready or self.settings)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Makefile names that differ from ours: extra doit tasks running this one."""
        return tuple(m for m in self.make if m != self.name)

    @property
    def inv_name(self) -> str:
        return self.name.replace("_", "-")


def _validation():
    from tasks.validation import task  # kustomize rendering and schemas: only when validating
    return task


def _watch():
    from tasks.day2 import watch  # imports watchfiles: only when watching starts
    return watch


def _purge(c) -> bool:
    return c.PURGE == "1"


_ENV_OPTION = Option("env", "APP_ENV", "dev, staging or production")
_KUSTOMIZATION_OPTION = Option("name", "FLUX_KUSTOMIZATION", "one Flux Kustomization (default: all of the lab's)")

OPERATIONS: tuple[Operation, ...] = (
    # --- the build graph (`doit setup`; order and shape in dodo.py) --------------------------
    Operation("preflight", "Check tools and versions, the Docker daemon and the registry port (changes nothing).",
              preflight.run, "check tools, Docker and the registry port", mutates=False),
    Operation("registry", "Local OCI registry on 127.0.0.1:REGISTRY_PORT: created if absent, started if stopped.",
              registry.ensure, "local OCI registry", needs=("preflight",), ready=(registry.is_ready,),
              settings=("REGISTRY_NAME", "REGISTRY_PORT", "REGISTRY_IMAGE", "MIRRORS"),
              make=("start_docker_registry",)),
    Operation("cluster", "kind cluster from KIND_CONFIG, wired to the registry; kubectl context switched to it.",
              cluster.ensure, "kind cluster {CLUSTER_NAME}", needs=("preflight",), results=("registry",),
              files=lambda c: [cluster.config_path(c)], ready=(cluster.is_ready,),
              settings=("CLUSTER_NAME", "KIND_NODE_IMAGE", "KUBE_CONTEXT", "REGISTRY_PORT"),
              make=("create_cluster",)),
    Operation("metrics_server", "metrics-server (pinned, --kubelet-insecure-tls for kind); waits for the metrics API.",
              metrics_server.ensure, "metrics-server", results=("cluster",),
              files=lambda c: metrics_server.manifest_files(), ready=(metrics_server.is_ready,),
              make=("install_metrics_server",)),
    Operation("flux", "Flux controllers at FLUX_VERSION; `flux check` passes afterwards.",
              flux.ensure, "Flux {FLUX_VERSION}", results=("cluster",), ready=(flux.is_ready,),
              settings=("FLUX_VERSION",), make=("setup_flux",)),
    Operation("image", "Build the app image, tagged by the content of app/'s build inputs.",
              image.build, "build the app image", needs=("preflight",), files=lambda c: image.build_inputs(),
              ready=(image.is_built,), settings=("REGISTRY_PORT",), make=("app_build",)),
    Operation("app_push", "Push the app image to the local registry (up to date when the tag is there).",
              image.push, "push the app image", needs=("registry",), results=("image",), ready=(image.pushed,),
              make=("app_push",)),
    Operation("sync", "Publish flux-cd/ as an OCI artifact, apply the Flux bootstrap, reconcile, wait for Ready.",
              sync.ensure, "GitOps sync through Flux", results=("app_push", "flux"),
              files=lambda c: sync.gitops_files(), ready=(sync.is_ready,),
              # Every setting the rendered bootstrap depends on: a change re-renders and re-applies it
              # (reality checks see a missing or unready object, not a URL or a path that differs).
              settings=("GITOPS_SOURCE", "GITHUB_USER", "GITHUB_REPO", "GIT_BRANCH", "REGISTRY_PORT", "REGISTRY_NAME",
                        "REGISTRY", "REGISTRY_PROVIDER", "REGISTRY_USERNAME", "CLUSTER_PROVIDER", "MONITORING",
                        "MIRRORS", "CHART_MIRRORS")),
    Operation("verify", "Check Flux Ready, image and pods per environment, the app's routes (changes nothing).",
              verify.run, "check the lab end to end", needs=("sync",), mutates=False, invoke=True),
    # What setup runs is dodo.py's GRAPH.
    Operation("setup", "The whole lab: registry → cluster → metrics-server → Flux → image → sync → verify.",
              lambda lab: console.say(verify.NEXT_STEPS), framed=False, graph=True, invoke=True,
              make=("deploy_everything", "setup_all"),
              options=(Option("dry_run", "DRY_RUN", "print the mutating commands, run none", flag=True),)),

    # --- settings and offline checks ----------------------------------------------------------
    Operation("config", "Print every setting, its effective value and where it came from.",
              lambda lab: info.print_config(lab.cfg), framed=False, mutates=False, invoke=True),
    Operation("validate", "Render and validate flux-cd/ and the kind config offline (real kustomize, schemas, "
              "policies).", lambda lab: _validation().run(lab), "render and validate the GitOps tree", mutates=False, invoke=True),
    Operation("check_deps", "Check that docker, kind, kubectl and flux are installed, recent enough, and Docker runs.",
              preflight.check_deps, "tools and Docker", mutates=False, make=("check_deps",)),
    Operation("check_versions", "Print installed tool versions next to the pinned ones.",
              info.check_versions, "versions", mutates=False, make=("check_versions",)),
    Operation("install_tools", "Print the commands that install kind, kubectl and flux on this OS (runs nothing).",
              lambda lab: info.print_install("kind", "kubectl", "flux")(), framed=False, mutates=False,
              make=("install_tools",)),
    Operation("install_flux_cli", "Print the command that installs the pinned flux CLI on this OS (runs nothing).",
              lambda lab: info.print_install("flux")(), framed=False, mutates=False, make=("install_flux_cli",)),

    # --- the cluster and the registry ---------------------------------------------------------
    Operation("start_cluster", "Start the lab's registry and cluster (nodes stopped by a Docker restart come back).",
              needs=("registry", "cluster"), make=("start_cluster",)),
    Operation("stop_cluster", "Stop the cluster's node containers (keeps the cluster; `doit start_cluster` brings "
              "it back).", teardown.stop_cluster, "stop node containers", make=("stop_cluster",)),
    Operation("delete_cluster", "Delete the kind cluster (asked for by name: this destroys it).",
              cluster.delete, "delete cluster {CLUSTER_NAME}", make=("delete_cluster",)),
    Operation("recreate_cluster", "Delete the cluster and create it again from KIND_CONFIG (then `doit setup` "
              "rebuilds the rest).", cluster.recreate, "recreate cluster {CLUSTER_NAME}", invoke=True),
    Operation("use_context", "Switch kubectl to the lab's context (KUBE_CONTEXT).",
              cluster.use_context, "kubectl context", make=("use_context",)),
    Operation("current_context", "Print kubectl's current context.",
              info.current_context, "kubectl context", mutates=False, make=("current_context",)),
    Operation("list_clusters", "List kind clusters.", info.list_clusters, "kind clusters", mutates=False,
              make=("list_clusters",)),
    Operation("stop_docker_registry", "Remove the registry container (its image data stays in a volume unless "
              "PURGE=1).", lambda lab: registry.remove(lab, purge=_purge(lab.cfg)), "remove the registry container",
              make=("stop_docker_registry",)),
    Operation("mirror_fill", "Copy every image the cluster pulls at the pinned versions into the local mirrors "
              "(MIRRORS=on|offline).", mirrors.fill, "fill the local mirrors", needs=("preflight",)),
    Operation("mirror_status", "List the images the cluster needs and whether each local mirror holds it "
              "(changes nothing).", info.mirror_status, "local mirrors", mutates=False),

    # --- deploying ---------------------------------------------------------------------------
    Operation("build_and_push_services", "Build and push the app image (`image` + `app_push`).",
              needs=("image", "app_push"), make=("build_and_push_services",)),
    Operation("bootstrap_flux", "Install Flux and bootstrap the GitOps source (`flux` + `sync`).",
              needs=("flux", "sync"), make=("bootstrap_flux",)),
    Operation("deploy_via_flux", "Re-publish flux-cd/ and the image reference, reconcile now, wait for Ready (no git).",
              sync.ensure, "publish and reconcile", needs=("app_push",), make=("deploy_via_flux",)),
    # `doit watch` holds no run lock (each `doit setup` it starts takes it): graph.SUPERVISOR_TASKS.
    Operation("watch", "Run `doit setup` again after each save of app/, flux-cd/, the kind config or the settings "
              "(Ctrl-C stops).", lambda lab: _watch().run(lab), "edit and see: watch the lab's inputs",
              mutates=False, invoke=True),
    Operation("promote", "WATCH_ENVS=dev: give the next environment (or PROMOTE_TO) the artifact revision and image "
              "the one before runs.", promote.run, "promote the tested revision", invoke=True,
              options=(Option("to", "PROMOTE_TO", "staging or production (default: the first environment behind "
                              "the one before it)"),)),
    *(Operation(f"deploy_{env}", f"Reconcile the app in {env} now and wait for its rollout.",
                status.deploy_env(env), f"reconcile apps-{env}", make=(f"deploy_{env}",))
      for env in names.ENVIRONMENTS),

    # --- Flux and the cluster, day 2 ------------------------------------------------------------
    Operation("flux_status", "Flux sources, Kustomizations and HelmReleases: Ready, revision, age.",
              status.flux_table, "Flux objects", mutates=False, invoke=True, make=("flux_status",)),
    Operation("check_flux", "Fail unless every Flux object is Ready (names the one that is not, and why).",
              status.check_flux, "Flux readiness", mutates=False, invoke=True, make=("check_flux",)),
    Operation("wait_for_flux", "Wait (up to 10 min) until every Flux object is Ready.",
              status.wait_for_flux, "wait for Flux", mutates=False, invoke=True, make=("wait_for_flux",)),
    Operation("flux_logs", "Recent logs of the Flux controllers.",
              status.flux_logs, "Flux logs", mutates=False, invoke=True, make=("flux_logs",)),
    Operation("flux_suspend", "Suspend the lab's Flux Kustomizations (or FLUX_KUSTOMIZATION=name).",
              status.flux_toggle("suspend"), "suspend", invoke=True, options=(_KUSTOMIZATION_OPTION,),
              make=("flux_suspend",)),
    Operation("flux_resume", "Resume the lab's Flux Kustomizations (or FLUX_KUSTOMIZATION=name).",
              status.flux_toggle("resume"), "resume", invoke=True, options=(_KUSTOMIZATION_OPTION,),
              make=("flux_resume",)),
    Operation("cluster_status", "Nodes and the app's Deployments per environment (image, ready count).",
              status.cluster_status, "cluster", mutates=False, invoke=True, make=("cluster_status",)),

    # --- cleaning up -----------------------------------------------------------------------------
    Operation("cleanup_app", "Remove the app from APP_ENV the GitOps way (suspend + delete); says how to bring "
              "it back.", teardown.cleanup_app, "remove the app from {APP_ENV}", make=("cleanup_app",)),
    Operation("cleanup_flux_files", "Remove only generated files (dry-run database, logs); never tracked files.",
              teardown.cleanup_generated, "generated files", make=("cleanup_flux_files",)),
    Operation("cleanup_all", "Remove the app from every environment and uninstall Flux (keeps the cluster).",
              teardown.cleanup_all, "app and Flux", make=("cleanup_all",)),
    Operation("teardown", "Delete the cluster and the registry container, end port-forwards, clear local state "
              "(PURGE=1 also deletes the registry's image data).", teardown.teardown, "tear the lab down",
              invoke=True, options=(Option("purge", "PURGE", "also delete the registry's image data", flag=True),),
              make=("teardown_all",),
              # doit rewrites its database when the run ends; this runs after that.
              after=teardown.forget_task_database),

    # --- the HPA demo ----------------------------------------------------------------------------
    Operation("hpa_demo", "Load the app in HPA_NAMESPACE and show the HPA scaling up (and the timeline at the end).",
              hpa.hpa_demo, "HPA demo in {HPA_NAMESPACE}", invoke=True,
              options=(Option("duration", "HPA_DURATION", "seconds of load"),
                       Option("concurrency", "HPA_CONCURRENCY", "concurrent clients"),
                       Option("namespace", "HPA_NAMESPACE", "environment")),
              make=("hpa_demo",)),
    Operation("hpa_load", "Only the load: HPA_DURATION seconds at HPA_CONCURRENCY against /work.",
              hpa.hpa_load, "load /work", make=("hpa_load",)),
    Operation("hpa_watch", "Watch the HPA and pods every HPA_PAUSE seconds for HPA_DURATION seconds.",
              hpa.hpa_watch, "watch the HPA", mutates=False, make=("hpa_watch",)),
    Operation("hpa_stop", "End port-forwards left over from a killed hpa_demo.",
              hpa.hpa_stop, "end leftover port-forwards", mutates=False, invoke=True, make=("hpa_stop",)),
    Operation("hpa_reset", "Scale the app back to the HPA minimum and wait until Ready.",
              hpa.hpa_reset, "reset replicas", invoke=True, make=("hpa_reset",)),
    Operation("grafana", "Port-forward Grafana on a free port and print its URL (SHOW_PASSWORD=1 prints the "
              "password).", grafana.grafana, "open Grafana", mutates=False, invoke=True),
    Operation("prometheus", "Port-forward Prometheus on a free port and print its URL, its Targets and Alerts pages "
              "and what they show (MONITORING=full).", prometheus.prometheus, "open Prometheus", mutates=False,
              invoke=True),

    # --- debugging -------------------------------------------------------------------------------
    Operation("debug_metrics", "From the monitoring namespace, scrape the app by Service DNS; prove a foreign "
              "namespace is refused.", debug.debug_metrics, "cross-namespace metrics", mutates=False, invoke=True,
              options=(_ENV_OPTION,), make=("debug_metrics",)),
    Operation("debug_cleanup", "Remove the debug pods.", debug.debug_cleanup, "debug pods", mutates=False,
              invoke=True),
    Operation("debug_container", "Interactive shell in a throwaway debug pod (default namespace).",
              debug.debug_shell("default"), "shell in a debug pod in default", make=("debug_container",)),
    Operation("debug_app", "Interactive shell in a throwaway debug pod in APP_ENV.",
              debug.debug_shell(None), "shell in a debug pod in {APP_ENV}", make=("debug_app",)),
    Operation("debug_monitoring", "Interactive shell in a throwaway debug pod in the monitoring namespace.",
              debug.debug_shell("monitoring"), "shell in a debug pod in monitoring", make=("debug_monitoring",)),
)

BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}


def get(name: str) -> Operation:
    return BY_NAME[name]


def perform(op: Operation, lab):
    """Run op on the run's lab, framed as one step unless it prints its own output."""
    if not op.framed:
        return op.run(lab)
    with console.step(op.name, doing(op, lab.cfg)):
        return op.run(lab)


def doing(op: Operation, cfg) -> str:
    return op.doing.format_map(cfg.values) if op.doing else op.name


def makefile_table() -> str:
    """README's "Makefile → doit → invoke" table (tests/unit/test_operations.py keeps README in step)."""
    rows = ["| Makefile target | doit task | invoke |", "|---|---|---|",
            "| help | `doit list` | `inv --list` |"]
    new = []
    for op in OPERATIONS:
        inv = f"`inv {op.inv_name}`" if op.invoke else ""
        if op.name not in op.make:
            new.append(op)
        for target in op.make:
            doit = f"`doit {target}`" + (f" (alias of `{op.name}`)" if target != op.name else "")
            rows.append(f"| {target} | {doit} | {inv} |")
    rows.append("| (new) | " + ", ".join(f"`doit {op.name}`" for op in new) + " | "
                + ", ".join(f"`inv {op.inv_name}`" for op in new if op.invoke) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(makefile_table(), end="")
