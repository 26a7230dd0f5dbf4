#!/usr/bin/env python3
"""Benchmark the built-in load generator (tasks/core/loadgen.py) against `hey`.

Starts the app (app/server.py) on a free loopback port, then for each route:

  /healthz  throughput: requests/s of the built-in generator vs hey's, same
            concurrency, same duration, same server (target >= 50 %);
  /work     accuracy: p50/p90/p99 reported by both (the server sleeps
            50-200 ms, so both should see ~0.2 s at p99; target: within 10 %).

Runs alternate (hey, built-in, hey, built-in, ...) so drift hits both alike.
Only 127.0.0.1 is ever loaded; every run is bounded by -d seconds.

    python hack/bench/loadgen_bench.py                 # defaults: -c 50 -d 10 -r 2
    python hack/bench/loadgen_bench.py -c 50 -d 5 -r 1 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tasks.core import loadgen  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int) -> subprocess.Popen:
    env = {**os.environ, "PORT": str(port), "GREETING": "bench", "READINESS_DELAY_SEC": "0"}
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=REPO / "app", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app exited: {proc.stderr.read().decode()[-500:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("app did not become ready in 20 s")


def parse_hey(text: str) -> dict:
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    out = {"rps": float(rps.group(1)) if rps else 0.0}
    for q, v in re.findall(r"(\d+)%+ in ([\d.]+) secs", text):
        out[f"p{q}"] = float(v)
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", text))
    out["codes"] = {k: int(v) for k, v in codes.items()}
    return out


def run_hey(url: str, duration: int, concurrency: int) -> dict:
    res = subprocess.run(["hey", "-z", f"{duration}s", "-c", str(concurrency), url],
                         capture_output=True, text=True, timeout=duration + 60)
    return parse_hey(res.stdout)


def run_builtin(url: str, duration: int, concurrency: int) -> dict:
    s = loadgen.run(url, duration, concurrency, progress=None)
    q = s.quantiles()
    return {"rps": s.rps, "p50": q[50], "p90": q[90], "p99": q[99],
            "codes": {str(k): v for k, v in s.codes.items()}, "errors": dict(s.errors)}


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--concurrency", type=int, default=50)
    ap.add_argument("-d", "--duration", type=int, default=10, help="seconds per run")
    ap.add_argument("-r", "--repeat", type=int, default=2, help="alternating runs per tool and route")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if not shutil.which("hey"):
        print("hey is not installed (Debian/Ubuntu: apt-get install hey)", file=sys.stderr)
        return 2
    port = free_port()
    app = start_app(port)
    results: dict = {"cpus": os.cpu_count(), "concurrency": args.concurrency, "duration": args.duration}
    try:
        for route in ("/healthz", "/work"):
            url = f"http://127.0.0.1:{port}{route}"
            runs = {"hey": [], "built-in": []}
            for _ in range(args.repeat):
                runs["hey"].append(run_hey(url, args.duration, args.concurrency))
                runs["built-in"].append(run_builtin(url, args.duration, args.concurrency))
            agg = {tool: {k: mean([r.get(k) for r in rs]) for k in ("rps", "p50", "p90", "p99")}
                   for tool, rs in runs.items()}
            results[route] = {"runs": runs, "mean": agg}
    finally:
        os.killpg(app.pid, signal.SIGINT)
        try:
            app.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(app.pid, signal.SIGKILL)
    print(f"{results['cpus']} CPUs, concurrency {args.concurrency}, {args.duration}s x {args.repeat} per tool")
    print(f"{'route':9} {'tool':9} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for route in ("/healthz", "/work"):
        for tool in ("hey", "built-in"):
            m = results[route]["mean"][tool]
            print(f"{route:9} {tool:9} {m['rps']:9.0f} {m['p50'] * 1000:8.2f} {m['p90'] * 1000:8.2f} "
                  f"{m['p99'] * 1000:8.2f}")
    h, b = results["/healthz"]["mean"]["hey"], results["/healthz"]["mean"]["built-in"]
    w, wb = results["/work"]["mean"]["hey"], results["/work"]["mean"]["built-in"]
    share = b["rps"] / h["rps"] if h["rps"] else 0
    p99_dev = abs(wb["p99"] - w["p99"]) / w["p99"] if w["p99"] else 1
    p50_dev = abs(wb["p50"] - w["p50"]) / w["p50"] if w["p50"] else 1
    results["verdict"] = {"rate_share": share, "work_p99_deviation": p99_dev, "work_p50_deviation": p50_dev}
    print(f"built-in rate on /healthz: {share:.0%} of hey's (target >= 50 %)")
    print(f"/work p99: built-in {wb['p99'] * 1000:.1f} ms vs hey {w['p99'] * 1000:.1f} ms "
          f"({p99_dev:.1%} apart; target <= 10 %); p50 {p50_dev:.1%} apart")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if share >= 0.5 and p99_dev <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
