#!/usr/bin/env python3
"""Benchmark the task graph against the fakes (no Docker needed): cold, no-op,
app-edit and manifest-edit `doit setup`. Prints wall time and the number of external
commands, mutating and read-only, as the fakes logged them. Not a test.

    python hack/bench/setup_bench.py [--repeat N] [--list]

--list also prints each scenario's commands (first repetition), mutating ones marked `M`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.graph.conftest import Lab  # noqa: E402


def scenario(lab: Lab, name: str, listing: list[str] | None = None) -> tuple[float, int, int]:
    if name == "app edit":
        server = lab.root / "app" / "server.py"
        server.write_text(server.read_text() + f"\n# bench {time.time()}\n")
    elif name == "manifest edit":
        overlay = lab.root / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
        overlay.write_text(overlay.read_text() + f"\n# bench {time.time()}\n")
    lab.world.clear_calls()
    started = time.perf_counter()
    proc = lab.doit("setup")
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{name}: doit setup failed\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    calls = lab.world.calls()
    if listing is not None:
        listing += [("M " if c["mutating"] else "  ") + " ".join([c["tool"], *c["argv"]]) for c in calls]
    mutating = sum(1 for c in calls if c["mutating"])
    return took, mutating, len(calls) - mutating


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--list", action="store_true", help="print each scenario's commands")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, int, int]]] = {}
    listings: dict[str, list[str]] = {}
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            lab = Lab(Path(tmp))
            try:
                for name in ("cold", "no-op", "app edit", "manifest edit"):
                    listing = listings.setdefault(name, []) if args.list and i == 0 else None
                    results.setdefault(name, []).append(scenario(lab, name, listing))
            finally:
                lab.world.kill_background()
    for name, lines in listings.items():
        print(f"--- {name}: {len(lines)} commands")
        print("\n".join(lines))
    print(f"doit setup against the fakes, median of {args.repeat} runs")
    print(f"{'scenario':<15}{'wall time':>11}{'mutating':>10}{'read-only':>11}")
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        print(f"{name:<15}{wall:>10.2f}s{runs[0][1]:>10}{runs[0][2]:>11}")


if __name__ == "__main__":
    main()
