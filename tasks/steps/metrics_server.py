"""metrics-server, pinned and patched for kind (hack/metrics-server/), applied declaratively."""
from __future__ import annotations

from tasks.core import console, kube, state
from tasks.steps import cluster

MANIFESTS = state.ROOT / "hack" / "metrics-server"
APISERVICE = "v1beta1.metrics.k8s.io"


def manifest_files() -> list[str]:
    return sorted(str(p) for p in MANIFESTS.rglob("*.yaml"))


def is_ready(lab) -> bool:
    """The metrics API is Available, from the setup run's one read of the cluster."""
    svc = kube.objects(kube.setup_read(lab, "apiservices.apiregistration.k8s.io"), name=APISERVICE)
    return bool(svc) and kube.is_true(svc[0], "Available")


def api_available(lab) -> bool:
    """The same question alone, for a day-2 task that reads nothing else of the setup run's."""
    svc = kube.get_json(lab, "apiservice", APISERVICE, missing_ok=True)
    return bool(svc) and kube.is_true(svc, "Available")


def local_nodes(lab) -> str | None:
    """'kind' or 'Docker Desktop' when the cluster's kubelets serve certificates without IP SANs."""
    doc = kube.get_json(lab, "nodes")
    for node in kube.items(doc):
        if node.get("spec", {}).get("providerID", "").startswith("kind://"):
            return "kind"
        if node["metadata"]["name"] == "docker-desktop":
            return "Docker Desktop"
    return None


def variant(lab):
    """kind's and Docker Desktop's kubelets need --kubelet-insecure-tls (no IP SANs in their
    serving certificates); a real cluster's do not. Decided from the nodes, and said."""
    if not lab.cfg.existing:
        return MANIFESTS
    local = local_nodes(lab)
    if local:
        console.info(f"{local} nodes: metrics-server with --kubelet-insecure-tls (their kubelet certificates "
                     "carry no IP addresses)")
        return MANIFESTS
    console.info("metrics-server verifies the kubelets' certificates (a real cluster's carry their addresses)")
    return MANIFESTS / "real-cluster"


def ensure(lab) -> dict:
    if lab.cfg.existing and is_ready(lab):  # managed clusters usually ship their own
        return {"metrics_server": "provided by the cluster", "cluster_id": cluster.identity(lab)}
    manifests = variant(lab)
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-k", str(manifests)), timeout=120)
    if lab.dry_run:
        return {"metrics_server": "dry-run"}
    lab.probe("kubectl", *kube.kubectl_args(lab.cfg, "-n", "kube-system", "rollout", "status",
                                          "deployment/metrics-server", "--timeout=180s"), timeout=200)
    lab.probe("kubectl", *kube.kubectl_args(lab.cfg, "wait", "--for=condition=Available",
                                          f"apiservice/{APISERVICE}", "--timeout=180s"), timeout=200)
    return {"metrics_server": "available", "cluster_id": cluster.identity(lab)}
