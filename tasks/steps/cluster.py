"""The kind cluster, wired to the local registry as kind's docs say.

Never deleted unasked: if its definition changed since it was created, we stop
and point at `doit recreate_cluster`.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

from tasks.core import console, containers, floors, kube, names, state
from tasks.steps import mirrors
from tasks.core.errors import LabError
from tasks.core.tools import tail

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


def exists(lab) -> bool:
    """Read as `kind get clusters` reads it: a container labelled as a node of the cluster (from the
    run's one container listing, shared with the registry's and the nodes' checks)."""
    return bool(containers.kind_nodes(lab, lab.cfg.CLUSTER_NAME))


def nodes(lab) -> list[str]:
    """The cluster's node containers, as `kind get nodes` lists them."""
    return [c.name for c in containers.kind_nodes(lab, lab.cfg.CLUSTER_NAME)]


def control_plane(cfg) -> str:
    return f"{cfg.CLUSTER_NAME}-control-plane"


def identity(lab) -> str | None:
    """The control-plane container's ID: changes whenever the cluster is recreated."""
    if lab.cfg.existing:
        return existing_identity(lab)
    found = containers.find(lab, control_plane(lab.cfg))
    return found.id if found else None


def _running(lab, name: str) -> bool:
    found = containers.find(lab, name)
    return bool(found and found.running)


# --- CLUSTER_PROVIDER=existing: check, never create or delete ------------------------

def existing_identity(lab) -> str | None:
    """kube-system's UID: stable for a cluster's life, new if it is rebuilt."""
    res = lab.probe("kubectl", "--context", lab.cfg.KUBE_CONTEXT, "get", "namespace", "kube-system", "-o",
                  "jsonpath={.metadata.uid}", check=False, timeout=30)
    return res.out.strip() if res.ok and res.out.strip() else None


def check_existing(lab) -> str:
    contexts = lab.probe("kubectl", "config", "get-contexts", "-o", "name", timeout=30).out.split()
    if lab.cfg.KUBE_CONTEXT not in contexts:
        raise LabError(f"kubectl context {lab.cfg.KUBE_CONTEXT} does not exist",
                       "CLUSTER_PROVIDER=existing uses a cluster you already have",
                       "pick one from `kubectl config get-contexts` (e.g. after `aws eks update-kubeconfig`)")
    res = lab.probe("kubectl", "--context", lab.cfg.KUBE_CONTEXT, "version", "-o", "json", check=False, timeout=60)
    try:
        server = json.loads(res.out)["serverVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        raise LabError(f"cluster of context {lab.cfg.KUBE_CONTEXT} is not reachable", tail(res.err, 2),
                       "check your credentials and network (`kubectl cluster-info`)") from None
    # A cluster that serves its own metrics API keeps it: then metrics-server's floor does not apply.
    own_metrics = kube.get_json(lab, "apiservices.apiregistration.k8s.io", "v1beta1.metrics.k8s.io",
                                missing_ok=True) is not None
    floor = floors.kubernetes(installs_metrics_server=not own_metrics)
    if floors.vt(server)[:2] < floors.vt(floor.version)[:2]:
        raise LabError(f"cluster {lab.cfg.KUBE_CONTEXT} runs Kubernetes {server}, the lab needs >= {floor.version}",
                       floor.why, "upgrade the cluster or use another context")
    floors.check_kubectl_skew(lab.check_version("kubectl"), server.lstrip("v").split("-")[0].split("+")[0],
                              f"cluster {lab.cfg.KUBE_CONTEXT}")
    nodes = json.loads(lab.probe("kubectl", "--context", lab.cfg.KUBE_CONTEXT, "get", "nodes", "-l",
                               names.WORKER_SELECTOR, "-o", "json", timeout=60).out)["items"]
    if not nodes:
        raise LabError(f"no node of {lab.cfg.KUBE_CONTEXT} carries {names.WORKER_SELECTOR}",
                       "the app's pods require it (they stay off control-plane and system nodes)",
                       f"label the nodes the app may use: `kubectl --context {lab.cfg.KUBE_CONTEXT} label node "
                       f"NODE {names.WORKER_SELECTOR}`")
    console.info(f"context {lab.cfg.KUBE_CONTEXT}: Kubernetes {server}, {len(nodes)} worker node(s)")
    return existing_identity(lab) or "unknown"


def is_ready(lab) -> bool:
    """Up to date: the cluster we recorded still exists, runs, and matches its definition."""
    record = state.read_json(RECORD)
    if lab.cfg.existing:
        return bool(record) and record.get("context") == lab.cfg.KUBE_CONTEXT and \
            existing_identity(lab) == record.get("id")
    if not record or record.get("name") != lab.cfg.CLUSTER_NAME:
        return False
    if record.get("definition") != definition_sha(lab.cfg):
        return False
    if not exists(lab):
        return False
    return identity(lab) == record.get("id") and all(_running(lab, n) for n in nodes(lab))


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


def wire_registry(lab) -> None:
    """kind's local-registry recipe, steps 3-5; each write only where it differs."""
    files = {f"{registry_dir(lab.cfg)}/hosts.toml": hosts_toml(lab.cfg)}
    if mirrors.enabled(lab.cfg):
        files.update(mirrors.node_files(lab.cfg))
    for node in nodes(lab):
        write_node_files(lab, node, files)
    registry = containers.find(lab, lab.cfg.REGISTRY_NAME)
    if registry is None and not lab.dry_run:
        console.info(f"registry {lab.cfg.REGISTRY_NAME} does not exist yet: `doit setup` creates and connects it")
    elif registry is None or "kind" not in registry.networks:
        lab.mutate("docker", "network", "connect", "kind", lab.cfg.REGISTRY_NAME, timeout=30)
    mirrors.connect(lab)
    lab.mutate("kubectl", "--context", lab.cfg.KUBE_CONTEXT, "apply", "-f", "-",
             stdin=local_registry_hosting(lab.cfg), timeout=60)


def write_node_files(lab, node: str, files: dict[str, str]) -> None:
    """One read per node decides, one write (a tar on `docker cp`'s stdin: Docker creates the missing
    folders) changes; containerd re-reads certs.d on every pull, so no restart."""
    have = lab.probe("docker", "exec", node, "cat", *files, check=False)
    if have.ok and have.out == "".join(files.values()):
        return
    lab.mutate("docker", "cp", "-", f"{node}:/", stdin=node_archive(files), timeout=30)


def node_archive(files: dict[str, str]) -> bytes:
    """FILES (absolute path -> text) as a tar archive rooted at /: root-owned, mode 0644."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def use_context(lab) -> None:
    current = lab.probe("kubectl", "config", "current-context", check=False).out.strip()
    if current != lab.cfg.KUBE_CONTEXT:
        lab.mutate("kubectl", "config", "use-context", lab.cfg.KUBE_CONTEXT, timeout=30)


def ensure(lab) -> dict:
    if lab.cfg.existing:
        cluster_id = check_existing(lab)
        state.write_json(RECORD, {"context": lab.cfg.KUBE_CONTEXT, "id": cluster_id, "provider": "existing"})
        return {"cluster_id": cluster_id}
    sha = definition_sha(lab.cfg)
    record = state.read_json(RECORD)
    if exists(lab):
        if record.get("name") == lab.cfg.CLUSTER_NAME and record.get("definition") not in (None, sha):
            raise LabError(
                f"{lab.cfg.KIND_CONFIG} or KIND_NODE_IMAGE changed since cluster {lab.cfg.CLUSTER_NAME} was created",
                "kind can't change a cluster's nodes in place, and we never delete a cluster unasked",
                "run `doit recreate_cluster` to delete and recreate it (then `doit setup` rebuilds the rest)")
        stopped = [n for n in nodes(lab) if not _running(lab, n)]
        if stopped:  # Docker restarted (kind#148): bring the nodes back rather than recreate
            lab.mutate("docker", "start", *stopped, timeout=120)
        console.info(f"cluster {lab.cfg.CLUSTER_NAME} exists")
        if not record:
            console.info("no record of how it was made (state directory cleared): adopting it as is")
    else:
        lab.mutate("kind", "create", "cluster", "--name", lab.cfg.CLUSTER_NAME, "--image", lab.cfg.KIND_NODE_IMAGE,
                 "--config", str(config_path(lab.cfg)), "--wait", lab.cfg.CREATE_WAIT, timeout=900)
    if lab.dry_run and not exists(lab):
        console.info("(dry run: registry wiring and context switch follow cluster creation)")
        return {"cluster_id": "dry-run"}
    wire_registry(lab)
    use_context(lab)
    cluster_id = identity(lab)
    if not lab.dry_run:
        state.write_json(RECORD, {"name": lab.cfg.CLUSTER_NAME, "definition": sha, "id": cluster_id,
                                  "node_image": lab.cfg.KIND_NODE_IMAGE})
    return {"cluster_id": cluster_id}


def refuse_existing(cfg) -> LabError:
    return LabError(f"CLUSTER_PROVIDER=existing: the lab did not create {cfg.KUBE_CONTEXT} and will not delete it",
                    "it only deletes what it made", "delete it with your platform's own tools if you mean to")


def delete(lab) -> None:
    if lab.cfg.existing:
        raise refuse_existing(lab.cfg)
    if exists(lab):
        lab.mutate("kind", "delete", "cluster", "--name", lab.cfg.CLUSTER_NAME, timeout=300)
    else:
        console.info(f"cluster {lab.cfg.CLUSTER_NAME}: nothing to delete")
    if not lab.dry_run:
        state.forget(RECORD)


def recreate(lab) -> dict:
    delete(lab)
    result = ensure(lab)
    console.info("cluster recreated: run `doit setup` to reinstall metrics-server, Flux and the app")
    return result
