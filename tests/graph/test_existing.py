"""CLUSTER_PROVIDER=existing and a remote REGISTRY, against the fakes: check, never create or delete;
secrets never echoed."""
from __future__ import annotations

import pytest

from tests.graph.conftest import free_port, has

CREATE_OR_DELETE = ("kind create", "kind delete", "docker run", "docker rm", "docker start", "docker stop",
                    "docker volume rm")


@pytest.fixture
def existing(lab):
    """A cluster the user made themselves, and a registry they run (on the host, port reg_port)."""
    proc = lab.world.run("kind", "create", "cluster", "--name", "team", "--config",
                         str(lab.root / "kind-three-node.yaml"), env=lab.env())
    assert proc.returncode == 0, proc.stderr
    lab.reg_port = free_port()
    proc = lab.world.run("docker", "run", "-d", "-p", f"127.0.0.1:{lab.reg_port}:5000", "--name", "team-registry",
                         "registry:3", env=lab.env())
    assert proc.returncode == 0, proc.stderr
    lab.world.clear_calls()
    lab.settings = ["CLUSTER_PROVIDER=existing", "KUBE_CONTEXT=kind-team", f"REGISTRY=localhost:{lab.reg_port}/team"]
    return lab


def test_existing_cluster_is_checked_never_created_or_deleted(existing):
    proc = existing.doit("app_push", "cluster", "flux", *existing.settings)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = existing.mutating()
    assert not has(calls, *CREATE_OR_DELETE), calls
    assert has(calls, f"docker push localhost:{existing.reg_port}/team/lab-app:")
    assert has(calls, "flux install")
    assert "context kind-team: Kubernetes v1.36.1, 2 worker node(s)" in proc.stdout


def test_teardown_refuses_to_delete_what_it_did_not_create(existing):
    proc = existing.doit("teardown_all", *existing.settings)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not has(existing.mutating(), *CREATE_OR_DELETE)
    assert "did not create it" in proc.stdout
    proc = existing.doit("delete_cluster", *existing.settings)
    assert proc.returncode != 0 and "will not delete it" in proc.stderr
    assert existing.world.run("kind", "get", "clusters", env=existing.env()).stdout.split() == ["team"]


def test_missing_worker_label_is_one_clear_line(existing):
    for node in ("team-worker", "team-worker2"):
        existing.world.run("kubectl", "--context", "kind-team", "label", "node", node, "gitops-lab/tier-",
                           env=existing.env())
    proc = existing.doit("cluster", *existing.settings)
    assert proc.returncode != 0
    assert "label node NODE gitops-lab/tier=worker" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_context_is_one_clear_line(existing):
    settings = [s if not s.startswith("KUBE_CONTEXT") else "KUBE_CONTEXT=nope" for s in existing.settings]
    proc = existing.doit("cluster", *settings)
    assert proc.returncode != 0 and "kubectl context nope does not exist" in proc.stderr


def test_secrets_are_never_echoed(existing):
    secret = "s3cr3t-token-value"
    proc = existing.doit("sync", *existing.settings, "REGISTRY_USERNAME=robot", REGISTRY_PASSWORD=secret)
    out = proc.stdout + proc.stderr
    assert secret not in out
    assert "flux push artifact" in out and "***" in out
    config = existing.doit("config", REGISTRY_PASSWORD=secret, REGISTRY_USERNAME="robot")
    assert secret not in config.stdout and "***" in config.stdout
    # the real CLI did receive the credentials (the fake logs raw argv)
    assert any(secret in " ".join(c["argv"]) for c in existing.world.calls("flux"))


@pytest.mark.parametrize("value", ["https://ghcr.io/me", "ghcr.io/me:v1", "not a registry", "ghcr.io/Me"])
def test_remote_registry_is_validated_before_use(lab, value):
    proc = lab.doit("setup", "CLUSTER_PROVIDER=existing", "KUBE_CONTEXT=x", f"REGISTRY={value}")
    assert proc.returncode == 2 and "invalid REGISTRY" in proc.stderr
    assert lab.calls() == []


def test_existing_needs_context_and_registry(lab):
    proc = lab.doit("setup", "CLUSTER_PROVIDER=existing")
    assert proc.returncode == 2 and "needs KUBE_CONTEXT" in proc.stderr
    proc = lab.doit("setup", "CLUSTER_PROVIDER=existing", "KUBE_CONTEXT=x")
    assert proc.returncode == 2 and "needs REGISTRY" in proc.stderr
    assert lab.calls() == []


def test_kubectl_outside_the_clusters_skew_is_one_clear_line(existing):
    # kubectl is supported within one minor of the API server; the cluster runs 1.36
    proc = existing.doit("cluster", *existing.settings, FAKE_KUBECTL_VERSION="1.34.2")
    assert proc.returncode != 0
    assert "kubectl 1.34.2 does not match cluster kind-team (Kubernetes 1.36.1)" in proc.stderr
    assert "skew" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert not has(existing.mutating(), *CREATE_OR_DELETE)


def test_a_cluster_below_metrics_servers_floor_is_refused_saying_why(existing):
    proc = existing.world.run("kind", "create", "cluster", "--name", "old", "--image", "kindest/node:v1.33.4",
                              env=existing.env())
    assert proc.returncode == 0, proc.stderr
    settings = [s if not s.startswith("KUBE_CONTEXT") else "KUBE_CONTEXT=kind-old" for s in existing.settings]
    proc = existing.doit("cluster", *settings, FAKE_KUBECTL_VERSION="1.34.0")
    assert proc.returncode != 0
    assert "runs Kubernetes v1.33.4, the lab needs >= 1.34.0" in proc.stderr
    assert "metrics-server v0.9.0 supports Kubernetes 1.34+" in proc.stderr


def test_metrics_server_on_a_kind_cluster_of_the_users_gets_kinds_kubelet_flag(existing):
    """kind's (and Docker Desktop's) kubelet certificates carry no IP SANs: decided from the nodes."""
    proc = existing.doit("metrics_server", *existing.settings)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    applied = [c for c in existing.mutating() if c.startswith("kubectl") and " apply -k " in c]
    assert applied and all(c.rstrip("/").endswith("hack/metrics-server") for c in applied), applied
    assert "kind nodes: metrics-server with --kubelet-insecure-tls" in proc.stdout


def test_a_localhost_registry_without_its_in_cluster_name_is_one_clear_line(existing):
    proc = existing.doit("sync", *existing.settings)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    assert "local-registry-hosting" in text and "inside a pod, localhost is the pod itself" in text


def _docker_rows(lab) -> tuple[dict[str, str], set[str]]:
    """Every container (name → state) and every volume on the machine, as `docker` lists them."""
    ps = lab.world.run("docker", "ps", "-a", "--format", "{{.Names}} {{.State}}", env=lab.env())
    vols = lab.world.run("docker", "volume", "ls", "-q", env=lab.env())
    assert ps.returncode == 0 and vols.returncode == 0, ps.stderr + vols.stderr
    return dict(line.split() for line in ps.stdout.splitlines() if line.strip()), set(vols.stdout.split())


def test_inv_teardown_on_an_existing_cluster_deletes_nothing_of_the_users(existing):
    """Issue 24 item 5: the user's cluster, their registry, and the pull-through caches another lab of
    theirs runs on this machine (containers labelled for REGISTRY_NAME, with their volumes) stay exactly
    as they were — with PURGE=1 too."""
    for host in ("docker-io", "ghcr-io"):
        proc = existing.world.run("docker", "run", "-d", "--restart=always", "--name", f"kind-registry-mirror-{host}",
                                  "--label", "gitops-lab.mirror-for=kind-registry",
                                  "--label", "gitops-lab.mirror-mode=on",
                                  "-v", f"kind-registry-mirror-{host}-data:/var/lib/registry", "registry:3",
                                  env=existing.env())
        assert proc.returncode == 0, proc.stderr
    before = _docker_rows(existing)
    assert {"team-control-plane", "team-registry", "kind-registry-mirror-docker-io"} <= set(before[0])
    assert "kind-registry-mirror-ghcr-io-data" in before[1]
    existing.world.clear_calls()
    env = dict(s.split("=", 1) for s in existing.settings)
    for args in ((), ("--purge",)):
        proc = existing.inv("teardown", *args, **env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "did not create it" in proc.stdout
        assert _docker_rows(existing) == before, args
        assert not has(existing.mutating(), *CREATE_OR_DELETE), existing.mutating()
    assert existing.world.run("kind", "get", "clusters", env=existing.env()).stdout.split() == ["team"]
