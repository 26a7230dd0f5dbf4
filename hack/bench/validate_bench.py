#!/usr/bin/env python3
"""`doit validate`'s checks on the real tree (render every layer, schemas, policies): wall time.

    python hack/bench/validate_bench.py [--repeat 3]

Goal: under 10 s on the 2-core CI machine (3.3 s measured alone). A benchmark, not a test: a
timed assertion fails on a loaded machine for reasons that are not the product's.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tasks import validation  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    times = []
    for _ in range(args.repeat):
        start = time.monotonic()
        problems = validation.validate(ROOT)
        times.append(time.monotonic() - start)
        if problems:
            print(f"validate found {len(problems)} problem(s); first: {problems[0]}", file=sys.stderr)
            return 1
    print(f"validate: {args.repeat} runs, min {min(times):.2f} s, median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s (goal < 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
