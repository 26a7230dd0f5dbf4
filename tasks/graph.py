"""Glue between the library and doit: configuration from `NAME=value`, the tasks made from
tasks/operations.py (actions that turn LabError into one line, uptodate callables that ask
reality), and the reporter.
"""
from __future__ import annotations

import shutil
import sys
import time

from doit.exceptions import TaskFailed, UnmetDependency
from doit.reporter import ConsoleReporter
from doit.task import result_dep
from doit.tools import config_changed

from tasks import operations
from tasks.core import config, console, state
from tasks.core.errors import LabError
from tasks.core.lab import Lab

_RUNTIME: dict = {}

# doit commands that only read; everything else takes the run lock.
READ_ONLY_COMMANDS = {"list", "help", "info", "dumpdb", "tabcompletion", "strace"}
# Tasks that only supervise: `doit watch` runs `doit setup` children, and each of them takes the lock.
SUPERVISOR_TASKS = {"watch"}


def _cmdline_vars() -> dict:
    from doit import doit_cmd
    return dict(doit_cmd._CMDLINE_VARS or {})


def load_config() -> config.Config:
    """Resolve configuration once, at dodo.py import; an invalid value ends the run here."""
    try:
        cfg = config.load(_cmdline_vars())
    except LabError as exc:
        console.error(exc.line())
        sys.exit(2)
    _RUNTIME["cfg"] = cfg
    return cfg


def doit_config(cfg: config.Config) -> dict:
    dep_file = state.path("doit.json")
    argv = sys.argv[1:]
    words = [a for a in argv if not a.startswith("-") and "=" not in a]
    command = next(iter(words), "run")
    named = words[1:] if command == "run" else words
    if named and set(named) <= SUPERVISOR_TASKS:
        # No lock (its children take it), and a database of its own: doit writes the one it loaded when
        # the run ends, which would put back what the children recorded meanwhile.
        dep_file = state.path("doit-watch.json")
    elif cfg.dry_run:
        # A dry run must not record anything as done: work on a throwaway copy.
        dry = state.path("doit-dry-run.json")
        if dep_file.exists():
            shutil.copy(dep_file, dry)
        else:
            dry.unlink(missing_ok=True)
        dep_file = dry
    elif command not in READ_ONLY_COMMANDS:
        try:
            state.take_run_lock("doit " + " ".join(argv))
        except LabError as exc:
            console.error(exc.line())
            sys.exit(1)
        state.check_doit_db(dep_file.name)
    return {
        "default_tasks": ["setup"],
        "dep_file": str(dep_file),
        "backend": "json",
        "verbosity": 2,
        "reporter": Reporter,
        "action_string_formatting": "new",
    }


def lab() -> Lab:
    """This run's context (made on first use: `doit list` binds no tool)."""
    if "lab" not in _RUNTIME:
        _RUNTIME["lab"] = Lab(_RUNTIME["cfg"])
    return _RUNTIME["lab"]


def cfg() -> config.Config:
    return _RUNTIME["cfg"]


def doit_tasks(cfg: config.Config, graph: tuple[str, ...]):
    """Every operation of tasks/operations.py as a doit task (plus its Makefile aliases);
    `setup` runs `graph`."""
    for op in operations.OPERATIONS:
        needs = graph if op.graph else op.needs
        task = {"basename": op.name, "doc": op.doc, "actions": [action(op)] if op.run else None,
                "task_dep": list(needs)}
        if op.files:
            task["file_dep"] = [str(p) for p in op.files(cfg)]
        if op.in_graph:
            task["uptodate"] = [*(result_dep(r) for r in op.results), *(reality(fn) for fn in op.ready)]
            if op.settings:
                task["uptodate"].append(config_changed({n: getattr(cfg, n) for n in op.settings}))
        elif op.run:
            task["uptodate"] = [False]
        if op.after:
            task["teardown"] = [lambda after=op.after: after(cfg)]
        yield task
        for alias in op.aliases:
            yield {"basename": alias, "doc": f"Alias of `{op.name}`.", "actions": None, "task_dep": [op.name]}


def action(op: operations.Operation):
    """A doit python-action running op.run(lab), framed as one step."""
    def run():
        try:
            result = operations.perform(op, lab())
        except LabError as exc:
            console.error(exc.line())
            return TaskFailed(exc.line())
        except KeyboardInterrupt:
            # Fail the step (doit then saves what finished) rather than unwind with a traceback.
            line = f"{op.name} interrupted (Ctrl-C); run the same command again to continue"
            console.error(line)
            return TaskFailed(line)
        if isinstance(result, dict):
            return result
        # doit records {} as a result (result_dep then compares it) and None as none at all.
        return {} if op.in_graph else None
    run.__name__ = f"{op.name}_action"
    return run


def reality(fn):
    """An uptodate callable: fn(lab) -> bool, quietly False when reality can't be read."""
    def check(task, values):
        try:
            return bool(fn(lab()))
        except LabError:
            return False
    check.__name__ = fn.__name__
    return check


class Reporter(ConsoleReporter):
    """Steps print themselves; this adds up-to-date lines and a one-line failure summary."""

    desc = "gitops-lab console"

    def initialize(self, tasks, selected_tasks):
        self.started = time.monotonic()
        self.executed: list[str] = []
        self.finished: dict[str, float] = {}  # task -> wall-clock time its actions succeeded
        self.values: dict[str, dict] = {}

    def execute_task(self, task):
        if task.actions and not task.name.startswith("_"):
            self.executed.append(task.name)

    def add_success(self, task):
        self.finished[task.name] = time.time()
        if task.name in RECORDED_VALUES and isinstance(task.values, dict):
            self.values[task.name] = task.values

    def skip_uptodate(self, task):
        if not task.name.startswith("_") and task.actions:
            console.say(f"· {task.name}: up to date", "dim")

    def add_failure(self, task, fail):
        if fail.report:
            self.failures.append({"task": task, "exception": fail})

    def complete_run(self):
        record_run(self)
        took = console.seconds(time.monotonic() - self.started)
        for result in self.failures:
            fail, task = result["exception"], result["task"]
            if isinstance(fail, (TaskFailed, UnmetDependency)):
                continue  # the step already printed its one line; its dependents add nothing
            msg = fail.get_msg().strip()
            console.error(f"{task.name}: unexpected error (a bug — please report it):\n{msg}")
        for msg in self.runtime_errors:
            console.error(msg.strip())
        if self.failures or self.runtime_errors:
            names = ", ".join(r["task"].name for r in self.failures)
            console.error(f"stopped after {took}: {names} failed; fix the cause above and run the same "
                          "command again (finished steps are not redone)")
            return
        rt = _RUNTIME.get("lab")
        if rt is not None and rt.dry_run:
            planned = rt.planned
            console.say(f"\ndry run: {len(planned)} mutating command(s) would run, none ran.", "bold")
            return
        if self.executed:
            console.say(f"\n✓ done in {took} ({', '.join(self.executed)})", "green")
        else:
            console.say(f"\n✓ nothing to do ({took}): everything is up to date", "green")


# --- a machine-readable record of the run, for a supervisor (`doit watch`) --------------------------

RUN_RECORD = "LAB_RUN_RECORD"  # environment: where to write it (set by tasks/day2/watch.py for its children)
RECORDED_VALUES = ("verify",)


def record_run(reporter: Reporter) -> None:
    """What ran, what failed (its one line), and what verify saw, as JSON at $LAB_RUN_RECORD."""
    import json
    import os
    target = os.environ.get(RUN_RECORD)
    if not target:
        return
    failed = []
    for result in reporter.failures:
        fail = result["exception"]
        if isinstance(fail, UnmetDependency):
            continue  # its dependency's failure is the story
        lines = [ln for ln in fail.get_msg().strip().splitlines() if ln.strip()]
        # a step's failure is its one line; anything else (a bug) ends with the exception's last line
        error = (lines[0] if isinstance(fail, TaskFailed) else lines[-1]) if lines else "failed"
        failed.append({"task": result["task"].name, "error": error})
    record = {"executed": reporter.executed, "finished": reporter.finished, "failed": failed,
              "errors": [m.strip() for m in reporter.runtime_errors], "values": reporter.values,
              "took": time.monotonic() - reporter.started, "ended": time.time()}
    tmp = target + ".tmp"
    with open(tmp, "w") as out:
        json.dump(record, out, default=str)
    os.replace(tmp, target)
