"""The app image's digest, as the push returned it, for a remote registry (Docker's RepoDigests)."""
from __future__ import annotations

import json
import stat
import sys

import pytest

from tasks.core import config, tools
from tasks.steps import image
from tasks.core.errors import LabError

DIGEST = "sha256:" + "ab" * 32


def docker(tmp_path, repo_digests):
    path = tmp_path / "docker"
    path.write_text(f"#!{sys.executable}\nimport sys\n"
                    f"if sys.argv[1:3] == ['image', 'inspect']:\n    print({json.dumps(json.dumps(repo_digests))})\n"
                    "else:\n    sys.exit(1)\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def remote(tmp_path, repo_digests):
    cfg = config.load({"REGISTRY": "ghcr.io/acme", "DOCKER": docker(tmp_path, repo_digests)}, {})
    return tools.Tools(cfg, echo=False), cfg


def test_pinned_ref_is_tag_and_pushed_digest(tmp_path):
    t, cfg = remote(tmp_path, ["docker.io/other/app@sha256:" + "cd" * 32, f"ghcr.io/acme/lab-app@{DIGEST}"])
    tag = image.content_tag()
    assert image.pinned_ref(t) == f"ghcr.io/acme/lab-app:{tag}@{DIGEST}"


def test_no_digest_is_one_clear_line(tmp_path):
    t, cfg = remote(tmp_path, [])
    with pytest.raises(LabError) as err:
        image.pinned_ref(t)
    assert "reports no digest" in err.value.line() and "doit app_push" in err.value.line()
