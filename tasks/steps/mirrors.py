"""Local registry mirrors: a recreated cluster pulls nothing twice, and the lab runs offline.

MIRRORS=on: one pull-through cache per upstream the cluster pulls from (docker.io, ghcr.io,
registry.k8s.io, quay.io): a registry container with `proxy.remoteurl`, its data in a volume.
Each node's containerd is told through `hosts.toml` (containerd's registry host config, the
upstream way kind documents for mirrors) to try the mirror first and the upstream second.
MIRRORS=offline: the same containers as plain registries, filled by `doit mirror_fill`;
the nodes' containerd is pointed at the mirror only, so nothing ever reaches out.
MIRRORS=off (default): nodes pull from the upstreams directly, as plain kind does.

Helm charts published as OCI artifacts (kube-prometheus-stack's) are pulled by Flux's
source-controller, not by containerd: with mirrors, the infrastructure Kustomization patches
their OCIRepository to the mirror of its registry, and `doit mirror_fill` copies them too.

The volumes outlive `inv teardown` (that is the point); PURGE=1 removes them.
Images the host's Docker runs (the kind node image, the registry, the app's base image)
are not pulled by the nodes and are kept by Docker itself.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import requests

from tasks.core import console, containers, names
from tasks.core.errors import LabError

CONTAINER_PORT = 5000
LABEL_FOR = names.MIRROR_FOR_LABEL
LABEL_MODE = names.MIRROR_MODE_LABEL


@dataclass(frozen=True)
class Upstream:
    host: str     # as image references name it
    remote: str   # what a pull-through cache fetches from
    offset: int   # host port = REGISTRY_PORT + offset


UPSTREAMS = (
    Upstream("docker.io", "https://registry-1.docker.io", 1),
    Upstream("ghcr.io", "https://ghcr.io", 2),
    Upstream("registry.k8s.io", "https://registry.k8s.io", 3),
    Upstream("quay.io", "https://quay.io", 4),
)


def host_urls(value: str) -> dict[str, str]:
    """A host=URL[,host=URL] setting (MIRROR_REMOTES, CHART_MIRRORS) as host → URL, no trailing slash."""
    return {host.strip(): url.strip().rstrip("/") for host, sep, url in
            (item.partition("=") for item in value.split(",")) if sep}


def remote(cfg, up: Upstream) -> str:
    """What the mirror of `up` fetches from: MIRROR_REMOTES' URL for its host, else the registry itself."""
    return host_urls(cfg.MIRROR_REMOTES).get(up.host, up.remote).rstrip("/")


def enabled(cfg) -> bool:
    return cfg.MIRRORS != "off" and not cfg.existing


def container(cfg, up: Upstream) -> str:
    return f"{cfg.REGISTRY_NAME}-mirror-{up.host.replace('.', '-')}"


def volume(cfg, up: Upstream) -> str:
    return f"{container(cfg, up)}-data"


def port(cfg, up: Upstream) -> int:
    return cfg.registry_port + up.offset


def ports(cfg) -> list[int]:
    return [port(cfg, up) for up in UPSTREAMS] if enabled(cfg) else []


# --- image references ------------------------------------------------------------

def split_ref(ref: str) -> tuple[str, str, str]:
    """(registry host, repository path, tag or digest) the way Docker normalises names."""
    name, sep, ref_part = ref.partition("@")
    if sep:
        tag = ref_part
        name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    else:
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = name.rsplit(":", 1)
        else:
            tag = "latest"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "docker.io", name
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = "docker.io"
    if host == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return host, path, tag


def upstream_of(ref: str) -> Upstream | None:
    host = split_ref(ref)[0]
    return next((up for up in UPSTREAMS if up.host == host), None)


# --- containers --------------------------------------------------------------------

def listing(lab) -> dict[str, dict]:
    """This lab's mirror containers: name → {state, mode, networks}, decided by their labels, from the
    run's one container listing (containers.listing: the registry and the kind nodes are in it too)."""
    return {c.name: {"state": c.state, "mode": c.mirror_mode, "networks": set(c.networks)}
            for c in containers.listing(lab).values() if c.mirror_for == lab.cfg.REGISTRY_NAME}


def run_args(cfg, up: Upstream) -> list[str]:
    args = ["run", "-d", "--restart=always", "--name", container(cfg, up),
            "--label", f"{LABEL_FOR}={cfg.REGISTRY_NAME}", "--label", f"{LABEL_MODE}={cfg.MIRRORS}",
            "-p", f"127.0.0.1:{port(cfg, up)}:{CONTAINER_PORT}", "--network", "bridge",
            "-v", f"{volume(cfg, up)}:/var/lib/registry"]
    if cfg.MIRRORS == "on":
        # distribution's pull-through cache: serves what it has, fetches and keeps the rest.
        args += ["-e", f"REGISTRY_PROXY_REMOTEURL={remote(cfg, up)}"]
    return [*args, cfg.REGISTRY_IMAGE]


def in_cluster(cfg, up: Upstream) -> str:
    """The mirror as the cluster's pods reach it (by name, on kind's network)."""
    return f"{container(cfg, up)}:{CONTAINER_PORT}"


def is_ready(lab) -> bool:
    if not enabled(lab.cfg):
        return True
    have = listing(lab)
    return all(have.get(container(lab.cfg, up), {}).get("state") == "running"
               and have[container(lab.cfg, up)]["mode"] == lab.cfg.MIRRORS for up in UPSTREAMS)


def ensure(lab) -> dict:
    """Each mirror running in the mode asked for; a mode change recreates the container, never the data."""
    if not enabled(lab.cfg):
        return {"mirrors": "off"}
    have = listing(lab)
    for up in UPSTREAMS:
        name = container(lab.cfg, up)
        now = have.get(name)
        if now and now["mode"] != lab.cfg.MIRRORS:
            console.info(f"mirror {name}: mode {now['mode']} → {lab.cfg.MIRRORS} (its data volume is kept)")
            lab.mutate("docker", "rm", "-f", name, timeout=60)
            now = None
        if now is None:
            lab.mutate("docker", *run_args(lab.cfg, up), timeout=300)
        elif now["state"] != "running":
            lab.mutate("docker", "start", name, timeout=60)
    if not lab.dry_run:
        for up in UPSTREAMS:
            wait_serving(lab.cfg, up)
    return {"mirrors": lab.cfg.MIRRORS}


def wait_serving(cfg, up: Upstream, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port(cfg, up)}/v2/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            why = ("a pull-through cache (distribution) exits at start when it cannot reach its upstream "
                   f"{remote(cfg, up)}" if cfg.MIRRORS == "on" else "the container runs but its HTTP API is not up")
            raise LabError(f"mirror {container(cfg, up)} does not answer on 127.0.0.1:{port(cfg, up)}", why,
                           f"see `docker logs {container(cfg, up)}`; offline, use MIRRORS=offline "
                           "(filled by `doit mirror_fill` while online)")
        time.sleep(0.3)


def connect(lab) -> None:
    """Nodes reach the mirrors by name on kind's network."""
    if not enabled(lab.cfg) or lab.dry_run:
        return
    for name, row in sorted(listing(lab).items()):
        if "kind" not in row["networks"]:
            lab.mutate("docker", "network", "connect", "kind", name, timeout=30)


def remove(lab, purge: bool = False) -> None:
    have = listing(lab)
    if have:
        lab.mutate("docker", "rm", "-f", *sorted(have), timeout=120)
    if purge:
        vols = set(lab.probe("docker", "volume", "ls", "-q").out.split())
        gone = [volume(lab.cfg, up) for up in UPSTREAMS if volume(lab.cfg, up) in vols]
        if gone:
            lab.mutate("docker", "volume", "rm", *gone, timeout=120)
    elif have:
        console.info("mirror caches kept in their volumes (PURGE=1 removes them)")


# --- the nodes' containerd ------------------------------------------------------------

def hosts_toml(cfg, up: Upstream) -> str:
    mirror = f"http://{in_cluster(cfg, up)}"
    # offline: the mirror is the server too, so containerd has nowhere else to go.
    server = mirror if cfg.MIRRORS == "offline" else remote(cfg, up)
    return (f'server = "{server}"\n\n'
            f'[host."{mirror}"]\n'
            f'  capabilities = ["pull", "resolve"]\n')


def node_files(cfg) -> dict[str, str]:
    if not enabled(cfg):
        return {}
    return {f"/etc/containerd/certs.d/{up.host}/hosts.toml": hosts_toml(cfg, up) for up in UPSTREAMS}


# --- what the lab needs, and what the mirrors hold ---------------------------------------

IMAGE_LINE = re.compile(r"^\s*(?:-\s*)?image:\s*['\"]?([^'\"\s]+)", re.M)


def images_in(text: str) -> set[str]:
    return set(IMAGE_LINE.findall(text))


def needed_images(lab) -> list[str]:
    """Every image the cluster pulls at the pinned versions, known before anything runs: read from
    what the lab applies (metrics-server's manifests, Flux's install), the pinned debug images and,
    with MONITORING=full, kube-prometheus-stack's pinned images under the lab's values."""
    from tasks import versions
    from tasks.steps import metrics_server, stack_images
    found: set[str] = set()
    found |= images_in(lab.probe("kubectl", "kustomize", str(metrics_server.MANIFESTS), timeout=60).out)
    found |= images_in(lab.probe("flux", "install", "--export", timeout=60).out)
    found |= {versions.DEBUG_IMAGE, versions.CURL_IMAGE}
    if lab.cfg.MONITORING == "full":
        found |= set(stack_images.needed().values())
    return sorted(ref for ref in found if upstream_of(ref))


def manifest_url(cfg, ref: str) -> str:
    up = upstream_of(ref)
    _, path, tag = split_ref(ref)
    return f"http://127.0.0.1:{port(cfg, up)}/v2/{path}/manifests/{tag}"


ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def held(cfg, ref: str) -> bool:
    """Read-only HTTP HEAD. A pull-through cache answers for what it can fetch, so in
    MIRRORS=on a 200 may mean 'fetchable', which is what a pull needs."""
    try:
        return requests.head(manifest_url(cfg, ref), headers={"Accept": ACCEPT}, timeout=10).status_code == 200
    except requests.RequestException:
        return False


def status_rows(lab) -> list[list[str]]:
    return [[ref, container(lab.cfg, upstream_of(ref)), "present" if held(lab.cfg, ref) else "MISSING"]
            for ref in [*needed_images(lab), *(c.ref for c in chart_sources(lab.cfg))]]


def check_offline(lab) -> None:
    """MIRRORS=offline: refuse before the cluster pulls, naming every image (and chart) missing."""
    if lab.cfg.MIRRORS != "offline" or lab.dry_run:
        return
    images = [ref for ref in needed_images(lab) if not held(lab.cfg, ref)]
    charts = [c.ref for c in chart_sources(lab.cfg) if not held(lab.cfg, c.ref)]
    missing = images + charts
    if missing:
        counted = " and ".join(f"{n} {word}{'s' if n > 1 else ''}" for n, word in
                               ((len(images), "image"), (len(charts), "chart")) if n)
        what = (f"{missing[0]} is not in its mirror" if len(missing) == 1
                else f"{counted} are not in their mirrors: {', '.join(missing)}")
        raise LabError(f"MIRRORS=offline: {what}", "offline, the nodes pull only from the local mirrors",
                       "run `doit mirror_fill` while online (`doit mirror_status` lists what is missing)")


def fill(lab) -> None:
    """Copy every needed image into its mirror: pulled through it (on) or pushed from Docker (offline).
    One image that cannot be had does not stop the others; the run fails at the end, naming it."""
    if not enabled(lab.cfg):
        raise LabError("MIRRORS is off", "there are no mirrors to fill", "run with MIRRORS=on or MIRRORS=offline")
    ensure(lab)
    copied, already, failed = 0, 0, []
    charts = {c.ref for c in chart_sources(lab.cfg)}
    for ref in [*needed_images(lab), *sorted(charts)]:
        if held(lab.cfg, ref) and lab.cfg.MIRRORS == "offline":
            already += 1
            continue
        try:
            if ref in charts:
                copy_artifact(lab.cfg, ref)
            else:
                copy_one(lab, ref)
            copied += 1
        except LabError as exc:
            console.warn(f"{ref}: {exc.what}")
            failed.append(ref)
    if failed:
        what = (f"{failed[0]} could not be copied into its mirror" if len(failed) == 1
                else f"{len(failed)} images could not be copied into their mirrors: {', '.join(failed)}")
        raise LabError(what,
                       f"{copied} copied, {already} already there; it could neither be found nor pulled",
                       "check the network (or `docker load` the image), then run `doit mirror_fill` again")
    console.ok(f"mirrors filled: {copied} copied, {already} already there")


def copy_one(lab, ref: str) -> None:
    up = upstream_of(ref)
    _, path, tag = split_ref(ref)
    local_ref = f"127.0.0.1:{port(lab.cfg, up)}/{path}" + (f"@{tag}" if tag.startswith("sha256:") else f":{tag}")
    if lab.cfg.MIRRORS == "on":  # a pull through the cache is what fills it
        lab.mutate("docker", "pull", "-q", local_ref, timeout=900)
    else:
        have = lab.probe("docker", "image", "inspect", "--format", "{{.Id}}", ref, check=False)
        if not have.ok:
            lab.mutate("docker", "pull", "-q", ref, timeout=900)
        lab.mutate("docker", "tag", ref, local_ref, timeout=60)
        lab.mutate("docker", "push", "-q", local_ref, timeout=900)
    lab.mutate("docker", "rmi", local_ref, timeout=60, check=False)


# --- Helm charts as OCI artifacts ---------------------------------------------------------------

@dataclass(frozen=True)
class ChartSource:
    namespace: str
    name: str
    url: str      # oci://host/path
    tag: str

    @property
    def ref(self) -> str:
        return f"{self.url.removeprefix('oci://')}:{self.tag}"


def chart_sources(cfg) -> list[ChartSource]:
    """The charts the lab's mirrors hold (`doit mirror_fill` copies them): none without mirrors."""
    return declared_chart_sources(cfg) if enabled(cfg) else []


def declared_chart_sources(cfg) -> list[ChartSource]:
    """The OCIRepositories on an upstream registry in the infrastructure layer MONITORING picks,
    read from flux-cd/ (where they are declared) — kube-prometheus-stack's chart with `full`."""
    import yaml

    from tasks.core import names
    from tasks.steps import sync
    layer = names.GITOPS_DIR / sync.INFRASTRUCTURE_PATHS[cfg.MONITORING]
    found = []
    for path in sorted(layer.rglob("*.yaml")):
        if cfg.MONITORING != "full" and path.parent != layer:
            continue  # crds/ and off/ are flat layers; full holds every folder
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "OCIRepository":
                continue
            url, tag = doc["spec"]["url"], (doc["spec"].get("ref") or {}).get("tag")
            if tag and upstream_of(url.removeprefix("oci://") + ":" + tag):
                found.append(ChartSource(doc["metadata"].get("namespace", "flux-system"), doc["metadata"]["name"],
                                         url, str(tag)))
    return found


def point_charts_at_mirrors(docs: list[dict], cfg) -> list[dict]:
    """The bootstrap's infrastructure Kustomization reads its chart sources from the mirrors (CHART_MIRRORS'
    or the lab's)."""
    from tasks.core import names
    patches = chart_patches(cfg)
    for doc in docs:
        if patches and doc.get("kind") == "Kustomization" and doc["metadata"]["name"] == names.INFRASTRUCTURE:
            doc["spec"].setdefault("patches", []).extend(patches)
    return docs


def chart_patches(cfg) -> list[dict]:
    """Patches for the infrastructure Kustomization: each chart source read from CHART_MIRRORS' URL
    for its registry, else from the lab's mirror of it (MIRRORS on/offline), else left as declared."""
    patches = []
    given = host_urls(cfg.CHART_MIRRORS)
    for src in declared_chart_sources(cfg):
        ref = src.ref
        up = upstream_of(ref)
        _, path, _ = split_ref(ref)
        if up.host in given:
            scheme, _, where = given[up.host].partition("://")
            spec = {"url": f"oci://{where}/{path}", **({"insecure": True} if scheme == "http" else {})}
        elif enabled(cfg):
            spec = {"url": f"oci://{in_cluster(cfg, up)}/{path}", "insecure": True}
        else:
            continue
        patch = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                 "metadata": {"name": src.name, "namespace": src.namespace}, "spec": spec}
        patches.append({"patch": json.dumps(patch), "target": {"kind": "OCIRepository", "name": src.name,
                                                                "namespace": src.namespace}})
    return patches


def _get(session: requests.Session, url: str, **kw) -> requests.Response:
    """GET, answering a registry's bearer-token challenge once (anonymous pull, as ghcr.io wants)."""
    res = session.get(url, timeout=60, **kw)
    challenge = res.headers.get("WWW-Authenticate", "")
    if res.status_code == 401 and challenge.lower().startswith("bearer "):
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        token = session.get(params.pop("realm"), params=params, timeout=30)
        token.raise_for_status()
        body = token.json()
        session.headers["Authorization"] = f"Bearer {body.get('token') or body.get('access_token')}"
        res = session.get(url, timeout=60, **kw)
    return res


def copy_artifact(cfg, ref: str) -> None:
    """An OCI artifact (a Helm chart) into its mirror, over the distribution API: through the
    pull-through cache when MIRRORS=on (reading it is what fills it), else read from the upstream
    (or MIRROR_REMOTES') and pushed to the mirror. Docker can't: a chart is not an image."""
    up = upstream_of(ref)
    _, path, tag = split_ref(ref)
    mirror = f"http://127.0.0.1:{port(cfg, up)}"
    src = mirror if cfg.MIRRORS == "on" else remote(cfg, up)
    session = requests.Session()
    try:
        man = _get(session, f"{src}/v2/{path}/manifests/{tag}", headers={"Accept": ACCEPT})
        if man.status_code != 200:
            raise LabError(f"{ref}: manifest not readable from {src} (HTTP {man.status_code})",
                           man.text.strip()[:200],
                           "check the network and the chart's version in flux-cd/")
        doc = man.json()
        blobs = [doc["config"], *doc.get("layers", [])]
        for blob in blobs:
            data = _get(session, f"{src}/v2/{path}/blobs/{blob['digest']}")
            if data.status_code != 200:
                raise LabError(f"{ref}: blob {blob['digest'][:19]} not readable from {src} "
                               f"(HTTP {data.status_code})", data.text[:200], "run `doit mirror_fill` again")
            if src != mirror:
                _push_blob(mirror, path, blob["digest"], data.content)
        if src != mirror:
            put = requests.put(f"{mirror}/v2/{path}/manifests/{tag}", data=man.content, timeout=60,
                               headers={"Content-Type": doc.get("mediaType") or man.headers["Content-Type"]})
            if put.status_code not in (200, 201):
                raise LabError(f"{ref}: the mirror refused the manifest (HTTP {put.status_code})", put.text[:200],
                               f"see `docker logs {container(cfg, up)}`")
    except requests.RequestException as exc:
        raise LabError(f"{ref} could not be copied", str(exc)[:200], "check the network") from None


def _push_blob(base: str, path: str, digest: str, data: bytes) -> None:
    if requests.head(f"{base}/v2/{path}/blobs/{digest}", timeout=30).status_code == 200:
        return
    start = requests.post(f"{base}/v2/{path}/blobs/uploads/", timeout=30)
    if start.status_code != 202:
        raise LabError(f"the mirror refused an upload (HTTP {start.status_code})", start.text[:200],
                       "see the mirror's `docker logs`")
    location = start.headers["Location"]
    location = location if location.startswith("http") else base + location
    sep = "&" if "?" in location else "?"
    put = requests.put(f"{location}{sep}digest={digest}", data=data, timeout=300,
                       headers={"Content-Type": "application/octet-stream"})
    if put.status_code != 201:
        raise LabError(f"the mirror refused blob {digest[:19]} (HTTP {put.status_code})", put.text[:200],
                       "see the mirror's `docker logs`")
