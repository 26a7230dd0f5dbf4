"""MIRRORS: pull-through caches per upstream, wired into every node's containerd,
kept across teardown, removed with PURGE=1; offline mode refuses naming what is missing."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tasks import versions
from tasks.steps import mirrors
from tests.fakes.fakelib import registry_store

CHART = f"ghcr.io/prometheus-community/charts/kube-prometheus-stack:{versions.KUBE_PROMETHEUS_STACK_CHART}"
CHART_MIRROR_URL = "oci://kind-registry-mirror-ghcr-io:5000/prometheus-community/charts/kube-prometheus-stack"

UPSTREAM_HOSTS = ("docker.io", "ghcr.io", "registry.k8s.io", "quay.io")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def lab(lab):
    """The mirrors sit at REGISTRY_PORT+1..+4: give the lab a port with four free ones above it."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base < 65530 and all(_free(base + i) for i in range(1, 5)):
            lab.port = base
            return lab
    pytest.fail("no block of five free ports")


@pytest.fixture
def chart_upstream(tmp_path):
    """A registry holding the pinned kube-prometheus-stack chart as `helm push` stores it, standing in
    for ghcr.io (MIRROR_REMOTES points the mirrors at it): value for MIRROR_REMOTES."""
    from tests.fakes.fakelib import registry_server
    root = tmp_path / "upstream"
    _, path, tag = mirrors.split_ref(CHART)
    registry_store.put_chart(str(root), path, tag)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, registry_server.__file__, "--port", str(port), "--root", str(root)])
    try:
        import requests
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except requests.RequestException:
                import time
                time.sleep(0.05)
        yield f"ghcr.io=http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def kubectl_json(lab, *args: str) -> dict:
    res = subprocess.run(["kubectl", "--context", "kind-gitops-lab", *args, "-o", "json"], env=lab.env(),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def docker(lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=lab.env(), capture_output=True, text=True, timeout=60)


def mirror_rows(lab) -> dict[str, dict]:
    res = docker(lab, "ps", "-a", "--filter", "label=gitops-lab.mirror-for=kind-registry", "--format", "{{json .}}")
    assert res.returncode == 0, res.stderr
    return {row["Names"]: row for row in map(json.loads, filter(None, res.stdout.splitlines()))}


def volumes(lab) -> set[str]:
    return set(docker(lab, "volume", "ls", "-q").stdout.split())


def test_mirrors_on_wires_every_node_and_survive_teardown(lab):
    proc = lab.doit("setup", "MIRRORS=on")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = mirror_rows(lab)
    assert sorted(rows) == sorted(f"kind-registry-mirror-{h.replace('.', '-')}" for h in UPSTREAM_HOSTS)
    assert all(r["State"] == "running" and "gitops-lab.mirror-mode=on" in r["Labels"] for r in rows.values())
    # every node: hosts.toml per upstream, mirror first, upstream as the fallback server
    nodes = subprocess.run(["kind", "get", "nodes", "--name", "gitops-lab"], env=lab.env(),
                           capture_output=True, text=True).stdout.split()
    assert len(nodes) == 3
    for node in nodes:
        for host in UPSTREAM_HOSTS:
            res = docker(lab, "exec", node, "cat", f"/etc/containerd/certs.d/{host}/hosts.toml")
            assert res.returncode == 0, res.stderr
            assert f'[host."http://kind-registry-mirror-{host.replace(".", "-")}:5000"]' in res.stdout
            assert 'server = "https://' in res.stdout
    # the nodes reach the mirrors by name: they are on kind's network
    assert all("kind" in r["Networks"].split(",") for r in mirror_rows(lab).values())
    # the chart is no image: Flux's source-controller reads it, from the ghcr.io mirror
    source = kubectl_json(lab, "-n", "monitoring", "get", "ocirepository", "kube-prometheus-stack")
    assert source["spec"]["url"] == CHART_MIRROR_URL and source["spec"]["insecure"] is True
    ready = {c["type"]: c["status"] for c in source["status"]["conditions"]}
    assert ready["Ready"] == "True"
    release = kubectl_json(lab, "-n", "monitoring", "get", "helmrelease", "kube-prometheus-stack")
    assert {c["type"]: c["status"] for c in release["status"]["conditions"]}["Ready"] == "True"

    # a no-op run changes nothing
    lab.world.clear_calls()
    again = lab.doit("setup", "MIRRORS=on")
    assert again.returncode == 0, again.stdout + again.stderr
    assert lab.mutating() == []
    # ... and reads the containers once: the mirrors come from the same listing as the registry and the
    # nodes, so the no-op's call budget holds with mirrors too
    listings = [c for c in lab.calls() if c.startswith("docker ps")]
    assert len(listings) == 1, listings
    assert len(lab.calls()) <= 10, lab.calls()

    down = lab.inv("teardown", MIRRORS="on")
    assert down.returncode == 0, down.stdout + down.stderr
    assert mirror_rows(lab) == {}
    kept = {f"kind-registry-mirror-{h.replace('.', '-')}-data" for h in UPSTREAM_HOSTS}
    assert kept <= volumes(lab)
    assert "mirror caches kept" in down.stdout

    purge = lab.inv("teardown", "--purge")
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert not kept & volumes(lab)


def test_switching_mode_recreates_the_containers_and_rewires_the_nodes(lab):
    assert lab.doit("setup", "MIRRORS=on").returncode == 0
    filled = lab.doit("mirror_fill", "MIRRORS=offline")
    assert filled.returncode == 0, filled.stdout + filled.stderr
    proc = lab.doit("setup", "MIRRORS=offline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all("gitops-lab.mirror-mode=offline" in r["Labels"] for r in mirror_rows(lab).values())
    node = "gitops-lab-worker"
    toml = docker(lab, "exec", node, "cat", "/etc/containerd/certs.d/ghcr.io/hosts.toml").stdout
    # offline: the mirror is the server too, nothing reaches out
    assert 'server = "http://kind-registry-mirror-ghcr-io:5000"' in toml


def test_offline_with_empty_mirrors_refuses_naming_the_image(lab):
    proc = lab.doit("setup", "MIRRORS=offline")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    line = next(ln for ln in text.splitlines() if "MIRRORS=offline:" in ln)
    assert "is not in its mirror" in line and "mirror_fill" in text
    # it names a real image the lab needs
    assert any(img in line for img in ("ghcr.io/fluxcd/", "registry.k8s.io/metrics-server", "curlimages/curl:",
                                       "nicolaka/netshoot:"))
    # nothing of the cluster was made
    assert not has_cluster(lab)


def test_mirror_fill_then_status_then_offline_setup(lab, chart_upstream):
    fill = lab.doit("mirror_fill", "MIRRORS=offline", MIRROR_REMOTES=chart_upstream)
    assert fill.returncode == 0, fill.stdout + fill.stderr
    status = lab.doit("mirror_status", "MIRRORS=offline")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "MISSING" not in status.stdout
    assert "ghcr.io/fluxcd/source-controller" in status.stdout
    assert CHART in status.stdout
    # kube-prometheus-stack's images are known only once it ran (online): offline, the CRDs only
    proc = lab.doit("setup", "MIRRORS=offline", "MONITORING=crds")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_offline_without_the_chart_refuses_naming_it_and_the_bootstrap_points_at_the_mirror(lab, chart_upstream):
    # the images only (MONITORING=crds needs no chart): the chart is what is missing then
    fill = lab.doit("mirror_fill", "MIRRORS=offline", "MONITORING=crds")
    assert fill.returncode == 0, fill.stdout + fill.stderr
    proc = lab.doit("setup", "MIRRORS=offline")
    assert proc.returncode != 0
    line = next(ln for ln in (proc.stdout + proc.stderr).splitlines() if "MIRRORS=offline:" in ln)
    assert CHART in line and "is not in its mirror" in line
    assert not has_cluster(lab)
    # copied from where MIRROR_REMOTES says (the registry's own API: a chart is no image for Docker)
    fill = lab.doit("mirror_fill", "MIRRORS=offline", MIRROR_REMOTES=chart_upstream)
    assert fill.returncode == 0, fill.stdout + fill.stderr
    assert "already there" in fill.stdout and "1 copied" in fill.stdout
    status = lab.doit("mirror_status", "MIRRORS=offline")
    row = next(ln for ln in status.stdout.splitlines() if CHART in ln)
    assert "present" in row and "kind-registry-mirror-ghcr-io" in row


def test_mirrors_off_makes_no_mirror_calls(built):
    assert not any("mirror" in c for c in built.mutating())
    assert mirror_rows(built) == {}


def has_cluster(lab) -> bool:
    res = subprocess.run(["kind", "get", "clusters"], env=lab.env(), capture_output=True, text=True)
    return "gitops-lab" in res.stdout.split()


def test_split_ref_normalises_like_docker():
    assert mirrors.split_ref("registry:3") == ("docker.io", "library/registry", "3")
    assert mirrors.split_ref("nicolaka/netshoot:v0.13") == ("docker.io", "nicolaka/netshoot", "v0.13")
    assert mirrors.split_ref("ghcr.io/fluxcd/source-controller:v1.9.4") == \
        ("ghcr.io", "fluxcd/source-controller", "v1.9.4")
    assert mirrors.split_ref("registry.k8s.io/metrics-server/metrics-server:v0.9.0@sha256:ab") == \
        ("registry.k8s.io", "metrics-server/metrics-server", "sha256:ab")
    assert mirrors.split_ref("localhost:5001/lab-app:abc") == ("localhost:5001", "lab-app", "abc")
    assert mirrors.upstream_of("localhost:5001/lab-app:abc") is None
