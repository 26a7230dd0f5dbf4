"""Run the real `doit`/`inv` as subprocesses on a copy of the repository, with the
strict fakes of docker, kind, kubectl and flux first (and alone) on PATH."""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import threading
import signal
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
        # (PYTHONDONTWRITEBYTECODE: the product's bytecode is cached in this copy, for the next run)
        base = {k: v for k, v in os.environ.items()
                if k not in ("KIND", "KUBECTL", "FLUX", "DOCKER", "DRY_RUN", "LAB_STATE_DIR", "PYTHONDONTWRITEBYTECODE")}
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


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range, which no client connection is given: it stays
    free while a lab that publishes it is frozen between tests."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port()
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


@pytest.fixture(scope="session")
def _built_once(tmp_path_factory):
    """One cold `doit setup` per worker, frozen (see FakeWorld.freeze) and copied aside."""
    home = tmp_path_factory.mktemp("built")
    (home / "lab").mkdir()
    lab = Lab(home / "lab")
    lab.port = quiet_port()
    proc = lab.doit("setup")
    if proc.returncode != 0:
        lab.world.kill_background()
        pytest.fail("the cold `doit setup` every `built` test starts from failed:\n" + proc.stdout + proc.stderr)
    lab.world.clear_calls()
    lab.world.freeze()
    shutil.copytree(home / "lab", home / "cold", symlinks=True)
    return lab, home


@pytest.fixture
def built(_built_once):
    """A lab after one successful cold `doit setup`, with the call log cleared.

    The setup ran once (per worker); each test gets a fresh copy of what it left, at the same
    paths and port, with its registry server started again (FakeWorld.resume)."""
    lab, home = _built_once
    shutil.rmtree(home / "lab")
    shutil.copytree(home / "cold", home / "lab", symlinks=True)
    lab.world.resume()
    yield lab
    lab.world.kill_background()


def has(calls: list[str], *prefixes: str) -> bool:
    return any(c.startswith(p) for c in calls for p in prefixes)


class Running:
    """A `doit` started in its own process group; its output is read by a thread."""

    def __init__(self, lab, *args, **extra):
        self.proc = lab.start(*args, **extra)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out:
            if self.proc.poll() is not None:
                self._reader.join(5)
                if text in self.out:
                    return
                raise AssertionError(f"ended (rc {self.proc.returncode}) before printing {text!r}:\n{self.out}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not printed within {timeout}s:\n{self.out}")
            time.sleep(0.05)

    def signal_group(self, sig) -> int:
        # Ctrl-C in a terminal signals the whole foreground group; so does `kill -9 -PGID`.
        os.killpg(self.proc.pid, sig)
        return self.finish()

    def finish(self, timeout: float = 60) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(10)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
