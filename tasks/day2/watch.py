"""`doit watch` / `inv watch`: edit and see. Watches what the graph reads (app/'s build inputs,
flux-cd/, hack/metrics-server, the kind config, the settings' defaults and pins) and, after each burst
of saves, runs `doit setup` again: the same graph, the same up-to-date decisions, so an app edit
rebuilds, pushes, publishes and reconciles, and a manifest edit only publishes and reconciles.

- File events come from watchfiles (inotify on Linux, FSEvents on macOS, through the Rust `notify`
  crate), on threads that feed one queue; it falls back to polling by itself where the OS offers no
  events. A burst is one run: batches are merged until none has arrived for WATCH_DEBOUNCE_MS.
- Each run is a child `doit setup` in its own process group, which takes the run lock like any run;
  the watcher holds no lock. A change during a run is queued and, however many saves it was, makes
  one run after it. A save that leaves every input as the last good run saw it runs nothing.
- One status line per run: what changed → which steps ran → how long → which environments serve
  which image, and how long after the save they did. The child's output goes to .lab/watch.log,
  its record (tasks/graph.py `record_run`) to .lab/watch-run.json, and each status line, as JSON, to
  .lab/watch-runs.jsonl (what hack/bench/watch_bench.py and the tests read).
- A failing run prints its one-line error and the watcher keeps watching. Ctrl-C or SIGTERM ends the
  current run as a Ctrl-C in its terminal would (SIGINT to its process group, so its port-forwards
  are stopped by the code that started them; SIGKILL after WATCH_STOP_GRACE seconds, and then its
  leftover port-forwards are ended here), then the watcher exits: nothing is left running.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from tasks.core import console, portforward, state
from tasks.steps import pinning
from tasks.steps import cluster, image, metrics_server, sync
from tasks.core.signals import interrupt_on_sigterm
from tasks.core.config import SETTINGS
from tasks.core.errors import LabError

LOG = "watch.log"            # every child run's output, appended
RECORD = "watch-run.json"    # the current child's record (tasks/graph.py record_run)
RUNS = "watch-runs.jsonl"    # one JSON object per run: what its status line says
SETTINGS_FILES = (state.ROOT / "tasks" / "config.py", state.ROOT / "tasks" / "versions.py")
# Steps that change something; preflight and verify run every time and change nothing.
CHANGING_STEPS = ("registry", "cluster", "metrics_server", "flux", "image", "app_push", "sync")
STOP_GRACE = 30.0  # seconds a child gets to end after SIGINT before SIGKILL


# --- what is watched ----------------------------------------------------------------------------------

class Inputs:
    """The graph's inputs on disk: the folders watched recursively, the single files watched through their
    folder (an editor that saves by renaming a new file over the old one replaces the inode a file watch
    would hold), the filter, and a fingerprint of their content."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.trees = [p for p in (image.APP_DIR, sync.GITOPS_DIR, metrics_server.MANIFESTS) if p.is_dir()]
        files = list(SETTINGS_FILES)
        if not cfg.existing:
            files.insert(0, cluster.config_path(cfg))
        self.files = [f.resolve() for f in files]
        self._rules = image.ignore_rules(image.APP_DIR)

    def folders(self) -> list[Path]:
        return sorted({f.parent for f in self.files if f.parent.is_dir()})

    def kind_of(self, path: Path) -> str | None:
        """'app', 'manifests', 'metrics-server', 'cluster' or 'settings' for an input, None otherwise."""
        path = Path(path)
        if "__pycache__" in path.parts:
            return None
        if path in self.files:
            return "settings" if path in SETTINGS_FILES else "cluster"
        for tree, kind in ((image.APP_DIR, "app"), (sync.GITOPS_DIR, "manifests"),
                           (metrics_server.MANIFESTS, "metrics-server")):
            try:
                rel = path.relative_to(tree).as_posix()
            except ValueError:
                continue
            if kind == "app":
                keep = rel in ("Dockerfile", ".dockerignore") or not image.excluded(rel, self._rules)
                if rel == ".dockerignore":
                    self._rules = image.ignore_rules(image.APP_DIR)
                return kind if keep else None
            if kind == "metrics-server":
                return kind if path.suffix == ".yaml" else None
            return kind
        return None

    def fingerprint(self) -> str:
        """One hash of every input's name and content: equal means `doit setup` would see the same files."""
        digest = hashlib.sha256()
        files = [*image.build_inputs(), *sync.gitops_files(), *map(Path, metrics_server.manifest_files()),
                 *self.files]
        for path in files:
            digest.update(str(path).encode() + b"\0")
            try:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            except OSError:
                digest.update(b"-")
        return digest.hexdigest()

    def describe(self) -> str:
        names = [f"{rel(p)}/" for p in self.trees] + [rel(f) for f in self.files]
        return ", ".join(names)


def rel(path: Path | str) -> str:
    try:
        return Path(path).relative_to(state.ROOT).as_posix()
    except ValueError:
        return str(path)


# --- the watcher -------------------------------------------------------------------------------------

class Watcher:
    def __init__(self, cfg):
        self.cfg = cfg
        self.inputs = Inputs(cfg)
        self.debounce = int(cfg.WATCH_DEBOUNCE_MS) / 1000
        self.events: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.child: subprocess.Popen | None = None
        self.good: str | None = None  # the inputs' fingerprint when the last successful run started
        self.count = 0

    # -- file events (threads) -------------------------------------------------------------------
    def start(self) -> None:
        import watchfiles  # here: importing the lab must not need it

        default = watchfiles.DefaultFilter()  # editors' swap and backup files, .git, __pycache__, ...

        def accept(change, path: str) -> bool:
            return default(change, path) and self.inputs.kind_of(Path(path)) is not None

        def feed(paths, recursive: bool) -> None:
            try:
                for changes in watchfiles.watch(*paths, watch_filter=accept, recursive=recursive,
                                                stop_event=self.stop, raise_interrupt=False,
                                                step=50, debounce=1600):
                    self.events.put((time.time(), {Path(p) for _, p in changes}))
            except Exception as exc:  # noqa: BLE001 - the main thread reports it
                self.events.put((time.time(), exc))

        for paths, recursive in ((self.inputs.trees, True), (self.inputs.folders(), False)):
            if paths:
                thread = threading.Thread(target=feed, args=(paths, recursive), daemon=True,
                                          name=f"watch-{'trees' if recursive else 'files'}")
                thread.start()
                self.threads.append(thread)

    def halt(self) -> None:
        self.stop.set()  # each watchfiles loop sees it within one step (50 ms)
        for thread in self.threads:
            thread.join(timeout=2)

    def next_burst(self) -> dict[Path, float]:
        """Block until a change, then merge batches until none arrives for WATCH_DEBOUNCE_MS:
        {path: when it was saved (its mtime when plausible, else when it was reported)}."""
        batches = [self.events.get()]
        while True:
            try:
                batches.append(self.events.get(timeout=self.debounce))
            except queue.Empty:
                break
        changed: dict[Path, float] = {}
        for seen, paths in batches:
            if isinstance(paths, Exception):
                raise LabError("the file watcher stopped", str(paths) or type(paths).__name__,
                               "run `doit watch` again") from paths
            for path in paths:
                changed[path] = min(changed.get(path, seen), saved_at(path, seen))
        return changed

    # -- the loop --------------------------------------------------------------------------------
    def loop(self) -> dict:
        say_header(self)
        self.start()
        try:
            self.run({}, initial=True)
            while True:
                changed = self.next_burst()
                if not changed:
                    continue
                if self.good is not None and self.inputs.fingerprint() == self.good:
                    console.say(f"· {changes_text(changed)}: saved with the same content; nothing to run", "dim")
                    continue
                self.run(changed)
        except KeyboardInterrupt:
            self.end_child()
            console.say(f"\nstopped after {self.count} run(s); nothing left running", "bold")
        finally:
            self.halt()
        return {"runs": self.count}

    def run(self, changed: dict[Path, float], initial: bool = False) -> dict:
        self.count += 1
        wait_for_lock()
        fingerprint = self.inputs.fingerprint()
        record_path = state.path(RECORD)
        record_path.unlink(missing_ok=True)
        started = time.time()
        env = child_env(self.cfg, record_path)
        live = sys.stdout.isatty()  # on a terminal, a progress line that the status line replaces
        if live:
            print(console.style(f"… {stamp(started)}  {'start' if initial else changes_text(changed)} → "
                                f"running `doit setup` (tail -f {rel(state.path(LOG))})", "dim"), end="", flush=True)
        with open(state.path(LOG), "a") as log:
            log.write(f"\n=== run {self.count} at {stamp(started)}: "
                      f"{'start' if initial else changes_text(changed, limit=20)}\n")
            log.flush()
            self.child = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(state.ROOT / "dodo.py"), "setup"],
                                          cwd=state.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
            rc = self.child.wait()
            self.child = None
        ended = time.time()
        if live:
            print("\r\033[K", end="", flush=True)
        kinds = sorted({k for k in map(self.inputs.kind_of, changed) if k})
        outcome = summarize(self.cfg, self.count, changed, kinds, initial, rc, started, ended,
                            read_record(record_path))
        # A run reads its inputs as it goes (the image tag in `image`, `sync` and `verify`): one that failed
        # while they changed under it may have failed for that alone. The queued run has the last word.
        outcome["superseded"] = not outcome["ok"] and self.inputs.fingerprint() != fingerprint
        if outcome["ok"]:
            self.good = fingerprint
        else:
            self.good = None  # after a failure any save runs again, even one that changes nothing
        print_status(outcome)  # first: whoever reads the record may look for the line
        with open(state.path(RUNS), "a") as runs:
            runs.write(json.dumps(outcome) + "\n")
        return outcome

    def end_child(self) -> None:
        """End the current run as Ctrl-C in its terminal would; SIGKILL if it will not end."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        console.say("\nending the current run (Ctrl-C again to kill it now)…", "dim")
        forwards = children(child.pid)
        try:
            os.killpg(child.pid, signal.SIGINT)
            child.wait(timeout=STOP_GRACE)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            forwards |= children(child.pid)
            with _ignored(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        except ProcessLookupError:
            pass
        # A child that ended normally stopped its port-forwards; one that was killed could not.
        for pid in forwards:
            if portforward._alive(pid) and portforward._is_port_forward(pid):
                portforward._end(pid)
        self.child = None


# --- helpers -----------------------------------------------------------------------------------------

@contextmanager
def _ignored(*errors):
    try:
        yield
    except errors:
        pass


def children(pid: int) -> set[int]:
    """The processes whose parent is PID (ps: the same on Linux and macOS)."""
    try:
        out = subprocess.run([shutil.which("ps") or "/bin/ps", "-A", "-o", "pid=,ppid="], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == str(pid):
            found.add(int(parts[0]))
    return found


def wait_for_lock() -> None:
    """A run started by hand (or an `inv` task) holds the lock: wait for it rather than fail the run."""
    fd = os.open(state.path("run.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
            console.say(f"· waiting for {holder} to finish", "dim")
            fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts it
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def child_env(cfg, record_path: Path) -> dict:
    """The watcher's environment, plus the settings it was given on its command line (as variables, so a
    password never reaches a command line) and where the child writes its record."""
    env = dict(os.environ)
    for setting in SETTINGS:
        if cfg.sources.get(setting.name) == "command line":
            env[setting.name] = cfg.values[setting.name]
    env["LAB_RUN_RECORD"] = str(record_path)
    env["LAB_STATE_DIR"] = str(state.state_dir())
    return env


def saved_at(path: Path, reported: float) -> float:
    """When PATH was saved: its mtime if that is just before the event was reported (a copy that keeps an
    old mtime, or a deletion, counts from the report)."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return reported
    return mtime if reported - 5 <= mtime <= reported else reported


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def last_error_line(log_tail: str) -> str:
    lines = [ln.strip() for ln in log_tail.splitlines() if ln.strip()]
    marked = [ln[2:] for ln in lines if ln.startswith("✗ ")]
    return (marked[0] if marked else (lines[-1] if lines else "")) or "no output"


def summarize(cfg, n: int, changed: dict[Path, float], kinds: list[str], initial: bool, rc: int, started: float,
              ended: float, record: dict | None) -> dict:
    steps = [s for s in (record or {}).get("executed", []) if s in CHANGING_STEPS]
    failed = (record or {}).get("failed") or []
    ok = rc == 0 and record is not None and not failed and not record.get("errors")
    error = ""
    if not ok:
        if failed:
            error = f"{failed[0]['task']}: {failed[0]['error']}"
        elif record and record.get("errors"):
            error = record["errors"][0].splitlines()[-1]
        else:
            error = tail_error(rc)
    serving = (((record or {}).get("values") or {}).get("verify") or {}).get("serving") or {}
    verified_at = ((record or {}).get("finished") or {}).get("verify")
    first_save = min(changed.values()) if changed else None
    return {
        "run": n, "initial": initial, "changed": sorted(rel(p) for p in changed), "kinds": kinds,
        "steps": steps, "ok": ok, "rc": rc, "error": error, "started": started, "ended": ended,
        "took": round(ended - started, 3), "serving": serving, "live": list(pinning.watched(cfg)),
        "saved_at": first_save,
        "save_to_serving": round(verified_at - first_save, 3) if ok and verified_at and first_save else None,
    }


def tail_error(rc: int) -> str:
    try:
        with open(state.path(LOG), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4000))
            text = f.read().decode(errors="replace")
    except OSError:
        text = ""
    text = text.rsplit("\n=== run ", 1)[-1]
    return f"{last_error_line(text)} (exit code {rc})"


def stamp(when: float) -> str:
    return datetime.fromtimestamp(when).strftime("%H:%M:%S")


def changes_text(changed, limit: int = 3) -> str:
    names = sorted(rel(p) for p in changed)
    shown = ", ".join(names[:limit])
    return shown + (f" +{len(names) - limit} more" if len(names) > limit else "")


def serving_text(serving: dict[str, str]) -> str:
    by_tag: dict[str, list[str]] = {}
    for env, tag in serving.items():
        by_tag.setdefault(tag, []).append(env)
    return "; ".join(f"{', '.join(envs)}: {tag}" for tag, envs in by_tag.items())


def print_status(o: dict) -> None:
    what = "start" if o["initial"] else changes_text(o["changed"])
    steps = ", ".join(o["steps"]) or "nothing to do"
    took = console.seconds(o["took"])
    if o["ok"]:
        line = f"{console.style('✓', 'green')} {stamp(o['ended'])}  {what} → {steps}  ({took})"
        if o["serving"]:
            line += f"  {serving_text(o['serving'])}"
        if o["save_to_serving"] is not None:
            line += console.style(f"  · live in {', '.join(o['live'])} {console.seconds(o['save_to_serving'])} "
                                  "after the save", "bold")
        console.say(line)
        return
    if o.get("superseded"):
        console.say(f"{console.style('↻', 'yellow')} {stamp(o['ended'])}  {what} → {steps or 'stopped'} failed "
                    f"({took}) while its inputs changed: {o['error']}")
        console.say("  the run queued by those changes follows", "dim")
        return
    console.say(f"{console.style('✗', 'red')} {stamp(o['ended'])}  {what} → {steps or 'stopped'} failed "
                f"({took}): {o['error']}")
    console.say(f"  full output: {rel(state.path(LOG))}; watching for the next change", "dim")


def say_header(w: Watcher) -> None:
    cfg = w.cfg
    pinned = pinning.pinned(cfg)
    console.say(f"watching {w.inputs.describe()}", "bold")
    mode = (f"each change rolls {', '.join(pinning.watched(cfg))}; {', '.join(pinned)} move on `doit promote`"
            if pinned else "each change rolls every environment")
    console.say(f"  `doit setup` after each burst of saves ({cfg.WATCH_DEBOUNCE_MS} ms quiet); {mode}.", "dim")
    console.say(f"  output of each run: {rel(state.path(LOG))}; Ctrl-C stops.", "dim")


def run(lab) -> dict:
    """The `watch` step: bring the lab up to date, then again after every change, until Ctrl-C."""
    if lab.cfg.dry_run:
        raise LabError("DRY_RUN=1 does not combine with `doit watch`", "each change would plan and run nothing",
                       "use `doit setup DRY_RUN=1` to see the plan")
    fd, holder = state.try_lock("watch.lock", "")
    if fd is None:
        raise LabError(f"`doit watch` already runs in this checkout ({holder})",
                       "two watchers would run every change twice", "use that one, or stop it first")
    try:
        state.path(LOG).write_text("")
        state.path(RUNS).write_text("")
        with interrupt_on_sigterm():
            return Watcher(lab.cfg).loop()
    finally:
        os.close(fd)  # releases the flock
