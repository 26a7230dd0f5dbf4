#!/usr/bin/env python3
"""Benchmark `doit watch`: the time from a save until every environment it rolls serves the result,
for an app edit (build, push, publish, reconcile, verify) and a manifest edit (publish, reconcile,
verify). Figures come from the watcher's own record (.lab/watch-runs.jsonl: the file's mtime to the
moment `verify` saw every environment serve the expected image through a port-forward). Not a test.

    python hack/bench/watch_bench.py [--repeat N] [--watch-envs dev]          # against the fakes
    PATH=$(python3 hack/kit/kit.py bin):$PATH MIRRORS=offline MONITORING=crds \\
        KIND_NODE_IMAGE=kindest/node:v1.36.1 python3 hack/bench/watch_bench.py --real   # the real tools

--real runs in a throwaway clone of the committed tree with its own cluster, registry and port
(CLUSTER_NAME=gitops-lab-watch, REGISTRY_NAME=kind-registry-watch, REGISTRY_PORT=5301), brings it up
with `doit setup` (not measured), and tears it all down afterwards, volumes included.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
REAL_ENV = {"CLUSTER_NAME": "gitops-lab-watch", "REGISTRY_NAME": "kind-registry-watch", "REGISTRY_PORT": "5301",
            "NO_COLOR": "1"}


def edit_app(root: Path, n: int) -> None:
    server = root / "app" / "server.py"
    server.write_text(server.read_text() + f"\n# watch bench {n} {time.time()}\n")


def edit_manifest(root: Path, n: int) -> None:
    overlay = root / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + f"\n# watch bench {n} {time.time()}\n")


class Watcher:
    def __init__(self, root: Path, env: dict, settings: list[str]):
        self.runs_file = root / ".lab" / "watch-runs.jsonl"
        self.log = open(root / ".lab" / "watch-bench.out", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "doit", "watch", *settings], cwd=root, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def runs(self) -> list[dict]:
        try:
            return [json.loads(ln) for ln in self.runs_file.read_text().splitlines() if ln.strip()]
        except FileNotFoundError:
            return []

    def wait(self, count: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while len(self.runs()) < count:
            if self.proc.poll() is not None:
                sys.exit(f"the watcher ended (rc {self.proc.returncode}); see {self.log.name}")
            if time.monotonic() > deadline:
                sys.exit(f"run {count} not recorded within {timeout:.0f}s; see {self.log.name}")
            time.sleep(0.1)
        run = self.runs()[count - 1]
        if not run["ok"]:
            sys.exit(f"run {count} failed: {run['error']}")
        return run

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=120)
        self.log.close()


def measure(root: Path, env: dict, settings: list[str], repeat: int, timeout: float) -> dict[str, list[dict]]:
    w = Watcher(root, env, settings)
    results: dict[str, list[dict]] = {"app edit": [], "manifest edit": []}
    try:
        count = 1
        w.wait(count, timeout)  # the first run brings the lab up to date
        for n in range(repeat):
            for name, edit in (("app edit", edit_app), ("manifest edit", edit_manifest)):
                edit(root, n)
                count += 1
                results[name].append(w.wait(count, timeout))
    finally:
        w.stop()
    return results


def report(title: str, results: dict[str, list[dict]]) -> None:
    print(title)
    print(f"{'scenario':<15}{'save → serving':>16}{'run':>9}  {'live in':<26}steps")
    for name, runs in results.items():
        if not runs:
            continue
        served = statistics.median(r["save_to_serving"] for r in runs)
        took = statistics.median(r["took"] for r in runs)
        spread = f" ({min(r['save_to_serving'] for r in runs):.1f}–{max(r['save_to_serving'] for r in runs):.1f})" \
            if len(runs) > 1 else ""
        print(f"{name:<15}{served:>8.2f}s{spread:<8}{took:>8.2f}s  {', '.join(runs[0]['live']):<26}"
              f"{', '.join(runs[0]['steps'])}")


def fakes(args) -> None:
    from tests.graph.conftest import Lab  # noqa: PLC0415
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp))
        try:
            proc = lab.doit("setup", *args.settings)
            if proc.returncode != 0:
                sys.exit(f"the cold doit setup failed\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            results = measure(lab.root, lab.env(), [f"WATCH_DEBOUNCE_MS={args.debounce}", *args.settings],
                              args.repeat, timeout=120)
        finally:
            lab.world.kill_background()
    report(f"doit watch against the fakes ({' '.join(args.settings) or 'every environment'}), "
           f"median of {args.repeat}, debounce {args.debounce} ms", results)


def real(args) -> None:
    env = {**os.environ, **REAL_ENV}
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "lab"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        try:
            if env.get("MIRRORS", "off") != "off":
                subprocess.run([sys.executable, "-m", "doit", "mirror_fill"], cwd=clone, env=env, check=True,
                               capture_output=True, timeout=3600)
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "doit", "setup", *args.settings], cwd=clone, env=env,
                                  capture_output=True, text=True, timeout=3600)
            if proc.returncode != 0:
                sys.exit(f"the cold doit setup failed\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
            print(f"cold doit setup (not measured below): {time.monotonic() - started:.0f}s")
            results = measure(clone, env, [f"WATCH_DEBOUNCE_MS={args.debounce}", *args.settings], args.repeat,
                              timeout=900)
        finally:
            # PURGE=1: the registry's and the mirrors' volumes are this benchmark's own (REGISTRY_NAME above)
            subprocess.run([sys.executable, "-m", "invoke", "teardown", "--purge"], cwd=clone, env=env,
                           capture_output=True, timeout=900)
    report(f"doit watch on the real tools ({' '.join(args.settings) or 'every environment'}), "
           f"median of {args.repeat}", results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--debounce", type=int, default=300, help="WATCH_DEBOUNCE_MS")
    parser.add_argument("--watch-envs", default="", help="WATCH_ENVS, e.g. dev")
    parser.add_argument("--real", action="store_true", help="the real tools instead of the fakes")
    args = parser.parse_args()
    args.settings = [f"WATCH_ENVS={args.watch_envs}"] if args.watch_envs else []
    (real if args.real else fakes)(args)


if __name__ == "__main__":
    main()
