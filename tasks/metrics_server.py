"""metrics-server, pinned and patched for kind (hack/metrics-server/), applied declaratively."""
from __future__ import annotations

from tasks import cluster, kube, state

MANIFESTS = state.ROOT / "hack" / "metrics-server"
APISERVICE = "v1beta1.metrics.k8s.io"


def manifest_files() -> list[str]:
    return sorted(str(p) for p in MANIFESTS.rglob("*.yaml"))


def is_ready(t, cfg) -> bool:
    svc = kube.get_json(t, cfg, "apiservice", APISERVICE, missing_ok=True)
    return bool(svc) and kube.is_true(svc, "Available")


def ensure(t, cfg) -> dict:
    if cfg.existing and is_ready(t, cfg):  # managed clusters usually ship their own
        return {"metrics_server": "provided by the cluster", "cluster_id": cluster.identity(t, cfg)}
    # kind's kubelets need --kubelet-insecure-tls; a real cluster's do not.
    manifests = MANIFESTS / "real-cluster" if cfg.existing else MANIFESTS
    t.mutate("kubectl", *kube.kubectl_args(cfg, "apply", "-k", str(manifests)), timeout=120)
    if t.dry_run:
        return {"metrics_server": "dry-run"}
    t.probe("kubectl", *kube.kubectl_args(cfg, "-n", "kube-system", "rollout", "status",
                                          "deployment/metrics-server", "--timeout=180s"), timeout=200)
    t.probe("kubectl", *kube.kubectl_args(cfg, "wait", "--for=condition=Available",
                                          f"apiservice/{APISERVICE}", "--timeout=180s"), timeout=200)
    return {"metrics_server": "available", "cluster_id": cluster.identity(t, cfg)}
