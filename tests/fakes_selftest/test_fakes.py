"""Self-tests of the docker/kind/kubectl/flux fakes: strictness, error texts,
state, registry HTTP API, port-forward, NetworkPolicy, Flux controller tick."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fakes import FakeWorld  # noqa: E402
from fakes.fakelib.common import pid_alive  # noqa: E402

KIND_CFG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
nodes:
- role: control-plane
- role: worker
  labels: {gitops-lab/tier: worker}
- role: worker
  labels: {gitops-lab/tier: worker}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture
def world(tmp_path):
    w = FakeWorld(tmp_path, repo_root=tmp_path / "norepo")
    yield w
    w.kill_background()


def run(w, *argv, input=None, env=None):
    return w.run(*argv, input=input, env=env)


def start_registry(w, port):
    r = run(w, "docker", "run", "-d", "--restart=always", "-p", "127.0.0.1:%d:5000" % port, "--network", "bridge",
            "--name", "kind-registry", "-v", "kind-registry-data:/var/lib/registry", "registry:3")
    assert r.returncode == 0, r.stderr
    return r


def make_cluster(w, tmp_path, name="gitops-lab"):
    cfg = tmp_path / "kind.yaml"
    cfg.write_text(KIND_CFG)
    r = run(w, "kind", "create", "cluster", "--name", name, "--image", "kindest/node:v1.36.1", "--config", str(cfg),
            "--wait", "5m")
    assert r.returncode == 0, r.stderr
    return r


# ---------------------------------------------------------------- mechanics

def test_state_dir_required(world):
    env = world.env()
    del env["FAKE_STATE_DIR"]
    for tool in ("docker", "kind", "kubectl", "flux"):
        r = subprocess.run([tool, "version"], env=env, capture_output=True, text=True)
        assert r.returncode == 2 and "fake: FAKE_STATE_DIR not set" in r.stderr


def test_unknown_flags_and_commands_rejected(world):
    r = run(world, "docker", "run", "--bogus", "x")
    assert r.returncode == 125 and "unknown flag: --bogus" in r.stderr and "docker run --help" in r.stderr
    r = run(world, "kind", "create", "cluster", "--bogus")
    assert r.returncode == 1 and r.stderr.strip() == "ERROR: unknown flag: --bogus"
    r = run(world, "kubectl", "get", "pods", "--bogus")
    assert r.returncode == 1 and "error: unknown flag: --bogus" in r.stderr
    r = run(world, "kubectl", "frobnicate")
    assert r.returncode == 1 and 'error: unknown command "frobnicate" for "kubectl"' in r.stderr
    r = run(world, "flux", "install", "--bogus")
    assert r.returncode == 1 and "✗ unknown flag: --bogus" in r.stderr
    r = run(world, "docker", "ps", "-z")
    assert r.returncode == 125 and "unknown shorthand flag: 'z' in -z" in r.stderr


def test_docker_version_answers_client_and_daemon_in_one_call(world):
    both = "{{.Client.Version}}|{{with .Server}}{{.Version}}{{end}}"
    old = world.env(FAKE_DOCKER_VERSION="28.2.2")
    assert run(world, "docker", "version", "--format", both, env=old).stdout == "28.2.2|28.2.2\n"
    # No daemon: docker (28.2.2, checked) still prints the client's part, says why, exits 1.
    world.docker_down()
    down = run(world, "docker", "version", "--format", both, env=old)
    assert (down.returncode, down.stdout) == (1, "28.2.2|\n") and "Cannot connect to the Docker daemon" in down.stderr


def test_versions_and_call_log(world):
    assert run(world, "docker", "version", "--format", "{{.Server.Version}}").stdout == "29.0.0\n"
    old = world.env(FAKE_DOCKER_VERSION="28.2.2")
    assert run(world, "docker", "version", "--format", "{{.Server.Version}}", env=old).stdout == "28.2.2\n"
    assert run(world, "docker", "--version", env=old).stdout.startswith("Docker version 28.2.2,")
    assert run(world, "kind", "version").stdout == "kind v0.32.0 go1.25.1 linux/amd64\n"
    assert run(world, "flux", "version", "--client").stdout == "flux: v2.9.4\n"
    assert run(world, "flux", "--version").stdout == "flux version 2.9.4\n"
    j = json.loads(run(world, "kubectl", "version", "--client", "-o", "json").stdout)
    assert j["clientVersion"]["gitVersion"].startswith("v1.")
    env = world.env(FAKE_KIND_VERSION="0.26.0")
    assert run(world, "kind", "version", env=env).stdout.startswith("kind v0.26.0 ")
    calls = world.calls()
    assert [c["tool"] for c in calls][:6] == ["docker", "docker", "docker", "kind", "flux", "flux"]
    assert all(not c["mutating"] and c["rc"] == 0 for c in calls)
    world.clear_calls()
    assert world.calls() == []


def test_failure_injection_env_and_file(world):
    r = run(world, "docker", "run", "-d", "--name", "x", "busybox", env=world.env(fail="docker run"))
    assert r.returncode == 1 and r.stderr.strip() == "fake: injected failure: docker run"
    assert world.state()["docker"]["containers"] == {}
    world.set_fail("kind create cluster;docker volume rm")
    r = run(world, "kind", "-v", "1", "create", "cluster", "--name", "a")
    assert r.returncode == 1 and "injected failure: kind create cluster" in r.stderr
    world.set_fail(None)
    assert run(world, "kind", "get", "clusters").returncode == 0


# docker/cli 29.0.0 ("fix error formatting (errlint)") lower-cased the untyped inspect error.
MISSING_OBJECT = {"28.2.2": "Error: No such object: kind-registry", "29.0.0": "error: no such object: kind-registry"}


@pytest.mark.parametrize("version", sorted(MISSING_OBJECT))
def test_daemon_down(world, version):
    env = world.env(FAKE_DOCKER_VERSION=version)
    world.docker_down(True)
    r = run(world, "docker", "inspect", "-f", "{{.State.Running}}", "kind-registry", env=env)
    assert r.returncode == 1
    assert "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" \
        in r.stderr
    assert run(world, "kind", "get", "clusters", env=env).returncode == 1
    r = run(world, "docker", "ps", "-a", "--filter", "name=^kind-registry$", "--format", "{{.Names}}", env=env)
    assert r.returncode == 1  # a listing fails loudly when Docker is down: never "absent"
    world.docker_down(False)
    r = run(world, "docker", "inspect", "-f", "{{.State.Running}}", "kind-registry", env=env)
    assert r.returncode == 1 and r.stderr.strip() == MISSING_OBJECT[version]
    assert r.stdout == "\n"  # the template inspector flushes an empty line
    r = run(world, "docker", "inspect", "--type", "container", "-f", "{{.Id}}", "nope", env=env)
    assert r.stderr.strip() == "Error: No such container: nope"
    r = run(world, "docker", "ps", "-a", "--filter", "name=^kind-registry$", "--format", "{{.Names}}", env=env)
    assert r.returncode == 0 and r.stdout == ""


# ---------------------------------------------------------------- docker + registry

def test_registry_lifecycle_and_http_api(world, tmp_path):
    port = free_port()
    start_registry(world, port)
    assert run(world, "docker", "inspect", "-f", "{{.State.Running}}", "kind-registry").stdout == "true\n"
    assert run(world, "docker", "inspect", "-f={{json .NetworkSettings.Networks.kind}}",
               "kind-registry").stdout == "null\n"
    pb = json.loads(run(world, "docker", "inspect", "-f", "{{json .HostConfig.PortBindings}}", "kind-registry").stdout)
    assert pb == {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    r = run(world, "docker", "inspect", "-f", "{{.Foo.Bar}}", "kind-registry")
    assert r.returncode == 2 and "unsupported template" in r.stderr
    # name conflict
    r = run(world, "docker", "run", "-d", "--name", "kind-registry", "registry:3")
    assert r.returncode == 125 and 'The container name "/kind-registry" is already in use' in r.stderr
    # registry API
    base = "http://127.0.0.1:%d" % port
    assert requests.get(base + "/v2/").status_code == 200
    r = requests.get(base + "/v2/lab-app/manifests/x")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    # build + push
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "server.py").write_text("print('hi')\n")
    r = run(world, "docker", "build", "-t", "localhost:%d/lab-app:t1" % port, str(ctx))
    assert r.returncode == 1 and "failed to read dockerfile" in r.stderr
    (ctx / "Dockerfile").write_text("FROM python:3.12-slim\n")
    assert run(world, "docker", "build", "-t", "localhost:%d/lab-app:t1" % port, str(ctx)).returncode == 0
    iid = run(world, "docker", "image", "inspect", "-f", "{{.Id}}", "localhost:%d/lab-app:t1" % port).stdout.strip()
    assert iid.startswith("sha256:")
    r = run(world, "docker", "push", "localhost:%d/lab-app:t1" % port)
    assert r.returncode == 0, r.stderr
    h = requests.head(base + "/v2/lab-app/manifests/t1")
    assert h.status_code == 200 and h.headers["Docker-Content-Digest"].startswith("sha256:")
    assert requests.get(base + "/v2/lab-app/tags/list").json() == {"name": "lab-app", "tags": ["t1"]}
    # stop kills the server; push then fails like docker does
    assert run(world, "docker", "stop", "kind-registry").returncode == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/v2/", timeout=2)
    r = run(world, "docker", "push", "localhost:%d/lab-app:t1" % port)
    assert r.returncode == 1 and "connect: connection refused" in r.stderr
    # rm of a stopped container + volume persistence
    assert run(world, "docker", "rm", "kind-registry").returncode == 0
    start_registry(world, port)
    assert requests.get(base + "/v2/lab-app/tags/list").json()["tags"] == ["t1"]
    r = run(world, "docker", "rm", "kind-registry")
    assert r.returncode == 1 and "container is running" in r.stderr
    assert run(world, "docker", "rm", "-f", "kind-registry").returncode == 0
    assert run(world, "docker", "volume", "rm", "kind-registry-data").returncode == 0
    assert run(world, "docker", "volume", "ls", "-q").stdout == ""


def test_image_ls_with_a_tag_lists_only_that_tag(world, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    assert run(world, "docker", "build", "-t", "localhost:5001/x:a", str(ctx)).returncode == 0
    ls = lambda ref: run(world, "docker", "image", "ls", "--quiet", ref)  # noqa: E731
    assert ls("localhost:5001/x:b").stdout == ""  # another tag of the same repository is not this one
    assert len(ls("localhost:5001/x:a").stdout.split()) == 1
    assert len(ls("localhost:5001/x").stdout.split()) == 1  # a repository alone lists all its tags


def test_buildkit_needs_buildx_as_docker_cli_says(world, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    assert run(world, "docker", "buildx", "version").stdout.startswith("github.com/docker/buildx v")
    without = world.env(FAKE_DOCKER_BUILDX="0")
    r = run(world, "docker", "buildx", "version", env=without)
    assert r.returncode == 1 and "unknown command: docker buildx" in r.stderr
    r = run(world, "docker", "build", "-t", "localhost:5001/x:a", str(ctx), env={**without, "DOCKER_BUILDKIT": "1"})
    assert r.returncode == 1 and "BuildKit is enabled but the buildx component is missing or broken" in r.stderr
    assert run(world, "docker", "build", "-t", "localhost:5001/x:a", str(ctx), env=without).returncode == 0


def test_port_already_allocated_leaves_created_container(world):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = run(world, "docker", "run", "-d", "--restart=always", "-p", "127.0.0.1:%d:5000" % port, "--name",
                "kind-registry", "registry:3")
        assert r.returncode == 125
        assert "Bind for 127.0.0.1:%d failed: port is already allocated" % port in r.stderr
        assert run(world, "docker", "inspect", "-f", "{{.State.Status}}", "kind-registry").stdout == "created\n"
    finally:
        s.close()


# ---------------------------------------------------------------- kind + kubectl

def test_kind_cluster_and_kubectl_basics(world, tmp_path):
    r = run(world, "kind", "get", "clusters")
    assert r.stdout == "" and r.stderr.strip() == "No kind clusters found."
    bad = tmp_path / "bad.yaml"
    bad.write_text(KIND_CFG + "foo: bar\n")
    r = run(world, "kind", "create", "cluster", "--name", "x", "--config", str(bad))
    assert r.returncode == 1 and 'unknown field "foo"' in r.stderr
    role = tmp_path / "role.yaml"
    role.write_text(KIND_CFG.replace("gitops-lab/tier: worker}", "node-role.kubernetes.io/worker: ''}", 1))
    r = run(world, "kind", "create", "cluster", "--name", "x", "--config", str(role))
    assert r.returncode == 1 and "failed to join node with kubeadm" in r.stderr
    assert run(world, "kind", "get", "clusters").stdout == ""
    # kind < 0.32 writes kubeadm.k8s.io/v1beta3: a 1.36 node's kubeadm init refuses it
    ok = tmp_path / "ok.yaml"
    ok.write_text(KIND_CFG)
    r = run(world, "kind", "create", "cluster", "--name", "x", "--config", str(ok), "--image",
            "kindest/node:v1.36.1", env=world.env(FAKE_KIND_VERSION="0.31.0"))
    assert r.returncode == 1 and "failed to init node with kubeadm" in r.stderr
    assert 'no kind "ClusterConfiguration" is registered for version "kubeadm.k8s.io/v1beta3"' in r.stderr
    assert run(world, "kind", "get", "clusters").stdout == ""
    make_cluster(world, tmp_path)
    r = run(world, "kind", "create", "cluster", "--name", "gitops-lab")
    assert r.returncode == 1 and 'node(s) already exist for a cluster with the name "gitops-lab"' in r.stderr
    assert run(world, "kind", "get", "nodes", "--name", "gitops-lab").stdout.split() == [
        "gitops-lab-control-plane", "gitops-lab-worker", "gitops-lab-worker2"]
    assert run(world, "kubectl", "config", "current-context").stdout == "kind-gitops-lab\n"
    nodes = json.loads(run(world, "kubectl", "get", "nodes", "-o", "json").stdout)["items"]
    cp = [n for n in nodes if n["metadata"]["name"].endswith("control-plane")][0]
    assert cp["spec"]["taints"][0]["key"] == "node-role.kubernetes.io/control-plane"
    assert sum(1 for n in nodes if n["metadata"]["labels"].get("gitops-lab/tier") == "worker") == 2
    # apply semantics
    m = "apiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n---\napiVersion: v1\nkind: ConfigMap\n" \
        "metadata: {name: c, namespace: dev}\ndata: {A: '1'}\n"
    assert run(world, "kubectl", "apply", "-f", "-", input=m).stdout == "namespace/dev created\nconfigmap/c created\n"
    rv = run(world, "kubectl", "get", "cm", "c", "-n", "dev", "-o", "jsonpath={.metadata.resourceVersion}").stdout
    assert run(world, "kubectl", "apply", "-f", "-", input=m).stdout == \
        "namespace/dev unchanged\nconfigmap/c unchanged\n"
    assert run(world, "kubectl", "get", "cm", "c", "-n", "dev", "-o",
               "jsonpath={.metadata.resourceVersion}").stdout == rv
    r = run(world, "kubectl", "apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, "
                                                          "namespace: nope}\n")
    assert r.returncode == 1 and 'namespaces "nope" not found' in r.stderr
    r = run(world, "kubectl", "apply", "-f", "-", input="apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
                                                          "metadata: {name: s, namespace: dev}\n")
    assert r.returncode == 1 and 'no matches for kind "ServiceMonitor"' in r.stderr
    assert "ensure CRDs are installed first" in r.stderr
    r = run(world, "kubectl", "get", "deployment", "app", "-n", "dev")
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): deployments.apps "app" not found'
    # --ignore-not-found: kubectl's generic printers print nothing at all, exit 0 (get.go printGeneric)
    for fmt in ("json", "yaml", "name", "jsonpath={.metadata.name}"):
        r = run(world, "kubectl", "get", "deployment", "app", "-n", "dev", "--ignore-not-found", "-o", fmt)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), fmt
    r = run(world, "kubectl", "get", "deployments", "-n", "dev", "--ignore-not-found", "-o", "json")
    assert (r.returncode, r.stdout) == (0, "")  # an empty list too
    r = run(world, "kubectl", "get", "customresourcedefinitions.apiextensions.k8s.io",
            "kustomizations.kustomize.toolkit.fluxcd.io", "--ignore-not-found", "-o", "name")
    assert (r.returncode, r.stdout) == (0, "")
    r = run(world, "kubectl", "get", "configmap", "c", "-n", "dev", "--ignore-not-found", "-o", "name")
    assert r.stdout == "configmap/c\n"
    r = run(world, "kubectl", "--context", "kind-nope", "get", "pods")
    assert r.returncode == 1 and 'error: context "kind-nope" does not exist' in r.stderr
    r = run(world, "kubectl", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert "the server could not find the requested resource" in r.stderr
    r = run(world, "kubectl", "wait", "--for=condition=Available", "deployment/coredns", "-n", "kube-system",
            "--timeout=5s")
    assert r.returncode == 0 and "condition met" in r.stdout
    # out-of-band cluster deletion -> connection refused
    world.delete_cluster_by_hand("gitops-lab")
    r = run(world, "kubectl", "get", "pods")
    assert r.returncode == 1 and "was refused - did you specify the right host or port?" in r.stderr
    # mutating classification
    muts = {tuple(c["argv"][:2]) for c in world.mutating_calls("kubectl")}
    assert ("apply", "-f") in muts
    assert not any(c["argv"][0] == "get" for c in world.mutating_calls("kubectl"))


def test_metrics_server_apiservice(world, tmp_path):
    make_cluster(world, tmp_path)

    def manifest(args):
        return """\
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec: {selector: {k8s-app: metrics-server}, ports: [{name: https, port: 443, targetPort: https}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: metrics-server, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: metrics-server}}
  template:
    metadata: {labels: {k8s-app: metrics-server}}
    spec:
      containers:
      - name: metrics-server
        image: registry.k8s.io/metrics-server/metrics-server:v0.9.0
        args: %s
        ports: [{containerPort: 10250, name: https}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec: {group: metrics.k8s.io, version: v1beta1, service: {name: metrics-server, namespace: kube-system},
       groupPriorityMinimum: 100, versionPriority: 100}
""" % json.dumps(args)
    assert run(world, "kubectl", "apply", "-f", "-", input=manifest(["--secure-port=10250"])).returncode == 0
    r = run(world, "kubectl", "get", "apiservice", "v1beta1.metrics.k8s.io", "-o",
            "jsonpath={.status.conditions[?(@.type==\"Available\")].reason}")
    assert r.stdout == "FailedDiscoveryCheck"
    assert run(world, "kubectl", "apply", "-f", "-",
               input=manifest(["--secure-port=10250", "--kubelet-insecure-tls"])).returncode == 0
    r = run(world, "kubectl", "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io",
            "--timeout=10s")
    assert r.returncode == 0, r.stderr
    j = json.loads(run(world, "kubectl", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout)
    assert j["kind"] == "NodeMetricsList" and len(j["items"]) == 3


# ---------------------------------------------------------------- flux

def gitops_tree(tmp_path):
    root = tmp_path / "flux-cd"
    d = root / "apps" / "dev"
    d.mkdir(parents=True)
    (d / "kustomization.yaml").write_text("resources: [namespace.yaml, app.yaml]\n")
    (d / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n")
    (d / "app.yaml").write_text("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: dev, labels: {app.kubernetes.io/name: app}}
spec:
  replicas: 2
  selector: {matchLabels: {app.kubernetes.io/name: app}}
  template:
    metadata: {labels: {app.kubernetes.io/name: app}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: gitops-lab/tier, operator: In, values: [worker]}]
      containers:
      - name: app
        image: ${APP_IMAGE:=busybox:1.36}
        ports: [{containerPort: 8000, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: dev}
spec: {selector: {app.kubernetes.io/name: app}, ports: [{name: http, port: 8000, targetPort: http}]}
""")
    return root


FLUX_OBJS = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: lab-gitops, namespace: flux-system}
spec: {interval: 1m, url: "oci://kind-registry:5000/lab-gitops", ref: {tag: latest}, insecure: true}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps-dev, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps/dev
  prune: true
  wait: true
  sourceRef: {kind: OCIRepository, name: lab-gitops}
  postBuild:
    substituteStrategy: Always
    substituteFrom: [{kind: ConfigMap, name: lab-vars, optional: true}]
"""


def test_flux_gitops_flow(world, tmp_path):
    port = free_port()
    start_registry(world, port)
    make_cluster(world, tmp_path)
    assert "✔ prerequisites checks passed" in run(world, "flux", "check", "--pre").stderr
    r = run(world, "flux", "install")
    assert r.returncode == 0 and "✔ install finished" in r.stderr
    lab = run(world, "kubectl", "get", "deploy", "source-controller", "-n", "flux-system", "-o",
              "jsonpath={.metadata.labels.app\\.kubernetes\\.io/version}")
    assert lab.stdout == "v2.9.4"
    tree = gitops_tree(tmp_path)
    r = run(world, "flux", "push", "artifact", "oci://localhost:%d/lab-gitops:v1" % port, "--path=%s" % tree,
            "--source=file:///repo")
    assert r.returncode == 1 and "--revision is required" in r.stderr
    r = run(world, "flux", "push", "artifact", "oci://localhost:%d/lab-gitops:v1" % port, "--path=%s" % tree,
            "--source=file:///repo", "--revision=main@sha1:abc")
    assert r.returncode == 0 and "artifact successfully pushed" in r.stderr
    assert run(world, "flux", "tag", "artifact", "oci://localhost:%d/lab-gitops:v1" % port,
               "--tag", "latest").returncode == 0
    assert world.registry_tags("lab-gitops", port) == ["latest", "v1"]
    assert run(world, "kubectl", "apply", "-f", "-", input=FLUX_OBJS).returncode == 0
    # registry not on the kind network yet -> source fails like source-controller
    r = run(world, "flux", "reconcile", "source", "oci", "lab-gitops")
    assert r.returncode == 1 and "no such host" in r.stderr
    assert run(world, "docker", "network", "connect", "kind", "kind-registry").returncode == 0
    r = run(world, "docker", "network", "connect", "kind", "kind-registry")
    assert r.returncode == 1 and "endpoint with name kind-registry already exists in network kind" in r.stderr
    r = run(world, "flux", "reconcile", "kustomization", "apps-dev", "--with-source")
    assert r.returncode == 0, r.stderr
    assert "✔ applied revision latest@sha256:" in r.stderr
    pods = json.loads(run(world, "kubectl", "get", "pods", "-n", "dev", "-o", "json").stdout)["items"]
    assert len(pods) == 2 and all(p["spec"]["nodeName"].endswith(("worker", "worker2")) for p in pods)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1.36"}
    r = run(world, "kubectl", "wait", "--for=condition=Ready", "kustomization/apps-dev", "-n", "flux-system",
            "--timeout=5s")
    assert r.returncode == 0
    # substitution from ConfigMap: image in the fake registry missing -> health check fails
    run(world, "kubectl", "create", "configmap", "lab-vars", "-n", "flux-system",
        "--from-literal=APP_IMAGE=localhost:%d/lab-app:nope" % port)
    r = run(world, "flux", "reconcile", "kustomization", "apps-dev")
    assert r.returncode == 1 and "health check failed" in r.stderr and "Deployment/dev/app" in r.stderr
    out = run(world, "kubectl", "get", "pods", "-n", "dev").stdout
    assert "ImagePullBackOff" in out
    assert "Running" in out  # old pods kept during a failed rollout
    r = run(world, "kubectl", "wait", "--for=condition=Ready", "kustomization/apps-dev", "-n", "flux-system",
            "--timeout=1s")
    assert r.returncode == 1 and "timed out waiting for the condition on kustomizations/apps-dev" in r.stderr
    r = run(world, "flux", "get", "kustomizations")
    assert r.stdout.startswith("NAME") and "False" in r.stdout


def test_flux_tag_artifact_by_tag_or_digest(world, tmp_path):
    """`flux tag artifact` takes `repo:tag` or `repo@sha256:…` (crane.Tag fetches by either); promotion
    tags the exact digest an environment applied. (The error texts: tests/fakes_selftest/
    test_flux_real_behaviour.py.)"""
    port = free_port()
    start_registry(world, port)
    tree = gitops_tree(tmp_path)
    base = "oci://localhost:%d/lab-gitops" % port
    r = run(world, "flux", "push", "artifact", base + ":v1", "--path=%s" % tree, "--source=file:///repo",
            "--revision=main@sha1:abc", "-o", "json")
    assert r.returncode == 0, r.stderr
    digest = json.loads(r.stdout)["digest"]
    r = run(world, "flux", "tag", "artifact", base + "@" + digest, "--tag", "staging", "--tag", "production")
    assert r.returncode == 0, r.stderr
    assert world.registry_tags("lab-gitops", port) == ["production", "staging", "v1"]
    head = requests.head("http://127.0.0.1:%d/v2/lab-gitops/manifests/staging" % port,
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert head.headers["Docker-Content-Digest"] == digest
    assert world.mutating_calls("flux")[-1]["argv"][:2] == ["tag", "artifact"]


APPLIED = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: vars, namespace: default}
data: {IMAGE: "a:1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: default}
spec:
  %s
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec: {containers: [{name: c, image: "busybox:1.36"}]}
"""


def test_client_side_apply_undoes_hand_changes_to_what_the_manifest_sets(world, tmp_path):
    """kubectl's three-way merge (strategicpatch.CreateThreeWayMergePatch): the patch is the difference
    from the live object to the manifest, plus the deletions from the last applied one. A field the
    manifest sets comes back after `kubectl patch`/`scale`; one it leaves to the server stays."""
    make_cluster(world, tmp_path)
    docs = (APPLIED % ("fixed", "replicas: 2", "fixed", "fixed")) + "---\n" + \
        (APPLIED % ("free", "", "free", "free")).split("---\n", 1)[1]
    assert run(world, "kubectl", "apply", "-f", "-", input=docs).returncode == 0
    assert run(world, "kubectl", "patch", "configmap", "vars", "--type", "merge",
               "-p", '{"data": {"IMAGE": "b:2"}}').returncode == 0
    for name in ("fixed", "free"):
        assert run(world, "kubectl", "scale", "deployment", name, "--replicas=3").returncode == 0
    r = run(world, "kubectl", "apply", "-f", "-", input=docs)
    assert r.returncode == 0, r.stderr
    assert "configmap/vars configured" in r.stdout and "deployment.apps/fixed configured" in r.stdout
    assert "deployment.apps/free unchanged" in r.stdout

    def get(*args):
        return run(world, "kubectl", "get", *args, "-o", "json")

    assert json.loads(get("configmap", "vars").stdout)["data"] == {"IMAGE": "a:1"}
    assert json.loads(get("deployment", "fixed").stdout)["spec"]["replicas"] == 2
    assert json.loads(get("deployment", "free").stdout)["spec"]["replicas"] == 3


def test_reconcile_of_a_suspended_object_fails_before_touching_anything(world, tmp_path):
    """flux 2.9.4 (cmd/flux/reconcile.go, reconcile_with_source.go): the object is read, and a suspended
    one ends the command with `✗ resource is suspended`, exit 1, before its source is reconciled or
    anything is annotated."""
    port = free_port()
    start_registry(world, port)
    make_cluster(world, tmp_path)
    assert run(world, "flux", "install").returncode == 0
    tree = gitops_tree(tmp_path)
    assert run(world, "flux", "push", "artifact", "oci://localhost:%d/lab-gitops:latest" % port, "--path=%s" % tree,
               "--source=file:///repo", "--revision=main@sha1:abc").returncode == 0
    assert run(world, "kubectl", "apply", "-f", "-", input=FLUX_OBJS).returncode == 0
    assert run(world, "docker", "network", "connect", "kind", "kind-registry").returncode == 0
    assert run(world, "flux", "reconcile", "kustomization", "apps-dev", "--with-source").returncode == 0
    r = run(world, "flux", "suspend", "kustomization", "apps-dev")
    assert r.returncode == 0 and "✔ kustomization suspended" in r.stderr

    def requested(kind, name):
        o = json.loads(run(world, "kubectl", "get", kind, name, "-n", "flux-system", "-o", "json").stdout)
        return (o["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")

    before = requested("ocirepositories.source.toolkit.fluxcd.io", "lab-gitops"), requested("kustomization", "apps-dev")
    for extra in ((), ("--with-source",)):
        r = run(world, "flux", "reconcile", "kustomization", "apps-dev", *extra)
        assert (r.returncode, r.stderr) == (1, "✗ resource is suspended\n"), (extra, r.stderr)
    assert (requested("ocirepositories.source.toolkit.fluxcd.io", "lab-gitops"),
            requested("kustomization", "apps-dev")) == before
    r = run(world, "flux", "suspend", "source", "oci", "lab-gitops")
    assert r.returncode == 0, r.stderr
    r = run(world, "flux", "reconcile", "source", "oci", "lab-gitops")
    assert (r.returncode, r.stderr) == (1, "✗ resource is suspended\n")
    r = run(world, "flux", "resume", "kustomization", "apps-dev")
    r = run(world, "flux", "reconcile", "kustomization", "apps-dev", "--with-source")
    assert (r.returncode, r.stderr) == (1, "✗ resource is suspended\n")  # now its source is


SUBSTITUTE_ALWAYS = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps-dev, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps/dev
  prune: true
  sourceRef: {kind: OCIRepository, name: lab-gitops}
  postBuild: {substituteStrategy: Always}
"""


@pytest.mark.parametrize("release, accepted", [("v2.8.6", False), ("v2.9.0", True)])
def test_substitute_strategy_needs_flux_2_9(world, tmp_path, release, accepted):
    # postBuild.substituteStrategy first appears in kustomize-controller v1.9.0 (Flux 2.9)
    make_cluster(world, tmp_path)
    assert run(world, "flux", "install", "--version", release).returncode == 0
    r = run(world, "kubectl", "apply", "-f", "-", input=SUBSTITUTE_ALWAYS)
    if accepted:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 1
        assert 'strict decoding error: unknown field "spec.postBuild.substituteStrategy"' in r.stderr


def test_hpa_stabilization_windows():
    from fakes.fakelib.controllers import stabilize

    hpa = {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}}}
    assert stabilize(hpa, 1, 3, now=1000) == 3      # scale-up window 0 s: up at once
    assert stabilize(hpa, 3, 1, now=1010) == 3      # the 300 s scale-down window holds the high mark
    assert stabilize(hpa, 1, 3, now=1020) == 3      # a manual scale-down while loaded is undone
    assert stabilize(hpa, 3, 1, now=1300) == 3      # 3 was asked at 1020: still inside the window
    assert stabilize(hpa, 3, 1, now=1321) == 1      # window passed: down
    assert stabilize(hpa, 1, 1, now=1330) == 1
    calm = {"spec": {}}                              # defaults: 0 s up, 300 s down
    assert stabilize(calm, 2, 5, now=0) == 5 and stabilize(calm, 5, 1, now=299) == 5
    assert stabilize(calm, 1, 1, now=305) == 1       # a manual scale-down without load sticks
    assert stabilize(calm, 1, 1, now=306) == 1


def test_networkpolicy_and_port_forward(world, tmp_path):
    make_cluster(world, tmp_path)
    m = """\
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: dev}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: app}}
  template:
    metadata: {labels: {app.kubernetes.io/name: app}}
    spec:
      containers: [{name: app, image: "localhost:5001/lab-app:x", ports: [{containerPort: 8000, name: http}]}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: dev}
spec: {selector: {app.kubernetes.io/name: app}, ports: [{name: http, port: 8000, targetPort: http}]}
"""
    assert run(world, "kubectl", "apply", "-f", "-", input=m.replace("localhost:5001/lab-app:x",
                                                                       "busybox:1.36")).returncode == 0
    assert run(world, "kubectl", "run", "probe", "-n", "dev", "--image", "curlimages/curl:8.10.1",
               "--restart=Never", "--", "sleep", "3600").returncode == 0
    url = "http://app.dev.svc.cluster.local:8000/healthz"
    r = run(world, "kubectl", "exec", "probe", "-n", "dev", "--", "curl", "-s", url)
    assert r.returncode == 0 and r.stdout == "ok\n"
    deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny, namespace: dev}\n" \
           "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n"
    assert run(world, "kubectl", "apply", "-f", "-", input=deny).returncode == 0
    r = run(world, "kubectl", "exec", "probe", "-n", "dev", "--", "curl", "-sS", url)
    assert r.returncode == 28 and "timed out" in r.stderr
    allow = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns-and-app, namespace: dev}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {run: probe}}}], ports: [{port: http}]}]
  egress:
  - to: [{podSelector: {matchLabels: {app.kubernetes.io/name: app}}}]
    ports: [{port: 8000}]
  - to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{port: 53, protocol: UDP}]
"""
    assert run(world, "kubectl", "apply", "-f", "-", input=allow).returncode == 0
    r = run(world, "kubectl", "exec", "probe", "-n", "dev", "--", "curl", "-s", url)
    assert r.returncode == 0 and r.stdout == "ok\n"
    r = run(world, "kubectl", "exec", "probe", "-n", "dev", "--", "curl", "-sS",
            "http://app.dev.svc.cluster.local:9999/")
    assert r.returncode == 28
    # port-forward serves HTTP and dies with its parent
    lp = free_port()
    p = subprocess.Popen(["kubectl", "port-forward", "-n", "dev", "svc/app", "%d:8000" % lp, "--address",
                          "127.0.0.1"], env=world.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line == "Forwarding from 127.0.0.1:%d -> 8000\n" % lp
        assert requests.get("http://127.0.0.1:%d/healthz" % lp, timeout=5).text == "ok\n"
        r = run(world, "kubectl", "port-forward", "-n", "dev", "svc/app", "%d:8000" % lp, "--address", "127.0.0.1")
        assert r.returncode == 1 and "unable to listen on any of the requested ports: [{%d 8000}]" % lp in r.stderr
        pids = world.background_pids()
        assert p.pid in pids
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    time.sleep(0.3)
    with pytest.raises(requests.ConnectionError):
        requests.get("http://127.0.0.1:%d/healthz" % lp, timeout=2)
    for pid in pids:
        if pid != p.pid and any(b["kind"] == "port-forward-app" for k, b in world.state()["background"].items()
                                if int(k) == pid):
            assert not pid_alive(pid)
    assert p.pid not in world.background_pids()


def _bootstrap_ready_expr():
    """The readyExpr the lab's apps Kustomizations carry (flux-cd/bootstrap/base/apps.yaml)."""
    import yaml
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "flux-cd", "bootstrap", "base", "apps.yaml")) as f:
        exprs = {d["spec"]["dependsOn"][0].get("readyExpr") for d in yaml.safe_load_all(f) if d}
    assert len(exprs) == 1 and None not in exprs, exprs
    return exprs.pop()


def test_ready_expr_replaces_the_built_in_dependency_check(world, tmp_path):
    """kustomize-controller v1.9: a dependsOn[].readyExpr (CEL) replaces the built-in check, whose
    same-source rule makes a dependant wait until its dependency applied the very revision it reads."""
    import yaml
    port = free_port()
    start_registry(world, port)
    make_cluster(world, tmp_path)
    assert run(world, "flux", "install").returncode == 0
    assert run(world, "docker", "network", "connect", "kind", "kind-registry").returncode == 0
    tree = gitops_tree(tmp_path)
    (tree / "infra").mkdir()
    (tree / "infra" / "kustomization.yaml").write_text("resources: [ns.yaml]\n")
    (tree / "infra" / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: infra}\n")
    qa = tree / "apps" / "qa"
    qa.mkdir()
    (qa / "kustomization.yaml").write_text("resources: [ns.yaml]\n")
    (qa / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: qa}\n")

    def publish(n):
        url = "oci://localhost:%d/lab-gitops" % port
        assert run(world, "flux", "push", "artifact", "%s:v%d" % (url, n), "--path=%s" % tree,
                   "--source=file:///repo", "--revision=main@sha1:%d" % n).returncode == 0
        assert run(world, "flux", "tag", "artifact", "%s:v%d" % (url, n), "--tag", "latest").returncode == 0

    publish(1)
    expr = _bootstrap_ready_expr()
    objs = [d for d in yaml.safe_load_all(FLUX_OBJS)]
    dev = objs[1]
    dev["spec"]["dependsOn"] = [{"name": "infrastructure", "readyExpr": expr}]
    builtin = yaml.safe_load(yaml.safe_dump(dev))
    builtin["metadata"]["name"], builtin["spec"]["path"] = "apps-qa", "./apps/qa"
    builtin["spec"]["dependsOn"] = [{"name": "infrastructure"}]
    infra = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
             "metadata": {"name": "infrastructure", "namespace": "flux-system"},
             "spec": {"interval": "10m", "path": "./infra", "prune": True, "wait": True,
                      "sourceRef": {"kind": "OCIRepository", "name": "lab-gitops"}}}
    assert run(world, "kubectl", "apply", "-f", "-", input=yaml.safe_dump_all([objs[0], infra, dev, builtin])).returncode == 0
    for ks in ("infrastructure", "apps-dev", "apps-qa"):
        r = run(world, "flux", "reconcile", "kustomization", ks, "--with-source")
        assert r.returncode == 0, (ks, r.stderr)

    # revision 2: while kustomize-controller re-applies infrastructure (Progressing, at revision 1), the
    # dependants are reconciled
    (tree / "apps" / "dev" / "app.yaml").write_text((tree / "apps" / "dev" / "app.yaml").read_text()
                                                    .replace("replicas: 2", "replicas: 3"))
    (qa / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: qa, labels: {v: '2'}}\n")
    publish(2)
    world.busy_kustomization("infrastructure", ticks=2)
    assert run(world, "flux", "reconcile", "source", "oci", "lab-gitops").returncode == 0
    ks = {k["metadata"]["name"]: k for k in world.objects("gitops-lab", "Kustomization")}
    assert ks["infrastructure"]["status"]["lastAppliedRevision"].startswith("latest@") and \
        [c["status"] for c in ks["infrastructure"]["status"]["conditions"] if c["type"] == "Ready"] == ["Unknown"]
    qa_cond = [c for c in ks["apps-qa"]["status"]["conditions"] if c["type"] == "Ready"][0]
    assert (qa_cond["status"], qa_cond["reason"]) == ("False", "DependencyNotReady"), qa_cond
    dev_cond = [c for c in ks["apps-dev"]["status"]["conditions"] if c["type"] == "Ready"][0]
    assert dev_cond["status"] == "True", dev_cond
    assert ks["apps-dev"]["status"]["lastAppliedRevision"] == \
        world.objects("gitops-lab", "OCIRepository")[0]["status"]["artifact"]["revision"]
    replicas = run(world, "kubectl", "get", "deploy", "app", "-n", "dev", "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "3"
    # infrastructure done: the built-in check passes too (same revision)
    r = run(world, "flux", "reconcile", "kustomization", "apps-qa")
    assert r.returncode == 0, r.stderr

    # a new infrastructure spec that does not apply: its observedGeneration stays behind, the apps wait
    assert run(world, "kubectl", "patch", "kustomization", "infrastructure", "-n", "flux-system", "--type=merge",
               "-p", '{"spec": {"path": "./nowhere"}}').returncode == 0
    r = run(world, "flux", "reconcile", "kustomization", "infrastructure")
    assert r.returncode == 1
    r = run(world, "flux", "reconcile", "kustomization", "apps-dev")
    assert r.returncode == 1 and "dependency 'flux-system/infrastructure' is not ready according to readyExpr eval" \
        in r.stderr, r.stderr

    # an expression that does not compile: terminal, as kustomize-controller says it
    dev["spec"]["dependsOn"] = [{"name": "infrastructure", "readyExpr": "dep.status.conditions.exists("}]
    assert run(world, "kubectl", "apply", "-f", "-", input=yaml.safe_dump(dev)).returncode == 0
    r = run(world, "flux", "reconcile", "kustomization", "apps-dev")
    assert r.returncode == 1 and "failed terminally due to configuration error" in r.stderr, r.stderr
