"""kind-three-node.yaml: roles, worker label, taint, registry config_path, pinned image."""

from __future__ import annotations

import pytest
import yaml

from tasks.validation import policies as v
from tasks import versions
from tasks.core import names


def test_kind_config_is_valid(repo_root):
    assert v.kind_problems(repo_root) == []


def test_kind_config_shape(repo_root):
    config = yaml.safe_load((repo_root / "kind-three-node.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [n["role"] for n in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    for node in config["nodes"]:
        assert node.get("image") in (None, f"{versions.KIND_NODE_IMAGE_REPO}:{versions.K8S_VERSION}")
        if node["role"] == "worker":
            assert node["labels"] == {names.WORKER_LABEL: names.WORKER_VALUE}
        else:
            assert "labels" not in node and "kubeadmConfigPatches" not in node  # taint kept
    patches = "\n".join(config["containerdConfigPatches"])
    assert 'config_path = "/etc/containerd/certs.d"' in patches
    assert "mirrors" not in patches


def _break(tree, change):
    path = tree / "kind-three-node.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))
    return v.kind_problems(tree)


@pytest.mark.parametrize(
    ("change", "tag"),
    [
        (lambda c: c["nodes"].pop(), "[kind-roles]"),
        (lambda c: c["nodes"][1].pop("labels"), "[kind-labels]"),
        (lambda c: c["nodes"][2].update(labels={"node-role.kubernetes.io/worker": ""}), "[kind-labels]"),
        (lambda c: c["nodes"][0].update(labels={"gitops-lab/tier": "worker"}), "[kind-labels]"),
        (lambda c: c["nodes"][0].update(kubeadmConfigPatches=["kind: InitConfiguration\nnodeRegistration:\n  taints: []\n"]), "[kind-taint]"),
        (lambda c: c["nodes"][0].update(image="kindest/node:v1.29.2"), "[kind-image]"),
        (lambda c: c.update(containerdConfigPatches=['[plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5001"]\n  endpoint = ["http://kind-registry:5000"]']), "[kind-registry]"),
    ],
    ids=["roles", "worker-label", "node-role-label", "control-plane-labelled-worker", "taint-removed", "image-not-pinned", "registry-mirrors"],
)
def test_broken_kind_config_is_reported(tree, change, tag):
    problems = _break(tree, change)
    assert any(tag in p for p in problems), problems


def test_pinned_image_is_accepted(tree):
    pinned = f"{versions.KIND_NODE_IMAGE_REPO}:{versions.K8S_VERSION}"
    assert _break(tree, lambda c: [n.update(image=pinned) for n in c["nodes"]]) == []
