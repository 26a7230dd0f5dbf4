"""What the real flux CLI 2.9.4 does, as the kit's build showed it (hack/kit/parts/flux.sh),
and the fake now does too."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import FakeWorld

FAKE_BIN = Path(__file__).resolve().parents[1] / "fakes" / "bin"


@pytest.fixture
def world(tmp_path):
    w = FakeWorld(tmp_path / "fake")
    yield w
    w.kill_background()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flux(world, *args, cwd=None):
    env = world.env({"PATH": f"{FAKE_BIN}:/usr/bin:/bin"})
    return subprocess.run([sys.executable, str(FAKE_BIN / "flux"), *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def docker(world, *args):
    env = world.env({"PATH": f"{FAKE_BIN}:/usr/bin:/bin"})
    return subprocess.run([sys.executable, str(FAKE_BIN / "docker"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def push(world, port, path, *extra):
    return flux(world, "push", "artifact", f"oci://localhost:{port}/lab-gitops:t1", f"--path={path}",
                "--source=file:///repo", "--revision=local@sha256:abc", "--output=json", *extra)


def test_push_is_reproducible_only_when_asked(world, tmp_path):
    port = free_port()
    assert docker(world, "run", "-d", "-p", f"127.0.0.1:{port}:5000", "--name", "reg", "registry:3").returncode == 0
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.yaml").write_text("a: 1\n")
    digests = []
    for extra in ((), (), ("--reproducible",), ("--reproducible",)):
        res = push(world, port, tmp_path / "dir", *extra)
        assert res.returncode == 0, res.stderr
        digests.append(json.loads(res.stdout)["digest"])
        if not extra:
            time.sleep(1.1)  # the stamp has a one-second resolution
    assert digests[0] != digests[1], "without --reproducible the push time is stamped"
    assert digests[2] == digests[3]


def test_tagging_a_missing_tag_says_what_the_real_cli_says(world):
    port = free_port()
    assert docker(world, "run", "-d", "-p", f"127.0.0.1:{port}:5000", "--name", "reg", "registry:3").returncode == 0
    res = flux(world, "tag", "artifact", f"oci://localhost:{port}/lab-gitops:nosuch", "--tag", "latest")
    assert res.returncode != 0
    assert "► tagging artifact" in res.stdout + res.stderr
    assert "MANIFEST_UNKNOWN: manifest unknown; unknown tag=nosuch" in res.stderr


def test_tagging_by_digest_says_what_the_real_cli_says(world, tmp_path):
    """flux 2.9.4 against registry:3 (observed with the kit's flux): a digest reference is tagged like a tag
    reference; an unknown digest and a malformed one fail with these lines."""
    port = free_port()
    assert docker(world, "run", "-d", "-p", f"127.0.0.1:{port}:5000", "--name", "reg", "registry:3").returncode == 0
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.yaml").write_text("a: 1\n")
    digest = json.loads(push(world, port, tmp_path / "dir", "--reproducible").stdout)["digest"]
    res = flux(world, "tag", "artifact", f"oci://localhost:{port}/lab-gitops@{digest}", "--tag", "staging",
               "--tag", "production")
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == ["► tagging artifact", f"✔ artifact tagged as localhost:{port}/lab-gitops:staging",
                                       f"✔ artifact tagged as localhost:{port}/lab-gitops:production"]
    unknown = "sha256:" + "0" * 64
    res = flux(world, "tag", "artifact", f"oci://localhost:{port}/lab-gitops@{unknown}", "--tag", "x")
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1] == (
        f'✗ tagging artifact failed: fetching "localhost:{port}/lab-gitops@{unknown}": GET http://localhost:{port}'
        f"/v2/lab-gitops/manifests/{unknown}: MANIFEST_UNKNOWN: manifest unknown; unknown manifest "
        f"name=lab-gitops revision={unknown}")
    res = flux(world, "tag", "artifact", f"oci://localhost:{port}/lab-gitops@sha256:abc", "--tag", "x")
    assert res.returncode == 1 and "► tagging artifact" not in res.stderr
    assert res.stderr.strip() == (f"✗ 'oci://localhost:{port}/lab-gitops@sha256:abc' invalid URL: could not parse "
                                  f"reference: localhost:{port}/lab-gitops@sha256:abc")
