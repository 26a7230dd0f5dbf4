"""gitops-lab: a local GitOps Kubernetes lab in one command.

    doit setup                 build everything (the default task)
    doit list                  every task with its doc
    doit config                every setting, its value and where it came from
    doit setup NAME=value      override a setting (see `doit config`)
"""
from doit.tools import config_changed
from doit.task import result_dep

from tasks import (cluster, debug, flux, grafana, hpa, image, info, metrics_server, mirrors, preflight, registry,
                   status, sync, teardown, validate_task, verify)
from tasks.graph import action, doit_config, load_config, reality

CFG = load_config()
DOIT_CONFIG = doit_config(CFG)

GRAPH = ["preflight", "registry", "cluster", "metrics_server", "flux", "image", "app_push", "sync", "verify"]


def _settings(*names):
    return config_changed({n: getattr(CFG, n) for n in names})


def _alias(doc, *deps):
    return {"doc": doc, "actions": None, "task_dep": list(deps)}


# --- the graph ------------------------------------------------------------------

def task_preflight():
    """Check tools and versions, the Docker daemon and the registry port (changes nothing)."""
    return {"actions": [action("preflight", "check tools, Docker and the registry port", preflight.run)],
            "uptodate": [False]}


def task_registry():
    """Local OCI registry on 127.0.0.1:REGISTRY_PORT: created if absent, started if stopped."""
    return {"actions": [action("registry", "local OCI registry", registry.ensure)],
            "task_dep": ["preflight"],
            "uptodate": [reality(registry.is_ready), _settings("REGISTRY_NAME", "REGISTRY_PORT", "REGISTRY_IMAGE",
                                                                   "MIRRORS")]}


def task_cluster():
    """kind cluster from KIND_CONFIG, wired to the registry; kubectl context switched to it."""
    return {"actions": [action("cluster", f"kind cluster {CFG.CLUSTER_NAME}", cluster.ensure)],
            "file_dep": [str(cluster.config_path(CFG))],
            "task_dep": ["preflight"],
            "uptodate": [result_dep("registry"), reality(cluster.is_ready),
                         _settings("CLUSTER_NAME", "KIND_NODE_IMAGE", "KUBE_CONTEXT", "REGISTRY_PORT")]}


def task_metrics_server():
    """metrics-server (pinned, --kubelet-insecure-tls for kind); waits for the metrics API."""
    return {"actions": [action("metrics_server", "metrics-server", metrics_server.ensure)],
            "file_dep": metrics_server.manifest_files(),
            "uptodate": [result_dep("cluster"), reality(metrics_server.is_ready)]}


def task_flux():
    """Flux controllers at FLUX_VERSION; `flux check` passes afterwards."""
    return {"actions": [action("flux", f"Flux {CFG.FLUX_VERSION}", flux.ensure)],
            "uptodate": [result_dep("cluster"), reality(flux.is_ready), _settings("FLUX_VERSION")]}


def task_image():
    """Build the app image, tagged by the content of app/'s build inputs."""
    return {"actions": [action("image", "build the app image", image.build)],
            "file_dep": [str(p) for p in image.build_inputs()],
            "task_dep": ["preflight"],
            "uptodate": [reality(image.is_built), _settings("REGISTRY_PORT")]}


def task_app_push():
    """Push the app image to the local registry (up to date when the tag is there)."""
    return {"actions": [action("app_push", "push the app image", image.push)],
            "task_dep": ["registry"],
            "uptodate": [result_dep("image"), reality(image.pushed)]}


def task_sync():
    """Publish flux-cd/ as an OCI artifact, apply the Flux bootstrap, reconcile, wait for Ready."""
    return {"actions": [action("sync", "GitOps sync through Flux", sync.ensure)],
            "file_dep": [str(p) for p in sync.gitops_files()],
            "uptodate": [result_dep("app_push"), result_dep("flux"), reality(sync.is_ready),
                         _settings("GITOPS_SOURCE", "GITHUB_USER", "GITHUB_REPO", "GIT_BRANCH",
                                   "REGISTRY_PORT")]}


def task_verify():
    """Check Flux Ready, image and pods per environment, the app's routes (changes nothing)."""
    return {"actions": [action("verify", "check the lab end to end", verify.run)],
            "task_dep": ["sync"], "uptodate": [False]}


def task_setup():
    """The whole lab: registry → cluster → metrics-server → Flux → image → sync → verify."""
    return {"actions": [lambda: print(verify.NEXT_STEPS)], "task_dep": GRAPH, "verbosity": 2}


# --- settings and offline checks -------------------------------------------------

def task_config():
    """Print every setting, its effective value and where it came from."""
    return {"actions": [lambda: info.print_config(CFG)], "uptodate": [False]}


def task_validate():
    """Render and validate flux-cd/ and the kind config offline (real kustomize, schemas, policies)."""
    return {"actions": [action("validate", "render and validate the GitOps tree", validate_task.run)],
            "uptodate": [False]}


# --- Makefile parity: same meaning, snake_case ------------------------------------

def task_check_deps():
    """Check that docker, kind, kubectl and flux are installed, recent enough, and Docker runs."""
    return {"actions": [action("check_deps", "tools and Docker", preflight.check_deps)], "uptodate": [False]}


def task_check_versions():
    """Print installed tool versions next to the pinned ones."""
    return {"actions": [action("check_versions", "versions", info.check_versions)], "uptodate": [False]}


def task_install_tools():
    """Print the commands that install kind, kubectl and flux on this OS (runs nothing)."""
    return {"actions": [info.print_install("kind", "kubectl", "flux")], "uptodate": [False]}


def task_install_flux_cli():
    """Print the command that installs the pinned flux CLI on this OS (runs nothing)."""
    return {"actions": [info.print_install("flux")], "uptodate": [False]}


def task_create_cluster():
    """Alias of `cluster` (creates the registry too)."""
    return _alias(task_create_cluster.__doc__, "cluster")


def task_start_cluster():
    """Start the lab's registry and cluster (nodes stopped by a Docker restart come back)."""
    return _alias(task_start_cluster.__doc__, "registry", "cluster")


def task_stop_cluster():
    """Stop the cluster's node containers (keeps the cluster; `doit start_cluster` brings it back)."""
    return {"actions": [action("stop_cluster", "stop node containers", teardown.stop_cluster)],
            "uptodate": [False]}


def task_delete_cluster():
    """Delete the kind cluster (asked for by name: this destroys it)."""
    return {"actions": [action("delete_cluster", f"delete cluster {CFG.CLUSTER_NAME}", cluster.delete)],
            "uptodate": [False]}


def task_recreate_cluster():
    """Delete the cluster and create it again from KIND_CONFIG (then `doit setup` rebuilds the rest)."""
    return {"actions": [action("recreate_cluster", f"recreate cluster {CFG.CLUSTER_NAME}", cluster.recreate)],
            "uptodate": [False]}


def task_use_context():
    """Switch kubectl to the lab's context (KUBE_CONTEXT)."""
    return {"actions": [action("use_context", "kubectl context", cluster.use_context)], "uptodate": [False]}


def task_current_context():
    """Print kubectl's current context."""
    return {"actions": [action("current_context", "kubectl context", info.current_context)],
            "uptodate": [False]}


def task_list_clusters():
    """List kind clusters."""
    return {"actions": [action("list_clusters", "kind clusters", info.list_clusters)], "uptodate": [False]}


def task_start_docker_registry():
    """Alias of `registry`."""
    return _alias(task_start_docker_registry.__doc__, "registry")


def task_stop_docker_registry():
    """Remove the registry container (its image data stays in a volume unless PURGE=1)."""
    return {"actions": [action("stop_docker_registry", "remove the registry container",
                               lambda t, c: registry.remove(t, c, purge=c.PURGE == "1"))],
            "uptodate": [False]}


def task_mirror_fill():
    """Copy every image the cluster pulls at the pinned versions into the local mirrors (MIRRORS=on|offline)."""
    return {"actions": [action("mirror_fill", "fill the local mirrors", mirrors.fill)],
            "task_dep": ["preflight"], "uptodate": [False]}


def task_mirror_status():
    """List the images the cluster needs and whether each local mirror holds it (changes nothing)."""
    return {"actions": [action("mirror_status", "local mirrors", info.mirror_status)], "uptodate": [False]}


def task_install_metrics_server():
    """Alias of `metrics_server`."""
    return _alias(task_install_metrics_server.__doc__, "metrics_server")


def task_app_build():
    """Alias of `image`."""
    return _alias(task_app_build.__doc__, "image")


def task_build_and_push_services():
    """Build and push the app image (`image` + `app_push`)."""
    return _alias(task_build_and_push_services.__doc__, "image", "app_push")


def task_setup_flux():
    """Alias of `flux`."""
    return _alias(task_setup_flux.__doc__, "flux")


def task_bootstrap_flux():
    """Install Flux and bootstrap the GitOps source (`flux` + `sync`)."""
    return _alias(task_bootstrap_flux.__doc__, "flux", "sync")


def task_deploy_via_flux():
    """Re-publish flux-cd/ and the image reference, reconcile now, wait for Ready (no git)."""
    return {"actions": [action("deploy_via_flux", "publish and reconcile", sync.ensure)],
            "task_dep": ["app_push"], "uptodate": [False]}


def task_deploy_everything():
    """Alias of `setup`."""
    return _alias(task_deploy_everything.__doc__, "setup")


def task_setup_all():
    """Alias of `setup`."""
    return _alias(task_setup_all.__doc__, "setup")


def _deploy(env):
    return {"doc": f"Reconcile the app in {env} now and wait for its rollout.",
            "actions": [action(f"deploy_{env}", f"reconcile apps-{env}", status.deploy_env(env))],
            "uptodate": [False]}


def task_deploy_dev():
    """Reconcile the app in dev now and wait for its rollout."""
    return _deploy("dev")


def task_deploy_staging():
    """Reconcile the app in staging now and wait for its rollout."""
    return _deploy("staging")


def task_deploy_production():
    """Reconcile the app in production now and wait for its rollout."""
    return _deploy("production")


def task_flux_status():
    """Flux sources, Kustomizations and HelmReleases: Ready, revision, age."""
    return {"actions": [action("flux_status", "Flux objects", status.flux_table)], "uptodate": [False]}


def task_check_flux():
    """Fail unless every Flux object is Ready (names the one that is not, and why)."""
    return {"actions": [action("check_flux", "Flux readiness", status.check_flux)], "uptodate": [False]}


def task_wait_for_flux():
    """Wait (up to 10 min) until every Flux object is Ready."""
    return {"actions": [action("wait_for_flux", "wait for Flux", status.wait_for_flux)], "uptodate": [False]}


def task_flux_logs():
    """Recent logs of the Flux controllers."""
    return {"actions": [action("flux_logs", "Flux logs", status.flux_logs)], "uptodate": [False]}


def task_flux_suspend():
    """Suspend the lab's Flux Kustomizations (or FLUX_KUSTOMIZATION=name)."""
    return {"actions": [action("flux_suspend", "suspend", status.flux_toggle("suspend"))], "uptodate": [False]}


def task_flux_resume():
    """Resume the lab's Flux Kustomizations (or FLUX_KUSTOMIZATION=name)."""
    return {"actions": [action("flux_resume", "resume", status.flux_toggle("resume"))], "uptodate": [False]}


def task_cluster_status():
    """Nodes and the app's Deployments per environment (image, ready count)."""
    return {"actions": [action("cluster_status", "cluster", status.cluster_status)], "uptodate": [False]}


def task_cleanup_app():
    """Remove the app from APP_ENV the GitOps way (suspend + delete); says how to bring it back."""
    return {"actions": [action("cleanup_app", f"remove the app from {CFG.APP_ENV}", teardown.cleanup_app)],
            "uptodate": [False]}


def task_cleanup_flux_files():
    """Remove only generated files (dry-run database, logs); never tracked files."""
    return {"actions": [action("cleanup_flux_files", "generated files", teardown.cleanup_generated)],
            "uptodate": [False]}


def task_cleanup_all():
    """Remove the app from every environment and uninstall Flux (keeps the cluster)."""
    return {"actions": [action("cleanup_all", "app and Flux", teardown.cleanup_all)], "uptodate": [False]}


def task_teardown_all():
    """Delete the cluster and the registry container, end port-forwards, clear local state."""
    return {"actions": [action("teardown_all", "tear the lab down", teardown.teardown)], "uptodate": [False],
            # doit rewrites its database when the run ends; a task teardown runs after that.
            "teardown": [teardown.forget_task_database]}


def task_hpa_demo():
    """Load the app in HPA_NAMESPACE and show the HPA scaling up (and the timeline at the end)."""
    return {"actions": [action("hpa_demo", f"HPA demo in {CFG.HPA_NAMESPACE}", hpa.hpa_demo)],
            "uptodate": [False]}


def task_hpa_load():
    """Only the load: HPA_DURATION seconds at HPA_CONCURRENCY against /work."""
    return {"actions": [action("hpa_load", "load /work", hpa.hpa_load)], "uptodate": [False]}


def task_hpa_watch():
    """Watch the HPA and pods every HPA_PAUSE seconds for HPA_DURATION seconds."""
    return {"actions": [action("hpa_watch", "watch the HPA", hpa.hpa_watch)], "uptodate": [False]}


def task_hpa_stop():
    """End port-forwards left over from a killed hpa_demo."""
    return {"actions": [action("hpa_stop", "end leftover port-forwards", hpa.hpa_stop)], "uptodate": [False]}


def task_hpa_reset():
    """Scale the app back to the HPA minimum and wait until Ready."""
    return {"actions": [action("hpa_reset", "reset replicas", hpa.hpa_reset)], "uptodate": [False]}


def task_grafana():
    """Port-forward Grafana on a free port and print its URL (SHOW_PASSWORD=1 prints the password)."""
    return {"actions": [action("grafana", "open Grafana", grafana.grafana)], "uptodate": [False]}


def task_debug_metrics():
    """From the monitoring namespace, scrape the app by Service DNS; prove a foreign namespace is refused."""
    return {"actions": [action("debug_metrics", "cross-namespace metrics", debug.debug_metrics)],
            "uptodate": [False]}


def task_debug_cleanup():
    """Remove the debug pods."""
    return {"actions": [action("debug_cleanup", "debug pods", debug.debug_cleanup)], "uptodate": [False]}


def task_debug_container():
    """Interactive shell in a throwaway debug pod (default namespace)."""
    return {"actions": [debug.debug_shell("default")], "uptodate": [False]}


def task_debug_app():
    """Interactive shell in a throwaway debug pod in APP_ENV."""
    return {"actions": [debug.debug_shell(CFG.APP_ENV)], "uptodate": [False]}


def task_debug_monitoring():
    """Interactive shell in a throwaway debug pod in the monitoring namespace."""
    return {"actions": [debug.debug_shell("monitoring")], "uptodate": [False]}


# --- edit and see (issue 17): the lead ports these two into the table of operations ---------------

def task_watch():
    """Run `doit setup` again after each save of app/, flux-cd/, the kind config or the settings (Ctrl-C stops)."""
    from tasks import watch  # watchfiles is imported when the watch starts
    # No run lock (each `doit setup` child takes it) and a database of its own: see graph.SUPERVISOR_TASKS.
    return {"actions": [action("watch", "edit and see: watch the lab's inputs", watch.run)],
            "uptodate": [False], "verbosity": 2}


def task_promote():
    """WATCH_ENVS=dev: give the next environment (or PROMOTE_TO) the artifact revision and image the one before runs."""
    from tasks import promote
    return {"actions": [action("promote", "promote the tested revision", promote.run)], "uptodate": [False]}
