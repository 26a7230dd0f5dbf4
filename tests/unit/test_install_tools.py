"""hack/ci/install-tools.py puts a downloaded binary in place without a cross-filesystem rename."""
from __future__ import annotations

import errno
import importlib.util
import os
import stat
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "ci" / "install-tools.py"


@pytest.fixture
def installer(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("install_tools", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dest = tmp_path / "bin"
    dest.mkdir()
    monkeypatch.setattr(module, "DEST", dest)
    work = tmp_path / "elsewhere"  # another filesystem, as the checkout often is from /usr/local/bin
    work.mkdir()
    monkeypatch.chdir(work)
    real_replace, real_rename = os.replace, os.rename

    def same_filesystem_only(real):
        def move(src, dst, *args, **kwargs):
            if Path(src).resolve().parent != Path(dst).resolve().parent:
                raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
            return real(src, dst, *args, **kwargs)
        return move

    monkeypatch.setattr(os, "replace", same_filesystem_only(real_replace))
    monkeypatch.setattr(os, "rename", same_filesystem_only(real_rename))
    return module, dest, work


def test_install_never_renames_across_directories(installer):
    module, dest, work = installer
    module.install("kind", b"#!/bin/sh\necho kind\n")
    target = dest / "kind"
    assert target.read_bytes() == b"#!/bin/sh\necho kind\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert sorted(p.name for p in dest.iterdir()) == ["kind"]  # no temporary file left behind
    assert list(work.iterdir()) == []


def test_install_replaces_an_older_binary(installer):
    module, dest, _ = installer
    (dest / "flux").write_bytes(b"old")
    module.install("flux", b"new")
    assert (dest / "flux").read_bytes() == b"new"
