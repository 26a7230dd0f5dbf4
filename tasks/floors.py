"""Version floors: one rule per floor, with its reason, enforced through this module only.

The numbers are pinned in tasks/versions.py; the rules that use them, and why each holds, are here.
Every check that refuses a version (preflight's tool checks, `doit check_versions`) asks `for_tool`.

| floor | rule | why |
|---|---|---|
| kind | >= 0.27.0, and >= 0.32.0 for a node of Kubernetes >= 1.36 | node images with containerd 2.x; kubeadm 1.36 removed kubeadm.k8s.io/v1beta3 |
| docker | >= 20.10.0 | `docker ps --format {{.State}}` decides a container's state |
| Flux (CLI and FLUX_VERSION) | >= 2.9.0 | postBuild.substituteStrategy: kustomize-controller v1.9.0 (Flux 2.9) |
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tasks import versions


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


def kubectl(cfg) -> Floor:
    return Floor(versions.KUBECTL_MIN_VERSION, f"the lab needs kubectl >= {versions.KUBECTL_MIN_VERSION}")


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
