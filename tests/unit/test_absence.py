"""Present or absent is decided from exit codes and listings, never from an error message.

Run against the strict fakes playing both Docker CLI releases the lab supports: 28 prints
`Error: No such object: X` for a missing object, 29 prints `error: no such object: X`.
"""
from __future__ import annotations

import os

import pytest
from plumbum import local

from tasks.core import config, containers, kube, tools
from tasks.day2 import debug
from tasks.steps import cluster, image, registry
from tasks.core.errors import LabError
from tests.fakes import BIN_DIR, FakeWorld

DOCKER_RELEASES = ("28.2.2", "29.0.0")


@pytest.fixture
def world(tmp_path):
    world = FakeWorld(tmp_path)
    # plumbum runs commands with its own copy of the environment: the fakes go there, first on PATH
    with local.env(**world.env({"PATH": local.env.get("PATH", "")})):
        yield world
    world.kill_background()


def lab_tools(**settings) -> tools.Tools:
    fakes = {tool.upper(): os.path.join(BIN_DIR, tool) for tool in ("docker", "kind", "kubectl", "flux")}
    return tools.Tools(config.load({"REGISTRY_PORT": "5999", **fakes, **settings}, {}), echo=False)


@pytest.mark.parametrize("release", DOCKER_RELEASES)
def test_registry_absent_stopped_running_on_each_docker_release(world, release):
    local.env["FAKE_DOCKER_VERSION"] = release
    t = lab_tools()
    assert registry.status(t) == "absent"
    assert world.run("docker", "run", "-d", "--name", "kind-registry", "busybox:1.36").returncode == 0
    t.forget()  # changed behind this run's back: what the next run reads
    assert registry.status(t) == "running"
    world.stop_container_by_hand("kind-registry")
    t.forget()
    assert registry.status(t) == "stopped"
    assert cluster.identity(t) is None  # no control-plane container
    assert not cluster._running(t, "gitops-lab-control-plane")


def test_a_name_is_matched_whole_not_as_a_prefix_or_pattern(world):
    t = lab_tools()
    assert world.run("docker", "run", "-d", "--name", "kind-registry-mirror", "busybox:1.36").returncode == 0
    assert world.run("docker", "run", "-d", "--name", "kindxregistry", "busybox:1.36").returncode == 0
    assert containers.find(t, "kind-registry") is None
    assert containers.find(t, "kind.registry") is None  # '.' is literal
    found = containers.find(t, "kind-registry-mirror")
    assert found and found.running and len(found.id) == 64


def test_docker_down_is_a_failure_not_an_absence(world):
    t = lab_tools()
    world.docker_down(True)
    with pytest.raises(LabError) as err:
        registry.status(t)
    assert "is Docker running?" in err.value.line()
    with pytest.raises(LabError):
        image.built_locally(t, "localhost:5999/lab-app:abc")


def test_an_image_is_built_only_with_its_own_tag(world, tmp_path):
    t = lab_tools()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    assert world.run("docker", "build", "-t", "localhost:5999/lab-app:one", str(ctx)).returncode == 0
    assert image.built_locally(t, "localhost:5999/lab-app:one")
    assert not image.built_locally(t, "localhost:5999/lab-app:two")


def test_kubectl_missing_object_and_missing_type_without_reading_errors(world, tmp_path):
    config_file = tmp_path / "kind.yaml"
    config_file.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    assert world.run("kind", "create", "cluster", "--name", "gitops-lab", "--config", str(config_file)).returncode == 0
    t = lab_tools()
    assert kube.get_json(t, "deployment", "app", "-n", "dev", missing_ok=True) is None
    assert kube.get_json(t, "kustomizations.kustomize.toolkit.fluxcd.io", "-A", missing_ok=True) is None
    assert kube.items(kube.get_json(t, "pods", "-n", "dev", missing_ok=True)) == []
    assert kube.get_json(t, "namespace", "kube-system", missing_ok=True)["metadata"]["name"] == "kube-system"
    world.delete_cluster_by_hand("gitops-lab")
    with pytest.raises(LabError) as err:  # an unreachable cluster is not "missing"
        kube.get_json(t, "deployment", "app", "-n", "dev", missing_ok=True)
    assert "is the cluster up?" in err.value.line()


@pytest.mark.parametrize("rc, kubectl_failed", [(1, True), (126, True), (0, False), (7, False), (28, False),
                                                (22, False)])
def test_kubectl_exec_failure_is_told_by_exit_code(rc, kubectl_failed):
    # whatever the wording: kubectl's own failures exit 1, curl's codes pass through
    res = tools.Result(rc, "", "some wording no release has used yet")
    assert debug.exec_failed(res) is kubectl_failed
