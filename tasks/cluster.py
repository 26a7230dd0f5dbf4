"""The kind cluster, wired to the local registry as kind's docs say.

Never deleted unasked: if its definition changed since it was created, we stop
and point at `doit recreate_cluster`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tasks import console, containers, floors, kube, mirrors, names, state
from tasks.errors import LabError
from tasks.tools import tail

RECORD = "cluster.json"


def config_path(cfg) -> Path:
    path = Path(cfg.KIND_CONFIG)
    return path if path.is_absolute() else state.ROOT / path


def definition_sha(cfg) -> str:
    """What the cluster was made from: its config file and its node image."""
    try:
        text = config_path(cfg).read_bytes()
    except FileNotFoundError:
        raise LabError(f"kind config {cfg.KIND_CONFIG} not found", "the cluster is defined there",
                       "restore it from git or set KIND_CONFIG=path/to/config.yaml") from None
    return hashlib.sha256(text + b"\0" + cfg.KIND_NODE_IMAGE.encode()).hexdigest()[:16]


def exists(t, cfg) -> bool:
    """Read as `kind get clusters` reads it: a container labelled as a node of the cluster (from the
    run's one container listing, shared with the registry's and the nodes' checks)."""
    return bool(containers.kind_nodes(t, cfg.CLUSTER_NAME))


def nodes(t, cfg) -> list[str]:
    """The cluster's node containers, as `kind get nodes` lists them."""
    return [c.name for c in containers.kind_nodes(t, cfg.CLUSTER_NAME)]


def control_plane(cfg) -> str:
    return f"{cfg.CLUSTER_NAME}-control-plane"


def identity(t, cfg) -> str | None:
    """The control-plane container's ID: changes whenever the cluster is recreated."""
    if cfg.existing:
        return existing_identity(t, cfg)
    found = containers.find(t, control_plane(cfg))
    return found.id if found else None


def _running(t, name: str) -> bool:
    found = containers.find(t, name)
    return bool(found and found.running)


# --- CLUSTER_PROVIDER=existing: check, never create or delete ------------------------

def existing_identity(t, cfg) -> str | None:
    """kube-system's UID: stable for a cluster's life, new if it is rebuilt."""
    res = t.probe("kubectl", "--context", cfg.KUBE_CONTEXT, "get", "namespace", "kube-system", "-o",
                  "jsonpath={.metadata.uid}", check=False, timeout=30)
    return res.out.strip() if res.ok and res.out.strip() else None


def check_existing(t, cfg) -> str:
    contexts = t.probe("kubectl", "config", "get-contexts", "-o", "name", timeout=30).out.split()
    if cfg.KUBE_CONTEXT not in contexts:
        raise LabError(f"kubectl context {cfg.KUBE_CONTEXT} does not exist",
                       "CLUSTER_PROVIDER=existing uses a cluster you already have",
                       "pick one from `kubectl config get-contexts` (e.g. after `aws eks update-kubeconfig`)")
    res = t.probe("kubectl", "--context", cfg.KUBE_CONTEXT, "version", "-o", "json", check=False, timeout=60)
    try:
        server = json.loads(res.out)["serverVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        raise LabError(f"cluster of context {cfg.KUBE_CONTEXT} is not reachable", tail(res.err, 2),
                       "check your credentials and network (`kubectl cluster-info`)") from None
    # A cluster that serves its own metrics API keeps it: then metrics-server's floor does not apply.
    own_metrics = kube.get_json(t, cfg, "apiservices.apiregistration.k8s.io", "v1beta1.metrics.k8s.io",
                                missing_ok=True) is not None
    floor = floors.kubernetes(installs_metrics_server=not own_metrics)
    if floors.vt(server)[:2] < floors.vt(floor.version)[:2]:
        raise LabError(f"cluster {cfg.KUBE_CONTEXT} runs Kubernetes {server}, the lab needs >= {floor.version}",
                       floor.why, "upgrade the cluster or use another context")
    floors.check_kubectl_skew(t.check_version("kubectl"), server.lstrip("v").split("-")[0].split("+")[0],
                              f"cluster {cfg.KUBE_CONTEXT}")
    nodes = json.loads(t.probe("kubectl", "--context", cfg.KUBE_CONTEXT, "get", "nodes", "-l",
                               names.WORKER_SELECTOR, "-o", "json", timeout=60).out)["items"]
    if not nodes:
        raise LabError(f"no node of {cfg.KUBE_CONTEXT} carries {names.WORKER_SELECTOR}",
                       "the app's pods require it (they stay off control-plane and system nodes)",
                       f"label the nodes the app may use: `kubectl --context {cfg.KUBE_CONTEXT} label node "
                       f"NODE {names.WORKER_SELECTOR}`")
    console.info(f"context {cfg.KUBE_CONTEXT}: Kubernetes {server}, {len(nodes)} worker node(s)")
    return existing_identity(t, cfg) or "unknown"


def is_ready(t, cfg) -> bool:
    """Up to date: the cluster we recorded still exists, runs, and matches its definition."""
    record = state.read_json(RECORD)
    if cfg.existing:
        return bool(record) and record.get("context") == cfg.KUBE_CONTEXT and \
            existing_identity(t, cfg) == record.get("id")
    if not record or record.get("name") != cfg.CLUSTER_NAME:
        return False
    if record.get("definition") != definition_sha(cfg):
        return False
    if not exists(t, cfg):
        return False
    return identity(t, cfg) == record.get("id") and all(_running(t, n) for n in nodes(t, cfg))


def hosts_toml(cfg) -> str:
    return f'[host."http://{cfg.REGISTRY_NAME}:5000"]\n'


def registry_dir(cfg) -> str:
    return f"/etc/containerd/certs.d/localhost:{cfg.REGISTRY_PORT}"


def local_registry_hosting(cfg) -> str:
    # KEP-1755: tells tools (Tilt, Skaffold, …) where the cluster's local registry is.
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:{cfg.REGISTRY_PORT}"
    hostFromClusterNetwork: "{cfg.REGISTRY_NAME}:5000"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
"""


def wire_registry(t, cfg) -> None:
    """kind's local-registry recipe, steps 3-5; each write only where it differs."""
    for node in nodes(t, cfg):
        target = f"{registry_dir(cfg)}/hosts.toml"
        have = t.probe("docker", "exec", node, "cat", target, check=False)
        if have.ok and have.out == hosts_toml(cfg):
            continue
        t.mutate("docker", "exec", node, "mkdir", "-p", registry_dir(cfg), timeout=30)
        t.mutate("docker", "exec", "-i", node, "cp", "/dev/stdin", target, stdin=hosts_toml(cfg), timeout=30)
    for node in nodes(t, cfg) if mirrors.enabled(cfg) else ():
        write_node_files(t, node, mirrors.node_files(cfg))
    registry = containers.find(t, cfg.REGISTRY_NAME)
    if registry is None and not t.dry_run:
        console.info(f"registry {cfg.REGISTRY_NAME} does not exist yet: `doit setup` creates and connects it")
    elif registry is None or "kind" not in registry.networks:
        t.mutate("docker", "network", "connect", "kind", cfg.REGISTRY_NAME, timeout=30)
    mirrors.connect(t, cfg)
    t.mutate("kubectl", "--context", cfg.KUBE_CONTEXT, "apply", "-f", "-",
             stdin=local_registry_hosting(cfg), timeout=60)


def write_node_files(t, node: str, files: dict[str, str]) -> None:
    """One read per node decides; containerd re-reads certs.d on every pull, so no restart."""
    have = t.probe("docker", "exec", node, "cat", *files, check=False)
    if have.ok and have.out == "".join(files.values()):
        return
    t.mutate("docker", "exec", node, "mkdir", "-p", *sorted({f.rsplit("/", 1)[0] for f in files}), timeout=30)
    for target, text in files.items():
        t.mutate("docker", "exec", "-i", node, "cp", "/dev/stdin", target, stdin=text, timeout=30)


def use_context(t, cfg) -> None:
    current = t.probe("kubectl", "config", "current-context", check=False).out.strip()
    if current != cfg.KUBE_CONTEXT:
        t.mutate("kubectl", "config", "use-context", cfg.KUBE_CONTEXT, timeout=30)


def ensure(t, cfg) -> dict:
    if cfg.existing:
        cluster_id = check_existing(t, cfg)
        state.write_json(RECORD, {"context": cfg.KUBE_CONTEXT, "id": cluster_id, "provider": "existing"})
        return {"cluster_id": cluster_id}
    sha = definition_sha(cfg)
    record = state.read_json(RECORD)
    if exists(t, cfg):
        if record.get("name") == cfg.CLUSTER_NAME and record.get("definition") not in (None, sha):
            raise LabError(
                f"{cfg.KIND_CONFIG} or KIND_NODE_IMAGE changed since cluster {cfg.CLUSTER_NAME} was created",
                "kind can't change a cluster's nodes in place, and we never delete a cluster unasked",
                "run `doit recreate_cluster` to delete and recreate it (then `doit setup` rebuilds the rest)")
        stopped = [n for n in nodes(t, cfg) if not _running(t, n)]
        if stopped:  # Docker restarted (kind#148): bring the nodes back rather than recreate
            t.mutate("docker", "start", *stopped, timeout=120)
        console.info(f"cluster {cfg.CLUSTER_NAME} exists")
        if not record:
            console.info("no record of how it was made (state directory cleared): adopting it as is")
    else:
        t.mutate("kind", "create", "cluster", "--name", cfg.CLUSTER_NAME, "--image", cfg.KIND_NODE_IMAGE,
                 "--config", str(config_path(cfg)), "--wait", cfg.CREATE_WAIT, timeout=900)
    if t.dry_run and not exists(t, cfg):
        console.info("(dry run: registry wiring and context switch follow cluster creation)")
        return {"cluster_id": "dry-run"}
    wire_registry(t, cfg)
    use_context(t, cfg)
    cluster_id = identity(t, cfg)
    if not t.dry_run:
        state.write_json(RECORD, {"name": cfg.CLUSTER_NAME, "definition": sha, "id": cluster_id,
                                  "node_image": cfg.KIND_NODE_IMAGE})
    return {"cluster_id": cluster_id}


def refuse_existing(cfg) -> LabError:
    return LabError(f"CLUSTER_PROVIDER=existing: the lab did not create {cfg.KUBE_CONTEXT} and will not delete it",
                    "it only deletes what it made", "delete it with your platform's own tools if you mean to")


def delete(t, cfg) -> None:
    if cfg.existing:
        raise refuse_existing(cfg)
    if exists(t, cfg):
        t.mutate("kind", "delete", "cluster", "--name", cfg.CLUSTER_NAME, timeout=300)
    else:
        console.info(f"cluster {cfg.CLUSTER_NAME}: nothing to delete")
    if not t.dry_run:
        state.forget(RECORD)


def recreate(t, cfg) -> dict:
    delete(t, cfg)
    result = ensure(t, cfg)
    console.info("cluster recreated: run `doit setup` to reinstall metrics-server, Flux and the app")
    return result
