"""The lab against both ends of every tool version it supports.

The fakes play the release named by FAKE_DOCKER_VERSION, FAKE_KIND_VERSION and FAKE_FLUX_VERSION,
with each release's observable differences (tests/fakes/README.md, "Versions"). The paths run
here are the ones a release difference broke before: a cold setup (preflight asks whether the
registry exists), an immediate re-run (every "up to date" check), and teardown twice (the second
finds nothing, which Docker CLI 29 words differently from 28).
"""
from __future__ import annotations

import pytest

from tasks import versions
from tests.graph.conftest import has

# oldest: the minimum the lab accepts for the default node image; newest: what tasks/versions.py pins.
# FLUX_VERSION is the lab's own setting: the Flux installed in the cluster.
# The oldest end also names the node image by its tag alone, as a locally built one is named.
ENDS = {
    "oldest": {"FAKE_DOCKER_VERSION": "28.2.2", "FAKE_KIND_VERSION": "0.32.0",
               "FAKE_FLUX_VERSION": "2.9.0", "FLUX_VERSION": "2.9.0", "KIND_NODE_IMAGE": "kindest/node:v1.36.1"},
    "newest": {"FAKE_DOCKER_VERSION": "29.0.0", "FAKE_KIND_VERSION": versions.KIND_VERSION,
               "FAKE_FLUX_VERSION": versions.FLUX_VERSION, "FLUX_VERSION": versions.FLUX_VERSION},
}


@pytest.mark.parametrize("end", sorted(ENDS))
def test_setup_rerun_and_teardown_at_each_end_of_the_supported_versions(lab, end):
    env = ENDS[end]
    proc = lab.doit("setup", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert has(lab.mutating(), "docker run") and has(lab.mutating(), "kind create cluster")
    image = env.get("KIND_NODE_IMAGE", f"kindest/node:{versions.K8S_VERSION}@{versions.KIND_NODE_IMAGE_DIGEST}")
    assert has(lab.mutating(), f"kind create cluster --name gitops-lab --image {image} ")

    lab.world.clear_calls()
    proc = lab.doit("setup", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.mutating() == []

    proc = lab.inv("teardown", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lab.world.clear_calls()
    proc = lab.inv("teardown", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.mutating() == []
    assert "nothing to delete" in proc.stdout and "nothing to remove" in proc.stdout


def test_a_kind_too_old_for_the_node_is_refused_before_anything_changes(lab):
    # kind 0.31 writes kubeadm.k8s.io/v1beta3, which the default node's kubeadm (1.36) removed:
    # without the node-aware floor, preflight passed and `kind create cluster` failed at kubeadm init.
    proc = lab.doit("setup", FAKE_KIND_VERSION="0.31.0")
    assert proc.returncode != 0
    assert "kind 0.31.0 is too old" in proc.stderr and "v1beta3" in proc.stderr and ">= 0.32.0" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sum("kind 0.31.0 is too old" in line for line in proc.stderr.splitlines()) == 1  # one line
    assert lab.mutating() == []
