"""Docker containers and images: present or absent, decided from exit codes and listings.

Never from an error message: Docker CLI 29 rewrote them (`Error: No such object: X` became
`error: no such object: X`), and the next release may again. A listing that exits 0 answers
"is it there?" the same way on every version; a listing that fails means Docker itself failed.
"""
from __future__ import annotations

from dataclasses import dataclass

from tasks.core import names
from tasks.core.errors import LabError
from tasks.core.tools import tail

# Tab-separated: names, network and port lists never contain a tab.
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"  # what `kind get clusters` and `kind get nodes` list by
# The mirrors' labels too: the mirror containers come from the same listing (one `docker ps` per run).
LABELS = (KIND_CLUSTER_LABEL, names.MIRROR_FOR_LABEL, names.MIRROR_MODE_LABEL)
LIST_FORMAT = "\t".join(("{{.ID}}", "{{.Names}}", "{{.State}}", "{{.Networks}}", "{{.Ports}}",
                         *('{{.Label "%s"}}' % label for label in LABELS)))


@dataclass(frozen=True)
class Container:
    id: str  # full ID (`--no-trunc`), the same as `docker inspect -f {{.Id}}`
    name: str
    state: str  # created, running, paused, restarting, removing, exited, dead
    networks: tuple[str, ...]
    ports: tuple[str, ...] = ()  # as `docker ps` shows them: `127.0.0.1:5001->5000/tcp` (running only)
    kind_cluster: str = ""  # the kind cluster this container is a node of
    mirror_for: str = ""  # the lab (REGISTRY_NAME) this container is a registry mirror of
    mirror_mode: str = ""  # that mirror's MIRRORS mode

    @property
    def running(self) -> bool:
        return self.state == "running"

    def published(self, container_port: int, proto: str = "tcp") -> int | None:
        """The host port a running container publishes CONTAINER_PORT on (Docker lists ports of running
        containers only: a stopped one answers None, ask `docker container inspect` for its bindings)."""
        for entry in self.ports:
            host, arrow, target = entry.partition("->")
            if arrow and target == f"{container_port}/{proto}":
                try:
                    return int(host.rsplit(":", 1)[1])
                except (IndexError, ValueError):
                    continue
        return None


def _docker_failed(what: str, res) -> LabError:
    return LabError(f"`docker {what}` failed with exit code {res.rc}", tail(res.err or res.out) or "it printed nothing",
                    "is Docker running? try `docker info`")


def listing(lab) -> dict[str, Container]:
    """Every container of this Docker host by name, from one `docker ps --all` per run.

    Steps share it (the registry, the kind nodes and the cluster's identity are all in it);
    any docker or kind command forgets it (Tools.forget), so it never outlives a change.
    """
    if "containers" not in lab.memo:
        res = lab.probe("docker", "ps", "--all", "--no-trunc", "--format", LIST_FORMAT, check=False, timeout=60)
        if not res.ok:
            raise _docker_failed("ps --all", res)
        found = {}
        for line in res.out.splitlines():
            fields = line.split("\t")
            if len(fields) != 5 + len(LABELS):
                continue
            cid, listed, state, networks, ports, kind_cluster, mirror_for, mirror_mode = fields
            for name in listed.split(","):
                found[name] = Container(cid, name, state, tuple(n for n in networks.split(",") if n),
                                        tuple(p.strip() for p in ports.split(",") if p.strip()), kind_cluster,
                                        mirror_for, mirror_mode)
        lab.memo["containers"] = found
    return lab.memo["containers"]


def find(lab, name: str) -> Container | None:
    """The container named exactly NAME, or None when there is none."""
    return listing(lab).get(name)


def kind_nodes(lab, cluster: str) -> list[Container]:
    """The node containers of kind cluster CLUSTER, as `kind get nodes` finds them (by their label)."""
    return sorted((c for c in listing(lab).values() if c.kind_cluster == cluster), key=lambda c: c.name)


def image_present(lab, ref: str) -> bool:
    """Is the image REF (name:tag) in the local image store? Asked once per run until docker changes something."""
    seen = lab.memo.setdefault("images", {})
    if ref not in seen:
        res = lab.probe("docker", "image", "ls", "--quiet", ref, check=False, timeout=60)
        if not res.ok:
            raise _docker_failed(f"image ls {ref}", res)
        seen[ref] = bool(res.out.strip())
    return seen[ref]
