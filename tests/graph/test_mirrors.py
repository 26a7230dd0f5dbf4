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

    # Teardown leaves nothing running, even said without MIRRORS (a new shell): no container at all on
    # the machine; the image data is kept in volumes (the registry's and each mirror's), and only those.
    down = lab.inv("teardown")
    assert down.returncode == 0, down.stdout + down.stderr
    assert docker(lab, "ps", "-a", "-q").stdout.split() == []
    kept = {f"kind-registry-mirror-{h.replace('.', '-')}-data" for h in UPSTREAM_HOSTS}
    assert volumes(lab) == kept | {"kind-registry-data"}
    assert "mirror caches kept" in down.stdout

    purge = lab.inv("teardown", "--purge")
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert volumes(lab) == set() and docker(lab, "ps", "-a", "-q").stdout.split() == []


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


# What kube-prometheus-stack 88.5.3 pulls with the lab's values (alertmanager is off), spelled out
# here as the chart renders it: the test's own expectation, not read from the product's pins.
STACK_IMAGES = {
    "quay.io/prometheus-operator/prometheus-operator:v0.93.1",
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
    "quay.io/prometheus/prometheus:v3.14.0-distroless",
    "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
    "quay.io/prometheus/node-exporter:v1.12.1-distroless",
    "ghcr.io/jkroepke/kube-webhook-certgen:1.8.7",
    "docker.io/grafana/grafana:13.2.0",
    "quay.io/kiwigrid/k8s-sidecar:2.10.1",
}
GRAFANA_IMAGES = {"docker.io/grafana/grafana:13.2.0", "quay.io/kiwigrid/k8s-sidecar:2.10.1"}


def offline_line(proc) -> str:
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    return next(ln for ln in text.splitlines() if "MIRRORS=offline:" in ln)


def named(line: str) -> set[str]:
    """The references the refusal names (a comma-separated list after the colon, or the one image)."""
    body = line.split("MIRRORS=offline: ", 1)[1].split(" — ")[0]
    if " is not in its mirror" in body:
        return {body.split(" is not in its mirror")[0]}
    return set(body.split(": ", 1)[1].split(", "))


def status_rows(lab, *settings: str) -> dict[str, str]:
    status = lab.doit("mirror_status", "MIRRORS=offline", *settings)
    assert status.returncode == 0, status.stdout + status.stderr
    return {ln.split()[0]: ln.split()[-1] for ln in status.stdout.splitlines()
            if ln.split() and ln.split()[-1] in ("present", "MISSING")}


def test_offline_with_empty_mirrors_refuses_naming_every_missing_image(lab):
    proc = lab.doit("setup", "MIRRORS=offline")
    assert proc.returncode != 0
    line = offline_line(proc)
    assert "mirror_fill" in line
    refs = named(line)
    # every image the lab pulls, the stack's included although no pod of it ever ran, and the chart
    assert STACK_IMAGES <= refs, STACK_IMAGES - refs
    assert CHART in refs
    assert any(r.startswith("ghcr.io/fluxcd/source-controller:") for r in refs)
    assert any(r.startswith("registry.k8s.io/metrics-server/metrics-server:") for r in refs)
    assert {"curlimages/curl:8.10.1", "nicolaka/netshoot:v0.13"} <= refs
    assert line.split("MIRRORS=offline: ")[1].startswith(f"{len(refs) - 1} images and 1 chart are not in their mirrors")
    # the same list `doit mirror_status` shows as missing
    assert {ref for ref, state in status_rows(lab).items() if state == "MISSING"} == refs
    # it refused before anything ran: nothing of the cluster was made
    assert not has_cluster(lab)


def test_mirror_fill_copies_the_stack_then_offline_setup_installs_it(lab, chart_upstream):
    fill = lab.doit("mirror_fill", "MIRRORS=offline", MIRROR_REMOTES=chart_upstream)
    assert fill.returncode == 0, fill.stdout + fill.stderr
    rows = status_rows(lab)
    assert set(rows.values()) == {"present"}
    assert STACK_IMAGES | {CHART} <= set(rows)
    assert "ghcr.io/fluxcd/source-controller:" in " ".join(rows)
    # offline, the nodes pull only from the mirrors: the stack's pods run, so its images were all there
    proc = lab.doit("setup", "MIRRORS=offline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    release = kubectl_json(lab, "-n", "monitoring", "get", "helmrelease", "kube-prometheus-stack")
    ready = {c["type"]: c for c in release["status"]["conditions"]}
    assert ready["Ready"]["status"] == "True" and ready["Ready"]["reason"] == "InstallSucceeded"
    pods = kubectl_json(lab, "-n", "monitoring", "get", "pods")["items"]
    ran = {c["image"] for p in pods for c in p["spec"]["containers"] + p["spec"].get("initContainers", [])}
    assert ran == STACK_IMAGES - {"ghcr.io/jkroepke/kube-webhook-certgen:1.8.7"}  # a hook Job's, not a pod's


def test_values_that_disable_grafana_need_no_grafana_image(lab, chart_upstream):
    release = lab.root / "flux-cd/infrastructure/monitoring/release.yaml"
    release.write_text(release.read_text().replace("    grafana:\n", "    grafana:\n      enabled: false\n", 1))
    rows = status_rows(lab)
    assert not GRAFANA_IMAGES & set(rows)
    assert STACK_IMAGES - GRAFANA_IMAGES <= set(rows)
    fill = lab.doit("mirror_fill", "MIRRORS=offline", MIRROR_REMOTES=chart_upstream)
    assert fill.returncode == 0, fill.stdout + fill.stderr
    proc = lab.doit("setup", "MIRRORS=offline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not kubectl_json(lab, "-n", "monitoring", "get", "deployments", "-l",
                            "app.kubernetes.io/name=grafana")["items"]


def test_offline_with_crds_only_needs_no_stack_image(lab):
    fill = lab.doit("mirror_fill", "MIRRORS=offline", "MONITORING=crds")
    assert fill.returncode == 0, fill.stdout + fill.stderr
    assert not STACK_IMAGES & set(status_rows(lab, "MONITORING=crds"))
    proc = lab.doit("setup", "MIRRORS=offline", "MONITORING=crds")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_offline_without_the_stack_refuses_naming_it_and_the_bootstrap_points_at_the_mirror(lab, chart_upstream):
    # the images of MONITORING=crds only: the chart and the stack's images are what is missing then
    fill = lab.doit("mirror_fill", "MIRRORS=offline", "MONITORING=crds")
    assert fill.returncode == 0, fill.stdout + fill.stderr
    proc = lab.doit("setup", "MIRRORS=offline")
    assert proc.returncode != 0
    line = offline_line(proc)
    assert named(line) == STACK_IMAGES | {CHART}
    assert line.split("MIRRORS=offline: ")[1].startswith(f"{len(STACK_IMAGES)} images and 1 chart are not in")
    assert not has_cluster(lab)
    # copied from where MIRROR_REMOTES says (the registry's own API: a chart is no image for Docker)
    fill = lab.doit("mirror_fill", "MIRRORS=offline", MIRROR_REMOTES=chart_upstream)
    assert fill.returncode == 0, fill.stdout + fill.stderr
    assert "already there" in fill.stdout and f"{len(STACK_IMAGES) + 1} copied" in fill.stdout
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


def test_existing_provider_on_the_labs_cluster_reads_the_chart_where_chart_mirrors_says(lab):
    """The lab's own kind cluster driven as CLUSTER_PROVIDER=existing (the e2e suite does this): the lab
    runs no mirror then, so the chart's source falls back to ghcr.io unless CHART_MIRRORS names where the
    cluster reads it. Naming the lab's mirror keeps infrastructure exactly as it was: nothing reconciled."""
    proc = lab.doit("setup", "MIRRORS=on")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    existing = ("CLUSTER_PROVIDER=existing", "KUBE_CONTEXT=kind-gitops-lab", f"REGISTRY=localhost:{lab.port}")

    def generations() -> dict[str, int]:
        return {kind: kubectl_json(lab, "-n", ns, "get", kind, name)["metadata"]["generation"] for kind, ns, name in (
            ("kustomization", "flux-system", "infrastructure"), ("ocirepository", "monitoring", "kube-prometheus-stack"))}

    was = generations()
    lab.world.clear_calls()
    same = lab.doit("setup", *existing, "CHART_MIRRORS=ghcr.io=http://kind-registry-mirror-ghcr-io:5000")
    assert same.returncode == 0, same.stdout + same.stderr
    source = kubectl_json(lab, "-n", "monitoring", "get", "ocirepository", "kube-prometheus-stack")
    assert source["spec"]["url"] == CHART_MIRROR_URL and source["spec"]["insecure"] is True
    assert generations() == was, "the infrastructure Kustomization or the chart's source was changed"
    assert not [c for c in lab.mutating() if c.startswith(("docker run", "docker rm", "kind "))], lab.mutating()

    # a company's proxy cache over TLS: no `insecure`, the path prefix kept
    proxy = lab.doit("setup", *existing, "CHART_MIRRORS=ghcr.io=https://harbor.example.com/ghcr/")
    assert proxy.returncode == 0, proxy.stdout + proxy.stderr
    source = kubectl_json(lab, "-n", "monitoring", "get", "ocirepository", "kube-prometheus-stack")
    assert source["spec"]["url"] == \
        "oci://harbor.example.com/ghcr/prometheus-community/charts/kube-prometheus-stack"
    assert "insecure" not in source["spec"]

    # without it, the chart comes from where flux-cd/ declares it
    plain = lab.doit("setup", *existing)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    source = kubectl_json(lab, "-n", "monitoring", "get", "ocirepository", "kube-prometheus-stack")
    assert source["spec"]["url"] == "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack"


def test_chart_mirrors_is_checked_like_mirror_remotes(lab):
    proc = lab.doit("setup", "CHART_MIRRORS=harbor.example.com")
    assert proc.returncode != 0 and "invalid CHART_MIRRORS" in proc.stderr and "Traceback" not in proc.stderr


def test_a_setting_that_changes_the_bootstrap_redoes_the_sync(built):
    """MONITORING shapes the bootstrap (the infrastructure Kustomization's path) but no reality check
    reads it: the setting itself must make sync run again."""
    proc = built.doit("setup", "MONITORING=crds")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "▶ sync:" in proc.stdout
    ks = kubectl_json(built, "-n", "flux-system", "get", "kustomization", "infrastructure")
    assert ks["spec"]["path"].endswith("infrastructure/crds"), ks["spec"]["path"]


def test_a_chart_the_cluster_cannot_fetch_is_named_with_its_reason_and_the_fix(built):
    """Flux's own failure says only that it waited; the lab says which source failed, why and what to do."""
    proc = built.doit("setup", "CHART_MIRRORS=ghcr.io=http://nowhere:5000")
    assert proc.returncode != 0
    line = proc.stderr.strip().splitlines()[0]
    assert "Traceback" not in proc.stderr
    assert "OCIRepository/monitoring/kube-prometheus-stack cannot fetch its chart from " \
           "oci://nowhere:5000/prometheus-community/charts/kube-prometheus-stack" in line, proc.stderr
    assert "no such host" in line and "CHART_MIRRORS" in line, line
