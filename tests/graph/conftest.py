"""Run the real `doit`/`inv` as subprocesses on a copy of the repository, with the
strict fakes of docker, kind, kubectl and flux first (and alone) on PATH."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import FakeWorld

ROOT = Path(__file__).resolve().parents[2]
FAKE_BIN = ROOT / "tests" / "fakes" / "bin"
COPY = ["dodo.py", "tasks", "app", "flux-cd", "hack", "kind-three-node.yaml", "pyproject.toml"]
TOOLS = ("docker", "kind", "kubectl", "flux")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "repo"
        self.root.mkdir()
        for name in COPY:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, self.root / name, ignore=shutil.ignore_patterns("__pycache__", ".lab"))
            elif src.exists():
                shutil.copy2(src, self.root / name)
        self.world = FakeWorld(tmp_path / "fake")
        self.port = free_port()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.set_tools(*TOOLS)

    def set_tools(self, *tools: str) -> None:
        """PATH holds exactly these fakes, plus this Python (no real tool leaks in)."""
        for entry in self.bin.iterdir():
            entry.unlink()
        for tool in tools:
            (self.bin / tool).symlink_to(FAKE_BIN / tool)
        for name in ("python3", "python"):
            # A wrapper, not a symlink: a symlinked venv python forgets its venv.
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
            wrapper.chmod(0o755)

    def env(self, **extra) -> dict:
        base = {k: v for k, v in os.environ.items()
                if k not in ("KIND", "KUBECTL", "FLUX", "DOCKER", "DRY_RUN", "LAB_STATE_DIR")}
        base["PATH"] = str(self.bin)
        env = self.world.env(base)
        env["PATH"] = str(self.bin)  # exactly our bin dir
        env.update({"REGISTRY_PORT": str(self.port), "NO_COLOR": "1", "PYTHONPATH": str(self.root),
                    "FAKE_REPO_ROOT": str(self.root), "HOME": str(self.root.parent / "home")})
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def doit(self, *args: str, timeout: float = 180, **extra) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "doit", *args], cwd=self.root, env=self.env(**extra),
                              capture_output=True, text=True, timeout=timeout)

    def inv(self, *args: str, timeout: float = 180, **extra) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=self.root, env=self.env(**extra),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str, tool: str = "doit", **extra) -> subprocess.Popen:
        """A run in its own process group, that a test can signal like a terminal would."""
        return subprocess.Popen([sys.executable, "-m", tool, *args], cwd=self.root, env=self.env(**extra),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    # What happened, from the fakes' own log (they decide what is mutating).
    def mutating(self) -> list[str]:
        return [" ".join([c["tool"], *c["argv"]]) for c in self.world.mutating_calls()]

    def calls(self) -> list[str]:
        return [" ".join([c["tool"], *c["argv"]]) for c in self.world.calls()]

    def ran(self, proc: subprocess.CompletedProcess) -> list[str]:
        """The graph steps a run executed, in order (from the step banners)."""
        return [line.split(":")[0][2:] for line in proc.stdout.splitlines() if line.startswith("▶ ")]


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    yield lab
    lab.world.kill_background()


@pytest.fixture
def built(lab):
    """A lab after one successful cold `doit setup`, with the call log cleared."""
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lab.world.clear_calls()
    return lab


def has(calls: list[str], *prefixes: str) -> bool:
    return any(c.startswith(p) for c in calls for p in prefixes)
