"""The GitHub workflow and the app's Dockerfile pass their linters (pinned in pyproject's test extra).

- actionlint: syntax, expressions, action inputs, and actions on a deprecated runtime (node20);
- zizmor (offline): unpinned actions, broad permissions, persisted credentials, injections;
- hadolint: the Dockerfile.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def tool(name: str) -> str:
    """The linter installed beside this Python (the test extra), else on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} not found: install the test extra (`pip install -e '.[test]'`)"
    return found


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_there_is_a_workflow():
    assert WORKFLOWS


def test_actionlint_finds_nothing():
    proc = run(tool("actionlint"), "-no-color", *map(str, WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing():
    proc = run(tool("zizmor"), "--offline", "--no-progress", *map(str, WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_finds_nothing_in_the_app_dockerfile():
    proc = run(tool("hadolint"), "--no-color", str(ROOT / "app" / "Dockerfile"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_release_named(workflow):
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", workflow.read_text(), re.M)
    assert uses
    for ref, rest in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned to a commit"
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", rest), f"{ref}: name the release in a comment (# vX.Y.Z)"
