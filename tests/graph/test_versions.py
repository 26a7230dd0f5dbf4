"""The lab against both ends of every tool version it supports.

The fakes play the release named by FAKE_DOCKER_VERSION, FAKE_KIND_VERSION and FAKE_FLUX_VERSION,
with each release's observable differences (tests/fakes/README.md, "Versions"). The paths run
here are the ones a release difference broke before: a cold setup (preflight asks whether the
registry exists), an immediate re-run (every "up to date" check), and teardown twice (the second
finds nothing, which Docker CLI 29 words differently from 28).
"""
from __future__ import annotations

import pytest

from tests.graph.conftest import has

# oldest: the minimum the lab accepts for the default node image; newest: what tasks/versions.py pins.
ENDS = {
    "oldest": {"FAKE_DOCKER_VERSION": "28.2.2"},
    "newest": {"FAKE_DOCKER_VERSION": "29.0.0"},
}


@pytest.mark.parametrize("end", sorted(ENDS))
def test_setup_rerun_and_teardown_at_each_end_of_the_supported_versions(lab, end):
    env = ENDS[end]
    proc = lab.doit("setup", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert has(lab.mutating(), "docker run") and has(lab.mutating(), "kind create cluster")

    lab.world.clear_calls()
    proc = lab.doit("setup", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.mutating() == []

    proc = lab.inv("teardown", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lab.world.clear_calls()
    proc = lab.inv("teardown", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.mutating() == []
    assert "nothing to delete" in proc.stdout and "nothing to remove" in proc.stdout

