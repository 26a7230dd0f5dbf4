"""The registry step's HTTP checks against a REAL registry server (Debian's docker-registry,
the same distribution code as the registry:3 image). Skipped, with the reason, where absent."""
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
from tasks.steps import registry

BINARY = shutil.which("docker-registry")
pytestmark = pytest.mark.skipif(not BINARY, reason="docker-registry not installed (apt-get install docker-registry)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def real_registry(tmp_path):
    port = free_port()
    cfg_file = tmp_path / "config.yml"
    cfg_file.write_text(f"""version: 0.1
storage:
  filesystem:
    rootdirectory: {tmp_path / 'data'}
http:
  addr: 127.0.0.1:{port}
log:
  level: error
""")
    proc = subprocess.Popen([BINARY, "serve", str(cfg_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = config.load({"REGISTRY_PORT": str(port)}, {})
    try:
        registry.wait_until_serving(cfg, timeout=20)
        yield cfg
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def push(cfg, repo: str, tag: str) -> str:
    """Push a minimal OCI image (config blob + manifest) over the distribution API."""
    base = registry.api_url(cfg)
    blob = b"{}"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    start = requests.post(f"{base}{repo}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    location = location if location.startswith("http") else f"http://127.0.0.1:{cfg.REGISTRY_PORT}{location}"
    sep = "&" if "?" in location else "?"
    put = requests.put(f"{location}{sep}digest={digest}", data=blob,
                       headers={"Content-Type": "application/octet-stream"}, timeout=10)
    assert put.status_code == 201, put.text
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest, "size": len(blob)},
                           "layers": []}).encode()
    res = requests.put(f"{base}{repo}/manifests/{tag}", data=manifest,
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, timeout=10)
    assert res.status_code == 201, res.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_has_manifest_reports_the_digest_of_a_pushed_tag(real_registry):
    digest = push(real_registry, "lab-app", "0123456789ab")
    assert registry.has_manifest(real_registry, "lab-app", "0123456789ab") == digest


def test_missing_tag_or_repository_is_none(real_registry):
    push(real_registry, "lab-app", "one")
    assert registry.has_manifest(real_registry, "lab-app", "two") is None
    assert registry.has_manifest(real_registry, "other", "one") is None


def test_same_content_under_two_tags_has_one_digest(real_registry):
    # how `sync` knows `latest` already points at the content it would push
    digest = push(real_registry, "lab-gitops", "8adfc344ef02")
    assert push(real_registry, "lab-gitops", "latest") == digest
    assert registry.has_manifest(real_registry, "lab-gitops", "latest") == \
        registry.has_manifest(real_registry, "lab-gitops", "8adfc344ef02")


def test_wait_until_serving_fails_clearly_when_nothing_answers():
    cfg = config.load({"REGISTRY_PORT": str(free_port())}, {})
    started = time.monotonic()
    with pytest.raises(Exception, match="did not answer within 1s"):
        registry.wait_until_serving(cfg, timeout=1)
    assert time.monotonic() - started < 5
