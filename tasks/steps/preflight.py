"""Checks before anything changes: binaries and versions, Docker, the registry port."""
from __future__ import annotations

import socket
import sys

from tasks.core import console, parallel
from tasks.steps import mirrors, registry
from tasks.core.errors import LabError

TOOLS = ("docker", "kind", "kubectl", "flux")


def needed_tools(cfg) -> tuple[str, ...]:
    return tuple(t for t in TOOLS if not (t == "kind" and cfg.existing))


def check_binaries(lab) -> dict[str, str]:
    found = {}
    for tool in needed_tools(lab.cfg):
        found[tool] = lab.check_version(tool)
    return found


def check_docker_daemon(lab) -> str:
    """The daemon's version, from the answer check_version("docker") already has (one call for both)."""
    res = lab.version_answer("docker")
    server = res.out.strip().partition("|")[2].strip()
    if not res.ok or not server:
        why = (res.err.strip().splitlines() or ["no answer"])[-1]
        raise LabError("the Docker daemon is not reachable", why,
                       "start Docker Desktop (macOS) or the docker service (`sudo systemctl start docker`), "
                       "then run again")
    return server


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Free = nothing listens there and we could bind it as Docker would.

    SO_REUSEADDR, as Docker's proxy uses, so connections in TIME_WAIT from a registry
    that just stopped do not count as busy; the connect test catches listeners bound
    to the wildcard address (macOS AirPlay on *:5000), which a BSD bind would let pass.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_busy_error(port: int, mirror_of: str = "") -> LabError:
    if mirror_of:  # mirrors sit at REGISTRY_PORT+1..+4
        return LabError(f"port {port} on 127.0.0.1 is already in use by another process",
                        f"the local mirror of {mirror_of} publishes its API there (REGISTRY_PORT+1 to +4)",
                        "free it, or move the registry and its mirrors: `doit setup REGISTRY_PORT=<another port>`")
    hint = f"free it, or pick another port: `doit setup REGISTRY_PORT={port + 1 if port < 65535 else 5001}`"
    if sys.platform == "darwin" or port in (5000, 7000):
        hint += ("; on macOS, AirPlay Receiver holds ports 5000 and 7000 (System Settings → General → "
                 "AirDrop & Handoff → AirPlay Receiver)")
    return LabError(f"port {port} on 127.0.0.1 is already in use by another process",
                    "the local registry publishes its API there", hint)


def check_registry_port(lab) -> str:
    if lab.cfg.remote_registry:
        registry.check_remote(lab.cfg)
        return f"not needed (remote registry {lab.cfg.REGISTRY} answers)"
    if registry.status(lab) == "running" and registry.published_port(lab) == lab.cfg.registry_port:
        return f"published by {lab.cfg.REGISTRY_NAME}"
    if not port_is_free(lab.cfg.registry_port):
        raise port_busy_error(lab.cfg.registry_port)
    return "free"


def check_mirror_ports(lab) -> str:
    if not mirrors.enabled(lab.cfg):
        return ""
    ours = {name for name, row in mirrors.listing(lab).items() if row["state"] == "running"}
    for up in mirrors.UPSTREAMS:
        if mirrors.container(lab.cfg, up) not in ours and not port_is_free(mirrors.port(lab.cfg, up)):
            raise port_busy_error(mirrors.port(lab.cfg, up), up.host)
    return f"mirror ports {min(mirrors.ports(lab.cfg))}-{max(mirrors.ports(lab.cfg))}: free or ours"


def check_deps(lab) -> None:
    # Four short commands, asked side by side (every run starts with them, a no-op too); docker's answers
    # for the daemon too. A failure is reported in this order: a missing docker before a missing kind,
    # before the daemon.
    tools = needed_tools(lab.cfg)
    versions = parallel.side_by_side(lambda tool: lab.check_version(tool), tools)
    daemon = check_docker_daemon(lab)
    console.info("tools: " + ", ".join(f"{k} {v}" for k, v in zip(tools, versions)))
    console.info(f"docker daemon: {daemon}")


def run(lab) -> None:
    check_deps(lab)
    console.info(f"registry {'' if lab.cfg.remote_registry else 'port ' + lab.cfg.REGISTRY_PORT}: "
                 f"{check_registry_port(lab)}")
    mirror_ports = check_mirror_ports(lab)
    if mirror_ports:
        console.info(mirror_ports)
