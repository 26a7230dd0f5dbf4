"""Docker containers and images: present or absent, decided from exit codes and listings.

Never from an error message: Docker CLI 29 rewrote them (`Error: No such object: X` became
`error: no such object: X`), and the next release may again. A listing that exits 0 answers
"is it there?" the same way on every version; a listing that fails means Docker itself failed.
"""
from __future__ import annotations

from dataclasses import dataclass

from tasks.errors import LabError
from tasks.tools import tail

# Tab-separated: names and network lists never contain a tab.
PS_FORMAT = "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Networks}}"


@dataclass(frozen=True)
class Container:
    id: str  # full ID (`--no-trunc`), the same as `docker inspect -f {{.Id}}`
    name: str
    state: str  # created, running, paused, restarting, removing, exited, dead
    networks: tuple[str, ...]

    @property
    def running(self) -> bool:
        return self.state == "running"


def _docker_failed(what: str, res) -> LabError:
    return LabError(f"`docker {what}` failed with exit code {res.rc}", tail(res.err or res.out) or "it printed nothing",
                    "is Docker running? try `docker info`")


def find(t, name: str) -> Container | None:
    """The container named exactly NAME, or None when there is none."""
    # The name filter is a regular expression over the name (with and without its leading
    # '/'); anchor it, and escape '.', the one regex character a container name may hold.
    pattern = "^" + name.replace(".", r"\.") + "$"
    res = t.probe("docker", "ps", "--all", "--no-trunc", "--filter", f"name={pattern}", "--format", PS_FORMAT,
                  check=False, timeout=60)
    if not res.ok:
        raise _docker_failed(f"ps --filter name={pattern}", res)
    for line in res.out.splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        cid, names, state, networks = fields
        if name in names.split(","):
            return Container(cid, name, state, tuple(n for n in networks.split(",") if n))
    return None


def image_present(t, ref: str) -> bool:
    """Is the image REF (name:tag) in the local image store?"""
    res = t.probe("docker", "image", "ls", "--quiet", ref, check=False, timeout=60)
    if not res.ok:
        raise _docker_failed(f"image ls {ref}", res)
    return bool(res.out.strip())
