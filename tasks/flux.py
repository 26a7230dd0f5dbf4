"""Flux CD in the cluster, at the pinned version."""
from __future__ import annotations

from tasks import cluster, console, kube, names
from tasks.errors import LabError
from tasks.tools import tail

CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller", "notification-controller")


def installed_version(t, cfg) -> str | None:
    """The Flux version every controller runs, if all are there and Available."""
    deployments = kube.namespaced(t, cfg, "deployments.apps", names.FLUX_NAMESPACE)
    found = {d["metadata"]["name"]: d for d in deployments}
    if not all(c in found for c in CONTROLLERS):
        return None
    seen = {found[c]["metadata"].get("labels", {}).get("app.kubernetes.io/version") for c in CONTROLLERS}
    if len(seen) != 1 or not all(kube.is_true(found[c], "Available") for c in CONTROLLERS):
        return None
    return seen.pop()


def is_ready(t, cfg) -> bool:
    return installed_version(t, cfg) == f"v{cfg.FLUX_VERSION}"


def ensure(t, cfg) -> dict:
    ctx = ("--context", cfg.KUBE_CONTEXT)
    if t.dry_run and cluster.identity(t, cfg) is None:
        t.mutate("flux", "install", *ctx, "--timeout=5m")
        return {"flux": "dry-run"}
    pre = t.probe("flux", "check", "--pre", *ctx, check=False, timeout=120)
    if not pre.ok:
        raise LabError("`flux check --pre` failed", tail(pre.err or pre.out, 2),
                       f"Flux {cfg.FLUX_VERSION} needs Kubernetes >= 1.33: set K8S_VERSION and run "
                       "`doit recreate_cluster`")
    args = ["install", *ctx, "--timeout=5m"]
    cli = t.check_version("flux")
    if cli != cfg.FLUX_VERSION:
        # The CLI embeds its own version's manifests; any other version is downloaded.
        console.warn(f"flux CLI is {cli}, installing Flux {cfg.FLUX_VERSION} (manifests are downloaded)")
        args.append(f"--version=v{cfg.FLUX_VERSION}")
    t.mutate("flux", *args, timeout=400)
    if t.dry_run:
        return {"flux": "dry-run"}
    t.probe("flux", "check", *ctx, timeout=300)
    return {"flux": cfg.FLUX_VERSION, "cluster_id": cluster.identity(t, cfg)}
