#!/usr/bin/env python3
"""Benchmark `doit setup` on the REAL tools (docker, kind, kubectl, flux), before and after, in one run.

Two throwaway clones of this repository, BEFORE (default: the merge base with main) and AFTER (default:
HEAD), each run through the same scenarios on its own fresh cluster, RUNS times, interleaved (before,
after, before, after, ...) so that the machine's load falls on both alike:

    cold                    `doit setup` on nothing (registry, cluster, Flux, image, sync, verify)
    no-op                   `doit setup` again
    app edit                app/server.py edited: served in dev, staging and production
    manifest edit           flux-cd/apps/dev/kustomization.yaml edited (FAIL_RATE): applied and verified
    app edit, WATCH_ENVS=dev  (after one unmeasured `doit setup WATCH_ENVS=dev`): served in dev

Each `doit setup` counts until it returns: its sync waits for Flux, its verify checks every environment
the run rolls through a port-forward. For the app edit, the phases, read from the lab's own output as
it arrives (each step and each echoed command with its duration): build (step `image`), push (step
`app_push`), publish (sync up to its first reconcile: lab-vars, the artifact, the bootstrap),
reconcile (sync's reconciles, first start to last end), per environment its `flux reconcile
kustomization apps-<env>` or, after, the lab's request (the annotation to the end of its watch):
apply + rollout + Flux's health check and its rollout as the cluster
recorded it (new ReplicaSet created → its last pod Ready; the API's timestamps are whole seconds),
verify (step `verify`). Printed as min / median / max over the runs. Not a test.

REAL_BENCH_LOGS=DIR keeps each measured run's output there, each line with its second.
Every cluster run holds /tmp/reallab.lock (the machine's one real lab at a time), released between
runs. Settings come from the environment as for the e2e suite (hack/e2e/run.sh):

    PATH=$(python3 hack/kit/kit.py bin):$PATH MIRRORS=offline MONITORING=crds CREATE_WAIT=600s \\
        KIND_NODE_IMAGE=kindest/node:v1.36.1 python3 hack/bench/real_bench.py --runs 3
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {"CLUSTER_NAME": "gitops-lab-perf", "REGISTRY_NAME": "kind-registry-perf", "REGISTRY_PORT": "5185",
       "NO_COLOR": "1"}
LOCK = "/tmp/reallab.lock"
LOGS = Path(os.environ["REAL_BENCH_LOGS"]) if os.environ.get("REAL_BENCH_LOGS") else None  # a folder
ENVIRONMENTS = ("dev", "staging", "production")
SCENARIOS = ("cold", "no-op", "app edit", "manifest edit", "app edit, WATCH_ENVS=dev")
PHASES = ("build", "push", "publish", "reconcile", *(f"  apps-{e} reconcile" for e in ENVIRONMENTS),
          *(f"  {e} rollout" for e in ENVIRONMENTS), "verify", "served (whole run)")

REQUEST = "reconcile.fluxcd.io/requestedAt="  # the annotation the lab and flux reconcile set
HANDLED = "--for=jsonpath={.status.lastHandledReconcileAt}="
STEP_START = re.compile(r"^▶ (\w+):")
STEP_END = re.compile(r"^  ✓ (\w+) done in (\S+)$")
COMMAND = re.compile(r"^  \$ (.*) \((\d+(?:\.\d+)?(?:ms|s)|\d+m\d\ds)\)$")


def seconds(text: str) -> float:
    """console.seconds' formats: 850ms, 12.3s, 2m03s."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if "m" in text:
        minutes, _, rest = text.partition("m")
        return int(minutes) * 60 + float(rest.rstrip("s"))
    return float(text.rstrip("s"))


class Run:
    """One `doit` run: its wall time, its lines with the moment each arrived, what it printed."""

    def __init__(self, clone: Path, args: tuple[str, ...], env: dict[str, str]):
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=clone, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        self.lines: list[tuple[float, str]] = []
        for line in proc.stdout:
            self.lines.append((time.monotonic() - started, line.rstrip("\n")))
        self.rc = proc.wait()
        self.wall = time.monotonic() - started
        self.calls = sum(1 for _, line in self.lines if line.lstrip().startswith("$ "))

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def steps(self) -> dict[str, tuple[float, float]]:
        """step -> (start, duration)."""
        starts, found = {}, {}
        for t, line in self.lines:
            if m := STEP_START.match(line):
                starts[m.group(1)] = t
            elif m := STEP_END.match(line):
                found[m.group(1)] = (starts.get(m.group(1), t), seconds(m.group(2)))
        return found

    def commands(self) -> list[tuple[float, float, str]]:
        """(start, duration, command): a command's line arrives complete when it ends."""
        out = []
        for t, line in self.lines:
            if m := COMMAND.match(line):
                took = seconds(m.group(2))
                out.append((t - took, took, m.group(1)))
        return out

    def phases(self) -> dict[str, float]:
        steps = self.steps()
        found = {"served (whole run)": self.wall}
        for phase, step in (("build", "image"), ("push", "app_push"), ("verify", "verify")):
            if step in steps:
                found[phase] = steps[step][1]
        if "sync" in steps:
            start, took = steps["sync"]
            cmds = [c for c in self.commands() if start <= c[0] <= start + took]
            # `flux reconcile …` (before), or the lab's own request: one annotation, then a watch per object
            reconciles = [c for c in cmds if c[2].startswith("flux reconcile") or REQUEST in c[2]
                          or HANDLED in c[2] or " wait kustomizations" in c[2]]
            if reconciles:
                first = min(c[0] for c in reconciles)
                found["publish"] = first - start
                found["reconcile"] = max(c[0] + c[1] for c in reconciles) - first
            for begun, dur, cmd in reconciles:
                for env in ENVIRONMENTS:
                    if f"kustomization apps-{env} " in cmd + " ":
                        found[f"  apps-{env} reconcile"] = dur
                    elif HANDLED in cmd and f"/apps-{env} " in cmd:  # from its annotation to the watch's end
                        asked = [b for b, _, c in reconciles if REQUEST in c and f"/apps-{env} " in c and b <= begun]
                        found[f"  apps-{env} reconcile"] = begun + dur - max(asked, default=begun)
        return found


def rollouts(env: dict[str, str]) -> dict[str, float]:
    """Per environment: the newest ReplicaSet's creation to its last pod's Ready, from the cluster."""
    found = {}
    for ns in ENVIRONMENTS:
        res = subprocess.run(["kubectl", "--context", f"kind-{ENV['CLUSTER_NAME']}", "-n", ns, "get", "rs,pods",
                              "-l", "app.kubernetes.io/name=app", "-o", "json"], env=env, capture_output=True,
                             text=True, timeout=60)
        if res.returncode != 0:
            continue
        items = json.loads(res.stdout)["items"]
        sets = [i for i in items if i["kind"] == "ReplicaSet"]
        if not sets:
            continue
        newest = max(sets, key=lambda rs: int(rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision", 0)))
        template = newest["metadata"]["labels"].get("pod-template-hash")
        ready = [c["lastTransitionTime"] for p in items if p["kind"] == "Pod"
                 and p["metadata"]["labels"].get("pod-template-hash") == template
                 for c in p.get("status", {}).get("conditions", []) if c["type"] == "Ready" and c["status"] == "True"]
        if ready:
            found[f"  {ns} rollout"] = (stamp(max(ready)) - stamp(newest["metadata"]["creationTimestamp"]))
    return found


def stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timestamp()


@contextlib.contextmanager
def real_lab_lock():
    with open(LOCK, "a") as f:
        if os.environ.get("REAL_BENCH_NO_LOCK") != "1":
            print(f"  (waiting for {LOCK})", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def clone(ref: str, into: Path) -> Path:
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "-q", sha], check=True)
    return into


def teardown(clone: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "invoke", "teardown"], cwd=clone, env=env, capture_output=True, timeout=900)


def one_pass(name: str, repo: Path, results: dict, n: int) -> None:
    """cold → no-op → app edit → manifest edit → (WATCH_ENVS=dev) app edit, then teardown."""
    env = {k: v for k, v in {**os.environ, **ENV}.items() if k not in ("LAB_STATE_DIR", "WATCH_ENVS")}
    env["PYTHONPATH"] = str(repo)  # the clone's own tasks/, never an editable install's

    def doit(scenario: str | None, *args: str, watch_envs: str = "") -> Run:
        run = Run(repo, ("setup", *args), {**env, **({"WATCH_ENVS": watch_envs} if watch_envs else {})})
        if run.rc != 0:
            print(run.text[-4000:])
            sys.exit(f"{name}: `doit setup` ({scenario or 'unmeasured'}) failed after {run.wall:.0f}s")
        if LOGS:  # every measured run's output, to read where its time went
            (LOGS / f"{name}-{n}-{(scenario or 'unmeasured').replace(' ', '_').replace(',', '').replace('=', '-')}.log") \
                .write_text("\n".join(f"{t:8.3f} {line}" for t, line in run.lines) + "\n")
        if scenario:
            results[name][scenario].append(run)
            print(f"  {name:<6} run {n}  {scenario:<26}{run.wall:8.1f}s {run.calls:4d} calls", flush=True)
        return run

    teardown(repo, env)
    try:
        doit("cold")
        doit("no-op")
        server = repo / "app" / "server.py"
        server.write_text(server.read_text() + f"\n# bench {name} {n} {time.time()}\n")
        run = doit("app edit")
        run.rollout = rollouts(env)
        overlay = repo / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
        text = overlay.read_text()
        overlay.write_text(re.sub(r"FAIL_RATE=0\.0\d", f"FAIL_RATE=0.0{4 - n % 3}", text, count=1))
        doit("manifest edit")
        doit(None, watch_envs="dev")  # pins staging and production: the first such sync seeds them
        server.write_text(server.read_text() + f"\n# bench {name} {n} dev {time.time()}\n")
        doit("app edit, WATCH_ENVS=dev", watch_envs="dev")
    finally:
        teardown(repo, env)
        subprocess.run(["git", "-C", str(repo), "checkout", "-q", "--", "."], check=True)


def spread(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def report(results: dict, refs: dict[str, str], runs: int) -> None:
    print(f"\nReal lab, {runs} run(s) each: median (min–max) seconds; "
          f"before = {refs['before']}, after = {refs['after']}")
    print(f"\n| scenario | before | after | calls before / after |\n|---|---|---|---|")
    for scenario in SCENARIOS:
        b, a = results["before"][scenario], results["after"][scenario]
        calls = f"{statistics.median([r.calls for r in b]) if b else '–'} / {statistics.median([r.calls for r in a]) if a else '–'}"
        print(f"| {scenario} | {spread([r.wall for r in b])} | {spread([r.wall for r in a])} | {calls} |")
    print("\nApp edit, phase by phase (served in dev, staging and production):\n")
    print("| phase | before | after |\n|---|---|---|")
    for phase in PHASES:
        cells = []
        for name in ("before", "after"):
            values = []
            for run in results[name]["app edit"]:
                found = {**run.phases(), **getattr(run, "rollout", {})}
                if phase in found:
                    values.append(found[phase])
            cells.append(spread(values))
        print(f"| {phase} | {cells[0]} | {cells[1]} |")
    print("\nManifest edit, phase by phase (flux-cd/apps/dev: a new artifact; dev rolls):\n")
    print("| phase | before | after |\n|---|---|---|")
    for phase in ("publish", "reconcile", "  apps-dev reconcile", "verify", "served (whole run)"):
        cells = [spread([r.phases()[phase] for r in results[name]["manifest edit"] if phase in r.phases()])
                 for name in ("before", "after")]
        print(f"| {phase} | {cells[0]} | {cells[1]} |")
    print("\nNo-op, step by step (each step's own time; the rest is doit's start and its up-to-date checks):\n")
    print("| step | before | after |\n|---|---|---|")
    steps = sorted({s for name in ("before", "after") for r in results[name]["no-op"] for s in r.steps()},
                   key=lambda s: min(r.steps()[s][0] for name in ("before", "after") for r in results[name]["no-op"]
                                     if s in r.steps()))
    for step in (*steps, "whole run"):
        cells = [spread([r.wall if step == "whole run" else r.steps()[step][1] for r in results[name]["no-op"]
                         if step == "whole run" or step in r.steps()]) for name in ("before", "after")]
        print(f"| {step} | {cells[0]} | {cells[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default=None, help="git ref (default: merge base of HEAD and main)")
    parser.add_argument("--after", default="HEAD", help="git ref (default: HEAD)")
    parser.add_argument("--only", choices=("before", "after"), help="measure one side only")
    args = parser.parse_args()
    before = args.before or subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    refs = {"before": before[:12], "after": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12",
                                                            args.after], capture_output=True, text=True,
                                                           check=True).stdout.strip()}
    # Killed (SIGTERM): unwind like Ctrl-C, so the pass in progress tears its cluster down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sides = [args.only] if args.only else ["after", "before"]  # (after first: a broken branch stops early)
    results = {name: {s: [] for s in SCENARIOS} for name in ("before", "after")}
    with tempfile.TemporaryDirectory() as tmp:
        repos = {name: clone(before if name == "before" else args.after, Path(tmp) / name) for name in sides}
        if os.environ.get("MIRRORS", "off") != "off":
            with real_lab_lock():  # not timed: fills the mirrors both sides pull from (they outlive teardown)
                fill = subprocess.run([sys.executable, "-m", "doit", "mirror_fill"], cwd=repos[sides[0]],
                                      env={**os.environ, **ENV, "PYTHONPATH": str(repos[sides[0]])},
                                      capture_output=True, text=True, timeout=3600)
                if fill.returncode != 0:
                    sys.exit(f"doit mirror_fill failed\n{fill.stdout[-3000:]}\n{fill.stderr[-2000:]}")
        for n in range(1, args.runs + 1):
            for name in sides:
                with real_lab_lock():
                    one_pass(name, repos[name], results, n)
    report(results, refs, args.runs)


if __name__ == "__main__":
    main()
