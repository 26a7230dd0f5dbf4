"""A run asks each question once and shares the answer between its steps; a change of its own
(any mutation) makes it ask again, and nothing is kept from one run to the next (issue 15)."""
from __future__ import annotations

import os

import pytest
from plumbum import local

from tasks.core import config, containers, flux_status, kube, tools
from tasks.steps import cluster, registry
from tests.fakes import BIN_DIR, FakeWorld


@pytest.fixture
def world(tmp_path):
    world = FakeWorld(tmp_path)
    with local.env(**world.env({"PATH": local.env.get("PATH", "")})):
        yield world
    world.kill_background()


def lab_tools(**settings) -> tools.Tools:
    fakes = {tool.upper(): os.path.join(BIN_DIR, tool) for tool in ("docker", "kind", "kubectl", "flux")}
    return tools.Tools(config.load({"REGISTRY_PORT": "5999", **fakes, **settings}, {}), echo=False)


def asked(world, *words: str) -> int:
    return sum(1 for c in world.calls() if c["argv"][:len(words)] == list(words))


def test_one_container_listing_serves_the_registry_the_nodes_and_the_identity(world, tmp_path):
    config_file = tmp_path / "kind.yaml"
    config_file.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
                           "- role: worker\n")
    assert world.run("kind", "create", "cluster", "--name", "gitops-lab", "--config", str(config_file)).returncode == 0
    t = lab_tools()
    assert world.run("docker", "run", "-d", "--name", "kind-registry", "-p", "127.0.0.1:5999:5000",
                     "registry:3").returncode == 0
    world.clear_calls()
    assert registry.status(t) == "running" and registry.published_port(t) == 5999
    assert cluster.exists(t)
    assert cluster.nodes(t) == ["gitops-lab-control-plane", "gitops-lab-worker"]
    assert cluster.identity(t) == containers.find(t, "gitops-lab-control-plane").id
    assert [c["tool"] + " " + c["argv"][0] for c in world.calls()] == ["docker ps"]
    # A change of the run's own forgets the listing: the next question is asked again.
    t.mutate("docker", "stop", "kind-registry")
    assert registry.status(t) == "stopped"
    assert registry.published_port(t) == 5999  # a stopped container's bindings: from inspect
    assert asked(world, "ps") == 2 and asked(world, "container", "inspect") == 1
    # A kubectl change cannot touch containers: the listing stays.
    t.mutate("kubectl", "--context", "kind-gitops-lab", "create", "namespace", "dev")
    assert cluster.exists(t) and asked(world, "ps") == 2
    # Nor can an image command; it changes what the image store holds, which is asked again.
    assert not containers.image_present(t, "busybox:1.36") and not containers.image_present(t, "busybox:1.36")
    t.mutate("docker", "pull", "busybox:1.36")
    assert containers.image_present(t, "busybox:1.36")
    assert asked(world, "image", "ls") == 2 and cluster.exists(t) and asked(world, "ps") == 2
    # Another run (a new Tools) never reuses an answer: the user may have changed things by hand.
    world.delete_cluster_by_hand("gitops-lab")
    assert not cluster.exists(lab_tools()) and cluster.exists(t)


def test_published_port_is_read_from_the_listing_as_docker_prints_it():
    c = containers.Container("id", "r", "running", ("bridge",),
                             ("0.0.0.0:5002->5001/tcp", "[::]:5003->5000/tcp", "127.0.0.1:5001->5000/udp"))
    assert c.published(5000) == 5003 and c.published(5001) == 5002 and c.published(5000, "udp") == 5001
    assert c.published(8080) is None
    assert containers.Container("id", "r", "running", (), ("5000/tcp",)).published(5000) is None  # exposed only


def test_the_cluster_is_read_once_and_a_type_without_its_crd_has_no_objects(world, tmp_path):
    config_file = tmp_path / "kind.yaml"
    config_file.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    assert world.run("kind", "create", "cluster", "--name", "gitops-lab", "--config", str(config_file)).returncode == 0
    t = lab_tools()
    world.clear_calls()
    # No Flux: the one call that reads everything fails; each custom type is asked as its CRD (never
    # from the error text), and the built-in types are read in one call.
    assert flux_status.objects(t) == []
    nodes = kube.setup_read(t, "nodes")
    assert [n["metadata"]["name"] for n in nodes] == ["gitops-lab-control-plane"]
    assert kube.objects(kube.setup_read(t, "pods"), namespace="kube-system")
    gets = [c["argv"] for c in world.calls() if "get" in c["argv"]]
    crd_checks = [a for a in gets if "customresourcedefinitions.apiextensions.k8s.io" in a]
    assert len(crd_checks) == len(flux_status.KINDS)
    # beside the first read, once: the per-namespace read a setup run needs (kube.SETUP_NAMESPACED_READS)
    beside = [a for a in gets if a[a.index("get") + 1:a.index("get") + 4] == ["configmaps", "-n", "flux-system"]]
    assert len(beside) == 1
    assert len(gets) == 1 + len(crd_checks) + 1 + 1  # the flux kinds, their CRDs, the built-in ones at once
    # Nothing changed yet: the first read of a run brings what the run reads later in the same call.
    t2 = lab_tools()
    world.clear_calls()
    kube.setup_read(t2, "apiservices.apiregistration.k8s.io")
    for resource in ("nodes", "deployments.apps", "pods"):
        kube.setup_read(t2, resource)
    listed = [c["argv"] for c in world.calls() if "get" in c["argv"] and "-A" in c["argv"]]
    assert len(listed) == 2  # all at once, then (the Flux CRDs are absent) the built-in ones at once


@pytest.mark.parametrize("status, generation, done", [
    ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, 2, True),
    ({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, 2, False),
    ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}, 2, False),
    ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}, 2, False),
    ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}, 2, False),
    ({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
      "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}, 2, False),
])
def test_rollout_complete_as_kubectl_rollout_status_decides(status, generation, done):
    dep = {"metadata": {"generation": generation}, "spec": {"replicas": 2}, "status": status}
    assert kube.rollout_complete(dep) is done


def test_an_existing_cluster_is_never_listed_whole_for_its_pods_or_deployments(world, tmp_path):
    """A user's cluster may hold thousands of pods: asked per namespace (once per run), not across all."""
    config_file = tmp_path / "kind.yaml"
    config_file.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    assert world.run("kind", "create", "cluster", "--name", "team", "--config", str(config_file)).returncode == 0
    t = lab_tools(CLUSTER_PROVIDER="existing", KUBE_CONTEXT="kind-team", REGISTRY="localhost:5999/team")
    world.clear_calls()
    assert kube.setup_read(t, "nodes")
    assert kube.namespaced(t, "pods", "kube-system", labels={"k8s-app": "kube-dns"})
    assert kube.namespaced(t, "pods", "kube-system", labels={"k8s-app": "kube-dns"})
    assert kube.namespaced(t, "deployments.apps", "flux-system") == []
    gets = [" ".join(c["argv"]) for c in world.calls() if "get" in c["argv"]]
    assert not [g for g in gets if "-A" in g.split() and ("pods" in g or "deployments" in g)], gets
    assert sum("get pods -n kube-system -l k8s-app=kube-dns" in g for g in gets) == 1, gets
