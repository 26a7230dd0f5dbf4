"""Version floors: one rule per floor, with its reason, enforced through this module only.

The numbers are pinned in tasks/versions.py; the rules that use them, and why each holds, are here.
Every check that refuses a version (preflight's tool checks, `doit check_versions`) asks `for_tool`.

| floor | rule | why |
|---|---|---|
| kind | >= 0.27.0, and >= 0.32.0 for a node of Kubernetes >= 1.36 | node images with containerd 2.x; kubeadm 1.36 removed kubeadm.k8s.io/v1beta3 |
| docker | >= 20.10.0 | `docker ps --format {{.State}}` decides a container's state |
| Flux (CLI and FLUX_VERSION) | >= 2.9.0 | postBuild.substituteStrategy: kustomize-controller v1.9.0 (Flux 2.9) |
| Kubernetes (K8S_VERSION, the node image, an existing cluster) | >= 1.34 where the lab installs metrics-server, else >= 1.33 | metrics-server 0.9 supports 1.34+; Flux 2.9's `flux check --pre` wants 1.33+ |
| kubectl | >= 1.33, and within one minor of the cluster (older or newer) | Kubernetes version skew policy |
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tasks import versions
from tasks.core.errors import LabError


@dataclass(frozen=True)
class Floor:
    version: str  # x.y.z
    why: str      # the reason, said in the error when a version is below it
    hint: str = ""  # another way out than upgrading, if there is one


def vt(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def node_version(cfg) -> str:
    """The Kubernetes version of the kind nodes: the node image's tag, else K8S_VERSION (x.y.z)."""
    found = re.search(r":v(\d+\.\d+\.\d+)", cfg.KIND_NODE_IMAGE)
    return found.group(1) if found else cfg.K8S_VERSION.lstrip("v")


def kind(cfg) -> Floor:
    """kind >= 0.27.0; for a node of Kubernetes >= N, kind >= KIND_MIN_VERSION_FOR_NODE[N].

    kubeadm 1.36 removed kubeadm.k8s.io/v1beta3, and kind writes the v1beta4 config for nodes
    >= 1.36.0 only from v0.32.0 (kind commit "start using v1beta4 in v1.36.0+"): an older kind
    passes every check, then fails at `kubeadm init`.
    """
    floor = Floor(versions.KIND_MIN_VERSION, f"the lab needs kind >= {versions.KIND_MIN_VERSION} "
                                             "(its node images ship containerd 2.x)")
    node = node_version(cfg)
    for node_min, kind_min in sorted(versions.KIND_MIN_VERSION_FOR_NODE.items(), key=lambda kv: vt(kv[0])):
        if vt(node) >= vt(node_min) and vt(kind_min) > vt(floor.version):
            minor = ".".join(node_min.split(".")[:2])
            floor = Floor(kind_min,
                          f"a Kubernetes v{node} node needs kind >= {kind_min}: kubeadm {minor} removed the "
                          f"kubeadm.k8s.io/v1beta3 config older kind writes (v1beta4 for {minor}+ nodes came in "
                          f"kind v{kind_min})",
                          f"or use an older node, e.g. K8S_VERSION=v{minor.split('.')[0]}."
                          f"{int(minor.split('.')[1]) - 1}.x")
    return floor


def docker(cfg) -> Floor:
    return Floor(versions.DOCKER_MIN_VERSION, f"the lab needs docker >= {versions.DOCKER_MIN_VERSION} "
                                              "(`docker ps --format {{.State}}`)")


def kubernetes(installs_metrics_server: bool = True) -> Floor:
    """Kubernetes >= 1.34 where the lab installs metrics-server, else >= 1.33.

    metrics-server v0.9.0 (the pinned one) supports Kubernetes 1.34+; Flux 2.9's `flux check --pre`
    wants 1.33+. An existing cluster that serves its own metrics API is held to Flux's floor only.
    """
    flux_floor = versions.K8S_MIN_VERSION_FOR_FLUX
    if installs_metrics_server and vt(versions.METRICS_SERVER_MIN_K8S) > vt(flux_floor):
        return Floor(versions.METRICS_SERVER_MIN_K8S,
                     f"metrics-server {versions.METRICS_SERVER_VERSION} supports Kubernetes "
                     f"{versions.METRICS_SERVER_MIN_K8S.rsplit('.', 1)[0]}+")
    return Floor(flux_floor, f"Flux's `flux check --pre` wants Kubernetes >= {flux_floor.rsplit('.', 1)[0]}")


def kubectl_range(server: str) -> tuple[str, str]:
    """The kubectl minors supported against a server (skew policy: one minor older or newer)."""
    major, minor = vt(server)[:2]
    return f"{major}.{minor - versions.KUBECTL_MAX_SKEW}", f"{major}.{minor + versions.KUBECTL_MAX_SKEW}"


def kubectl(cfg) -> Floor:
    """kubectl >= 1.33; against a kind cluster, also no more than one minor older than its nodes."""
    floor = Floor(versions.KUBECTL_MIN_VERSION,
                  f"kubectl is supported within {versions.KUBECTL_MAX_SKEW} minor version of the cluster, and the "
                  f"oldest cluster the lab takes is Kubernetes {kubernetes().version.rsplit('.', 1)[0]} "
                  "(Kubernetes version skew policy)")
    if cfg is not None and not cfg.existing:
        low = kubectl_range(node_version(cfg))[0] + ".0"
        if vt(low) > vt(floor.version):
            floor = Floor(low, f"kubectl is supported within {versions.KUBECTL_MAX_SKEW} minor version of the "
                               f"cluster, and the nodes run Kubernetes {node_version(cfg)} (Kubernetes version skew policy)",
                          f"or pick nodes your kubectl supports with K8S_VERSION")
    return floor


def check_kubectl_skew(client: str, server: str, where: str) -> None:
    """Refuse a kubectl more than KUBECTL_MAX_SKEW minor versions from the API server, either way."""
    low, high = kubectl_range(server)
    if not vt(low) <= vt(client)[:2] <= vt(high):
        raise LabError(f"kubectl {client} does not match {where} (Kubernetes {server})",
                       f"kubectl is supported within {versions.KUBECTL_MAX_SKEW} minor version of the API server "
                       f"(Kubernetes version skew policy)",
                       f"install kubectl {low}.x to {high}.x (https://kubernetes.io/docs/tasks/tools/), "
                       f"or set KUBECTL=/path/to/that/kubectl")


def flux(cfg=None) -> Floor:
    """Flux >= 2.9.0, for the CLI on PATH and for FLUX_VERSION, the Flux installed in the cluster.

    The lab's Kustomizations set postBuild.substituteStrategy: Always (so ${VAR:=default} applies
    without lab-vars); the field first appears in kustomize-controller v1.9.0 (Flux 2.9), and an
    older controller's CRD rejects the whole Kustomization on strict decoding.
    """
    return Floor(versions.FLUX_MIN_VERSION,
                 f"the lab's Kustomizations set postBuild.substituteStrategy, which Flux knows from "
                 f"{versions.FLUX_MIN_VERSION} (kustomize-controller v1.9.0); older Flux rejects them")


RULES = {"kind": kind, "docker": docker, "kubectl": kubectl, "flux": flux}


def for_tool(tool: str, cfg) -> Floor:
    return RULES[tool](cfg)
