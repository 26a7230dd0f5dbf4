"""The one place that builds and runs every external command (kind, kubectl, flux, docker).

- Binaries are resolved lazily (importing tasks must work where they are absent) and
  can be overridden with KIND, KUBECTL, FLUX, DOCKER, as in the original Makefile.
- `probe()` runs read-only commands; `mutate()` runs commands that change something.
  With DRY_RUN=1, `mutate()` prints the command and runs nothing.
- Every command is echoed (dim) before it runs, with its duration after. Failures
  become one LabError: the command, its exit code, the last lines of its stderr.
- `memo` holds what this run has read (the container listing, the cluster's objects), so
  steps share one answer instead of asking again; every mutation forgets what it may have
  changed. Nothing in it outlives the process: an earlier run's answer is never trusted.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from plumbum import local
from plumbum.commands.processes import CommandNotFound, ProcessExecutionError, ProcessTimedOut

from tasks.core import console, floors
from tasks.core.errors import LabError


@dataclass(frozen=True)
class ToolSpec:
    name: str
    setting: str  # config variable overriding the binary
    install_url: str
    version_args: tuple[str, ...]
    version_pattern: str


SPECS = {
    "kind": ToolSpec("kind", "KIND",
                     "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
                     ("version",), r"v(\d+\.\d+\.\d+)"),
    "kubectl": ToolSpec("kubectl", "KUBECTL",
                        "https://kubernetes.io/docs/tasks/tools/",
                        ("version", "--client", "-o", "json"), r'"gitVersion":\s*"v(\d+\.\d+\.\d+)'),
    "flux": ToolSpec("flux", "FLUX",
                     "https://fluxcd.io/flux/installation/#install-the-flux-cli",
                     ("version", "--client"), r"v?(\d+\.\d+\.\d+)"),
    # One call answers both questions preflight asks of docker: the client's version and the daemon's
    # (empty when no daemon answers: docker still prints the client's, then exits 1).
    "docker": ToolSpec("docker", "DOCKER",
                       "https://docs.docker.com/get-docker/",
                       ("version", "--format", "{{.Client.Version}}|{{with .Server}}{{.Version}}{{end}}"),
                       r"^(\d+\.\d+\.\d+)"),
}


# docker commands that touch images only (local store or a registry), never a container.
DOCKER_IMAGE_COMMANDS = frozenset({"build", "push", "pull", "tag", "rmi", "image", "login", "manifest"})


class Secret(str):
    """An argument that is passed to the command but echoed as ***."""


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:3])


def shown(args) -> str:
    return " ".join("***" if isinstance(a, Secret) else shlex.quote(str(a)) for a in args)


def shown_env(env: dict[str, str] | None) -> str:
    return "".join(f"{k}={shlex.quote(v)} " for k, v in sorted((env or {}).items()))


def tail(text: str, lines: int = 6) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)


class Tools:
    """Binds each tool once per run and runs commands through it."""

    def __init__(self, cfg, *, echo: bool = True):
        self.cfg = cfg
        self.echo = echo
        self.dry_run = cfg.dry_run
        self.planned: list[str] = []  # mutating commands skipped by DRY_RUN
        self._bound: dict = {}
        self._versions: dict[str, str] = {}  # a binary does not change under a running process
        self._answers: dict[str, Result] = {}  # what each version command printed
        self.memo: dict = {}  # this run's reads, shared by its steps (see forget)
        self.mutated = False  # has this run changed anything yet?

    # -- this run's reads ----------------------------------------------------------
    def forget(self, tool: str | None = None, command: str = "") -> None:
        """Drop what a mutation by TOOL (COMMAND: its first argument) may have changed: kubectl and
        flux talk to the API server only, so the cluster's objects go; docker's image commands change
        images (and registries) only; any other docker or kind command, or an unknown tool, may
        change containers and through them the cluster, so everything goes."""
        if tool in ("kubectl", "flux"):
            self.memo.pop("kube", None)
        elif tool == "docker" and command in DOCKER_IMAGE_COMMANDS:
            self.memo.pop("images", None)
        else:
            self.memo.clear()

    # -- binaries ----------------------------------------------------------------
    def binary(self, tool: str):
        if tool not in self._bound:
            spec = SPECS[tool]
            path = getattr(self.cfg, spec.setting)
            try:
                if os.sep in path and not os.access(path, os.X_OK):
                    raise CommandNotFound(path, [])
                self._bound[tool] = local[path]
            except CommandNotFound:
                raise LabError(
                    f"{tool} not found (looked for {path!r} on PATH)",
                    f"the lab needs {tool} >= {floors.for_tool(tool, self.cfg).version}",
                    f"install it: {spec.install_url} (or set {spec.setting}=/path/to/{tool})",
                ) from None
        return self._bound[tool]

    def version_answer(self, tool: str) -> Result:
        """The whole answer of TOOL's version command (asked once per run, with installed_version)."""
        self.installed_version(tool)
        return self._answers[tool]

    def installed_version(self, tool: str) -> str:
        """The version TOOL reports, asked once per run."""
        if tool not in self._versions:
            spec = SPECS[tool]
            # docker exits 1 when its daemon is down, after printing its own version (the daemon's
            # absence is preflight's to say, from the same answer: version_answer).
            res = self.probe(tool, *spec.version_args, timeout=20, check=tool != "docker")
            self._answers[tool] = res
            found = re.search(spec.version_pattern, res.out)
            if not found:
                raise LabError(f"could not read the version of {tool}", f"it printed {res.out.strip()[:80]!r}",
                               f"reinstall it: {spec.install_url}")
            self._versions[tool] = found.group(1)
        return self._versions[tool]

    def check_version(self, tool: str) -> str:
        spec = SPECS[tool]
        have = self.installed_version(tool)
        floor = floors.for_tool(tool, self.cfg)
        if version_tuple(have) < version_tuple(floor.version):
            raise LabError(f"{tool} {have} is too old", floor.why,
                           f"upgrade it to >= {floor.version}: {spec.install_url}"
                           + (f" ({floor.hint})" if floor.hint else ""))
        if tool == "kubectl" and not self.cfg.existing:  # an existing cluster is asked in cluster.check_existing
            floors.check_kubectl_skew(have, floors.node_version(self.cfg), "the kind nodes")
        return have

    # -- running ------------------------------------------------------------------
    def probe(self, tool: str, *args, timeout: float = 60, stdin: str | None = None,
              check: bool = True, quiet: bool = False, env: dict[str, str] | None = None) -> Result:
        """A read-only command: runs even in a dry run."""
        return self._run(tool, args, timeout, stdin, check, quiet, env)

    def kustomize(self, directory, timeout: float = 60) -> Result:
        """`kubectl kustomize DIRECTORY` (the kustomize v5 Flux embeds), read-only and quiet, its exit
        code not checked: the caller reads stderr too (kustomize warns there and still exits 0)."""
        return self.probe("kubectl", "kustomize", str(directory), timeout=timeout, check=False, quiet=True)

    def mutate(self, tool: str, *args, timeout: float = 300, stdin: str | None = None,
               check: bool = True, env: dict[str, str] | None = None) -> Result:
        """A command that changes something: printed, not run, in a dry run. ENV: variables set for it
        only (shown before the command, as a shell would take them)."""
        if self.dry_run:
            line = shown_env(env) + f"{tool} {shown(args)}"
            self.planned.append(line)
            console.say(f"  would run: $ {line}", "yellow")
            return Result(0, "", "")
        self.forget(tool, str(args[0]) if args else "")  # before: a failure midway may have changed something
        self.mutated = True
        return self._run(tool, args, timeout, stdin, check, False, env)

    def _run(self, tool, args, timeout, stdin, check, quiet, env=None) -> Result:
        cmd = self.binary(tool)[tuple(str(a) for a in args)]
        if env:
            cmd = cmd.with_env(**env)
        if stdin is not None:
            cmd = cmd << stdin
        line = shown_env(env) + f"{tool} {shown(args)}"
        show = self.echo and not quiet
        # Commands run side by side (tasks/core/parallel.py) print their whole line when they end, so
        # lines never interleave; the main thread's command shows while it runs, its time when it ends.
        together = show and threading.current_thread() is not threading.main_thread()
        if show and not together:
            print(console.style(f"  $ {line}", "dim"), end="", flush=True)
        started = time.monotonic()
        try:
            rc, out, err = cmd.run(retcode=None, timeout=timeout)
        except ProcessTimedOut:
            if show and not together:
                print(flush=True)
            raise LabError(f"`{line}` did not finish within {timeout:.0f}s",
                           "the command hung or the cluster is overloaded",
                           "check Docker's resources and run the task again") from None
        except ProcessExecutionError as exc:  # e.g. killed by a signal
            rc, out, err = exc.retcode, exc.stdout, exc.stderr
        except BaseException:  # Ctrl-C: end the echoed line before anything else prints
            if show and not together:
                print(flush=True)
            raise
        took = console.style(f" ({console.seconds(time.monotonic() - started)})", "dim")
        if together:
            console.say(console.style(f"  $ {line}", "dim") + took)
        elif show:
            print(took, flush=True)
        res = Result(rc if rc is not None else -1, out or "", err or "")
        if check and not res.ok:
            raise LabError(f"`{line}` failed with exit code {res.rc}",
                           tail(res.err or res.out) or "it printed nothing")
        return res

    def background(self, tool: str, *args, log: str) -> subprocess.Popen:
        """Start a long-running command (port-forward) writing to `log`; the caller ends it.

        Output goes to a file, not a pipe: nobody drains a pipe during a load test, and
        a full pipe would freeze the command.
        """
        binary = str(self.binary(tool).executable)
        if self.echo:
            console.say(f"  $ {tool} {shown(args)} &", "dim")
        with open(log, "w") as out:
            return subprocess.Popen([binary, *map(str, args)], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, start_new_session=True)

    def interactive(self, tool: str, *args) -> int:
        """Hand the terminal to the command (debug shells). Nothing is captured."""
        from plumbum import FG
        line = f"{tool} {shown(args)}"
        if self.dry_run:
            self.planned.append(line)
            console.say(f"  would run: $ {line}", "yellow")
            return 0
        console.say(f"  $ {line}", "dim")
        self.forget()  # a shell in a node or pod can change anything
        self.mutated = True
        try:
            self.binary(tool)[tuple(map(str, args))] & FG
        except ProcessExecutionError as exc:
            return exc.retcode or 1
        return 0


def stop_process(proc: subprocess.Popen, grace: float = 5) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass
