"""Flux CD in the cluster, at the pinned version."""
from __future__ import annotations

from tasks.core import console, kube, names
from tasks.steps import cluster
from tasks.core.errors import LabError
from tasks.core.tools import tail

CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller", "notification-controller")


def installed_version(lab) -> str | None:
    """The Flux version every controller runs, if all are there and Available."""
    deployments = kube.namespaced(lab, "deployments.apps", names.FLUX_NAMESPACE)
    found = {d["metadata"]["name"]: d for d in deployments}
    if not all(c in found for c in CONTROLLERS):
        return None
    seen = {found[c]["metadata"].get("labels", {}).get("app.kubernetes.io/version") for c in CONTROLLERS}
    if len(seen) != 1 or not all(kube.is_true(found[c], "Available") for c in CONTROLLERS):
        return None
    return seen.pop()


def is_ready(lab) -> bool:
    return installed_version(lab) == f"v{lab.cfg.FLUX_VERSION}"


def ensure(lab) -> dict:
    ctx = ("--context", lab.cfg.KUBE_CONTEXT)
    if lab.dry_run and cluster.identity(lab) is None:
        lab.mutate("flux", "install", *ctx, "--timeout=5m")
        return {"flux": "dry-run"}
    pre = lab.probe("flux", "check", "--pre", *ctx, check=False, timeout=120)
    if not pre.ok:
        raise LabError("`flux check --pre` failed", tail(pre.err or pre.out, 2),
                       f"Flux {lab.cfg.FLUX_VERSION} needs Kubernetes >= 1.33: set K8S_VERSION and run "
                       "`doit recreate_cluster`")
    args = ["install", *ctx, "--timeout=5m"]
    cli = lab.check_version("flux")
    if cli != lab.cfg.FLUX_VERSION:
        # The CLI embeds its own version's manifests; any other version is downloaded.
        console.warn(f"flux CLI is {cli}, installing Flux {lab.cfg.FLUX_VERSION} (manifests are downloaded)")
        args.append(f"--version=v{lab.cfg.FLUX_VERSION}")
    lab.mutate("flux", *args, timeout=400)
    if lab.dry_run:
        return {"flux": "dry-run"}
    lab.probe("flux", "check", *ctx, timeout=300)
    return {"flux": lab.cfg.FLUX_VERSION, "cluster_id": cluster.identity(lab)}
