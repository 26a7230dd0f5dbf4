"""Helm charts into the mirrors over the distribution API, against REAL registry servers
(Debian's docker-registry: the same distribution code as registry:3, pull-through cache included).
Skipped, with the reason, where absent."""
from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time

import pytest
import requests

from tasks.core import config
from tasks.steps import mirrors, registry

BINARY = shutil.which("docker-registry")
pytestmark = pytest.mark.skipif(not BINARY, reason="docker-registry not installed (apt-get install docker-registry)")

REPO = "prometheus-community/charts/kube-prometheus-stack"
CHART = f"ghcr.io/{REPO}:88.5.3"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def free_block() -> int:
    """A port p with p+2 free too (the ghcr.io mirror sits at REGISTRY_PORT+2)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 2))
            return p
        except OSError:
            continue
    raise RuntimeError("no free ports")


@pytest.fixture
def serve(tmp_path):
    procs = {}

    def start(port: int, name: str, proxy: str = "") -> str:
        cfg_file = tmp_path / f"{name}.yml"
        proxy_cfg = f"proxy:\n  remoteurl: {proxy}\n" if proxy else ""
        cfg_file.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / name}\n"
                            f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n{proxy_cfg}")
        procs[name] = subprocess.Popen([BINARY, "serve", str(cfg_file)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        registry.wait_until_serving(config.load({"REGISTRY_PORT": str(port)}, {}), timeout=20)
        return f"http://127.0.0.1:{port}"

    def stop(name: str) -> None:
        procs[name].terminate()
        procs[name].wait(timeout=10)

    start.stop = stop
    yield start
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=10)


def push_chart(base: str) -> bytes:
    """The chart as `helm push` stores it: a helm config blob and one chart layer."""
    blobs = {"application/vnd.cncf.helm.config.v1+json": b'{"name":"kube-prometheus-stack","version":"88.5.3"}',
             HELM_CONTENT: b"\x1f\x8b chart bytes"}
    descs = []
    for media, data in blobs.items():
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = requests.post(f"{base}/v2/{REPO}/blobs/uploads/", timeout=10)
        loc = start.headers["Location"]
        loc = loc if loc.startswith("http") else base + loc
        put = requests.put(f"{loc}{'&' if '?' in loc else '?'}digest={digest}", data=data, timeout=10)
        assert put.status_code == 201, put.text
        descs.append({"mediaType": media, "digest": digest, "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": descs[0], "layers": descs[1:]}).encode()
    res = requests.put(f"{base}/v2/{REPO}/manifests/88.5.3", data=manifest,
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, timeout=10)
    assert res.status_code == 201, res.text
    return manifest


def mirror_cfg(port: int, mode: str, upstream: str):
    return config.load({"REGISTRY_PORT": str(port), "MIRRORS": mode, "MIRROR_REMOTES": f"ghcr.io={upstream}"}, {})


def test_offline_fill_copies_the_chart_byte_for_byte_and_status_sees_it(serve):
    upstream = serve(free_block(), "upstream")
    manifest = push_chart(upstream)
    port = free_block()
    serve(port + 2, "mirror")  # a plain registry, as MIRRORS=offline runs it
    cfg = mirror_cfg(port, "offline", upstream)
    assert not mirrors.held(cfg, CHART)
    mirrors.copy_artifact(cfg, CHART)
    assert mirrors.held(cfg, CHART)
    got = requests.get(f"http://127.0.0.1:{port + 2}/v2/{REPO}/manifests/88.5.3",
                       headers={"Accept": mirrors.ACCEPT}, timeout=10)
    assert got.content == manifest
    layer = json.loads(manifest)["layers"][0]["digest"]
    assert requests.get(f"http://127.0.0.1:{port + 2}/v2/{REPO}/blobs/{layer}", timeout=10).content \
        == b"\x1f\x8b chart bytes"
    mirrors.copy_artifact(cfg, CHART)  # again: nothing to do, no error


def test_on_fill_reads_through_the_pull_through_cache_which_then_serves_it_without_upstream(serve, tmp_path):
    upstream = serve(free_block(), "upstream")
    manifest = push_chart(upstream)
    port = free_block()
    serve(port + 2, "mirror", proxy=upstream)
    cfg = mirror_cfg(port, "on", upstream)
    mirrors.copy_artifact(cfg, CHART)
    # distribution stores a proxied blob from a second fetch of its own, just after it served it:
    # wait until the cache's storage holds the chart layer, then take the upstream away
    layer = json.loads(manifest)["layers"][0]["digest"]
    stored = tmp_path / "mirror" / "docker" / "registry" / "v2" / "blobs" / "sha256" / layer[7:9] / layer[7:] / "data"
    deadline = time.monotonic() + 20
    while not stored.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored.exists(), "the pull-through cache did not keep the chart it served"
    serve.stop("upstream")
    got = requests.get(f"http://127.0.0.1:{port + 2}/v2/{REPO}/manifests/88.5.3",
                       headers={"Accept": mirrors.ACCEPT}, timeout=10)
    assert got.status_code == 200 and got.content == manifest
    assert requests.get(f"http://127.0.0.1:{port + 2}/v2/{REPO}/blobs/{layer}", timeout=10).content \
        == b"\x1f\x8b chart bytes"


def test_a_missing_chart_is_one_clear_error(serve):
    upstream = serve(free_block(), "upstream")
    port = free_block()
    serve(port + 2, "mirror")
    with pytest.raises(mirrors.LabError, match=r"manifest not readable from .*\(HTTP 404\)"):
        mirrors.copy_artifact(mirror_cfg(port, "offline", upstream), CHART)
