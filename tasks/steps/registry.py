"""The local OCI registry container (kind's local-registry recipe).

absent → created, bound to 127.0.0.1 only; stopped → started; running → untouched.
Its image data lives in a named volume, so recreating the container keeps images.
"""
from __future__ import annotations

import json
import time

import requests

from tasks.core import console, containers
from tasks.steps import mirrors
from tasks.core.errors import LabError

CONTAINER_PORT = 5000


def status(lab) -> str:
    """'running', 'stopped' or 'absent' (from `docker ps`, never from an error message)."""
    found = containers.find(lab, lab.cfg.REGISTRY_NAME)
    if found is None:
        return "absent"
    return "running" if found.running else "stopped"


def published_port(lab) -> int | None:
    """The host port our (existing) registry container publishes for 5000/tcp, if any."""
    found = containers.find(lab, lab.cfg.REGISTRY_NAME)
    if found is not None and found.running:  # the run's container listing shows it
        return found.published(CONTAINER_PORT)
    res = lab.probe("docker", "container", "inspect", "-f", "{{json .HostConfig.PortBindings}}", lab.cfg.REGISTRY_NAME)
    try:
        bindings = json.loads(res.out or "null") or {}
        return int(bindings[f"{CONTAINER_PORT}/tcp"][0]["HostPort"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def container_id(lab) -> str:
    found = containers.find(lab, lab.cfg.REGISTRY_NAME)
    if found is None:
        raise LabError(f"registry container {lab.cfg.REGISTRY_NAME} vanished", "it was there a moment ago",
                       "run the task again")
    return found.id


def check_port_matches(lab) -> None:
    port = published_port(lab)
    if port is not None and port != lab.cfg.registry_port:
        raise LabError(f"registry container {lab.cfg.REGISTRY_NAME} publishes port {port}, not REGISTRY_PORT={lab.cfg.REGISTRY_PORT}",
                       "a container's published ports can't change",
                       f"set REGISTRY_PORT={port}, or remove it with `doit stop_docker_registry` and run again")


def is_ready(lab) -> bool:
    """Up to date when our container runs and publishes the configured port (or the remote answers)."""
    if lab.cfg.remote_registry:
        return remote_answers(lab.cfg)
    return status(lab) == "running" and published_port(lab) == lab.cfg.registry_port \
        and mirrors.is_ready(lab)


def remote_base(cfg) -> str:
    host = cfg.REGISTRY.split("/", 1)[0]
    plain = host.split(":")[0] in ("localhost", "127.0.0.1")  # a test or port-forwarded registry
    return f"{'http' if plain else 'https'}://{host}/v2/"


def remote_answers(cfg) -> bool:
    """A registry answers /v2/ with 200, or 401 when it wants credentials: both mean it is there."""
    try:
        return requests.get(remote_base(cfg), timeout=10).status_code in (200, 401)
    except requests.RequestException:
        return False


def check_remote(cfg) -> None:
    if not remote_answers(cfg):
        raise LabError(f"registry {cfg.REGISTRY} does not answer at {remote_base(cfg)}",
                       "images and the GitOps artifact are pushed there",
                       "check the name and your network, then `docker login` to it")


def api_url(cfg, path: str = "") -> str:
    return f"http://127.0.0.1:{cfg.REGISTRY_PORT}/v2/{path}"


def wait_until_serving(cfg, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(api_url(cfg), timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise LabError(f"the registry on 127.0.0.1:{cfg.REGISTRY_PORT} did not answer within {timeout:.0f}s",
                           "the container runs but its HTTP API is not up",
                           f"look at `docker logs {cfg.REGISTRY_NAME}`")
        time.sleep(0.3)


def has_manifest(cfg, repo: str, ref: str) -> str | None:
    """The digest of repo:ref in the local registry, or None. Read-only HTTP."""
    accept = ", ".join([
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ])
    try:
        res = requests.head(api_url(cfg, f"{repo}/manifests/{ref}"), headers={"Accept": accept}, timeout=5)
    except requests.RequestException:
        return None
    if res.status_code != 200:
        return None
    return res.headers.get("Docker-Content-Digest", "present")


def ensure(lab) -> dict:
    if lab.cfg.remote_registry:  # never created or deleted by the lab
        check_remote(lab.cfg)
        console.info(f"remote registry {lab.cfg.REGISTRY} answers")
        return {"registry_id": lab.cfg.REGISTRY}
    state = status(lab)
    if state == "running":
        check_port_matches(lab)
        console.info(f"registry {lab.cfg.REGISTRY_NAME} already running on 127.0.0.1:{lab.cfg.REGISTRY_PORT}")
    elif state == "stopped":
        check_port_matches(lab)
        lab.mutate("docker", "start", lab.cfg.REGISTRY_NAME, timeout=60)
    else:
        lab.mutate("docker", "run", "-d", "--restart=always",
                 "-p", f"127.0.0.1:{lab.cfg.REGISTRY_PORT}:{CONTAINER_PORT}",
                 "--network", "bridge", "--name", lab.cfg.REGISTRY_NAME,
                 "-v", f"{lab.cfg.registry_volume}:/var/lib/registry",
                 lab.cfg.REGISTRY_IMAGE, timeout=300)
    mirrored = mirrors.ensure(lab)
    if lab.dry_run and state != "running":
        return {"registry_id": "dry-run", **mirrored}
    wait_until_serving(lab.cfg)
    mirrors.check_offline(lab)
    # the mirrors' mode is part of the result: a change rewires the nodes (cluster step)
    return {"registry_id": container_id(lab), **mirrored}


def remove(lab, purge: bool = False) -> None:
    if lab.cfg.existing:
        # CLUSTER_PROVIDER=existing starts no mirrors: any on this machine serve a kind lab of the user's.
        console.info("CLUSTER_PROVIDER=existing: local mirror caches, if any, belong to another lab and stay")
    else:
        mirrors.remove(lab, purge)
    if lab.cfg.remote_registry:
        console.info(f"registry {lab.cfg.REGISTRY} is remote: the lab did not create it and leaves it alone")
        return
    if status(lab) != "absent":
        lab.mutate("docker", "rm", "-f", lab.cfg.REGISTRY_NAME, timeout=60)
    else:
        console.info(f"registry {lab.cfg.REGISTRY_NAME}: nothing to remove")
    if purge:
        vols = lab.probe("docker", "volume", "ls", "-q").out.split()
        if lab.cfg.registry_volume in vols:
            lab.mutate("docker", "volume", "rm", lab.cfg.registry_volume, timeout=60)

