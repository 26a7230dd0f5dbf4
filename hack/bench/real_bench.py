#!/usr/bin/env python3
"""Benchmark `doit setup` on the REAL tools (docker, kind, kubectl, flux): cold, no-op,
app edit and manifest edit, each until `doit setup` returns (its sync waits until every
Flux Kustomization is Ready, its verify checks the image in every environment). Prints wall
time and the external commands the lab ran (its echoed `$` lines). Not a test.

Runs in a throwaway clone with its own cluster, registry and port, and tears them down
after. Settings come from the environment as for the e2e suite (hack/e2e/run.sh sets
MIRRORS=offline, MONITORING=crds, KIND_NODE_IMAGE where no registry is reachable):

    PATH=$(python3 hack/kit/kit.py bin):$PATH MIRRORS=offline MONITORING=crds \
        KIND_NODE_IMAGE=kindest/node:v1.36.1 python3 hack/bench/real_bench.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {"CLUSTER_NAME": "gitops-lab-bench", "REGISTRY_NAME": "kind-registry-bench", "REGISTRY_PORT": "5085",
       "NO_COLOR": "1"}


def doit(clone: Path, *args: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doit", *args], cwd=clone, env={**os.environ, **ENV},
                          capture_output=True, text=True, timeout=3600)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"doit {' '.join(args)} failed after {took:.0f}s\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    calls = sum(1 for line in proc.stdout.splitlines() if line.lstrip().startswith("$ "))
    return took, calls, proc.stdout


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "lab"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run([sys.executable, "-m", "invoke", "teardown"], cwd=clone, env={**os.environ, **ENV},
                       capture_output=True, timeout=900)
        try:
            if os.environ.get("MIRRORS", "off") != "off":
                took, calls, _ = doit(clone, "mirror_fill")
                rows.append(("mirror_fill (not part of setup)", took, calls))
            rows.append(("cold", *doit(clone, "setup")[:2]))
            rows.append(("no-op", *doit(clone, "setup")[:2]))
            server = clone / "app" / "server.py"
            server.write_text(server.read_text() + f"\n# bench {time.time()}\n")
            rows.append(("app edit (served in every env)", *doit(clone, "setup")[:2]))
            overlay = clone / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
            overlay.write_text(overlay.read_text().replace("FAIL_RATE=0.05", "FAIL_RATE=0.04"))
            rows.append(("manifest edit (applied)", *doit(clone, "setup")[:2]))
        finally:
            subprocess.run([sys.executable, "-m", "invoke", "teardown"], cwd=clone, env={**os.environ, **ENV},
                           capture_output=True, timeout=900)
    print(f"{'scenario':<34}{'wall':>10}{'external calls':>16}")
    for name, took, calls in rows:
        print(f"{name:<34}{took:>9.1f}s{calls:>16}")


if __name__ == "__main__":
    main()
