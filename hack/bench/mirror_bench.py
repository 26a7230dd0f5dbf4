#!/usr/bin/env python3
"""Benchmark the local mirrors on the REAL tools: a cold `doit setup`, `inv teardown`, then a
second cold `doit setup`; for each, wall time, the bytes the mirrors served to the nodes (their
access logs) and the bytes they had to fetch from upstream (their storage's growth: a pull-through
cache stores what it fetched). Not a test.

    MIRRORS=on       the second run should fetch 0 bytes upstream (needs internet for the first)
    MIRRORS=offline  nothing can come from upstream; `doit mirror_fill` runs first
    MIRRORS=off      no mirrors: every pull of both runs goes upstream (only wall times are shown)

Runs in a throwaway clone with its own cluster, registry, mirrors and ports, removed afterwards
(PURGE=1: mirror volumes too). Settings as for the e2e suite, e.g. where nothing can be pulled:

    PATH=$(python3 hack/kit/kit.py bin):$PATH MIRRORS=offline MONITORING=crds \
        KIND_NODE_IMAGE=kindest/node:v1.36.1 python3 hack/bench/mirror_bench.py
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {"CLUSTER_NAME": "gitops-lab-mbench", "REGISTRY_NAME": "kind-registry-mbench", "REGISTRY_PORT": "5091",
       "NO_COLOR": "1"}
HOSTS = ("docker-io", "ghcr-io", "registry-k8s-io", "quay-io")
# distribution's access log: "GET /v2/<name>/blobs/sha256:<hex>?ns=<upstream> HTTP/1.1" 200 <bytes>
# (containerd adds ?ns= when it asks a mirror)
SERVED = re.compile(r'"GET /v2/\S+/blobs/sha256:[0-9a-f]+(?:\?\S*)? HTTP/[\d.]+" 200 (\d+)')


def run(clone: Path, *args: str, tool: str = "doit") -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", tool, *args], cwd=clone, env={**os.environ, **ENV},
                          capture_output=True, text=True, timeout=3600)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{tool} {' '.join(args)} failed after {took:.0f}s\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return took


def mirrors() -> list[str]:
    return [f"{ENV['REGISTRY_NAME']}-mirror-{h}" for h in HOSTS]


def served_bytes(since: str) -> int:
    total = 0
    for name in mirrors():
        logs = subprocess.run(["docker", "logs", "--since", since, name], capture_output=True, text=True)
        found = [int(m) for m in SERVED.findall(logs.stdout + logs.stderr)]
        print(f"  {name}: {len(found)} blobs served, {sum(found) / 1e6:.1f} MB", file=sys.stderr)
        total += sum(found)
    return total


def stored_bytes() -> int:
    """The mirrors' data volumes, measured whether or not their containers exist (teardown
    removes the containers, keeps the volumes)."""
    total = 0
    image = os.environ.get("REGISTRY_IMAGE", "registry:3")
    for name in mirrors():
        du = subprocess.run(["docker", "run", "--rm", "-v", f"{name}-data:/data", "--entrypoint", "du", image,
                             "-sb", "/data"], capture_output=True, text=True)
        total += int(du.stdout.split()[0]) if du.returncode == 0 and du.stdout else 0
    return total


def cold(clone: Path, label: str, rows: list, with_mirrors: bool) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    before = stored_bytes() if with_mirrors else 0
    took = run(clone, "setup")
    if with_mirrors:
        rows.append((label, took, served_bytes(since), stored_bytes() - before))
    else:
        rows.append((label, took, None, None))


def main() -> None:
    mode = os.environ.get("MIRRORS", "off")
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "lab"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run([sys.executable, "-m", "invoke", "teardown", "--purge"], cwd=clone,
                       env={**os.environ, **ENV}, capture_output=True, timeout=900)
        try:
            if mode != "off":
                rows.append(("mirror_fill (not part of setup)", run(clone, "mirror_fill"), None, None))
            cold(clone, "first cold setup", rows, mode != "off")
            run(clone, "teardown", tool="invoke")
            cold(clone, "second cold setup, after teardown", rows, mode != "off")
        finally:
            subprocess.run([sys.executable, "-m", "invoke", "teardown", "--purge"], cwd=clone,
                           env={**os.environ, **ENV}, capture_output=True, timeout=900)
    print(f"MIRRORS={mode} MONITORING={os.environ.get('MONITORING', 'full')}")
    print(f"{'run':<36}{'wall':>9}{'served by mirrors':>20}{'fetched upstream':>19}")
    for name, took, served, fetched in rows:
        def mb(n):
            return "-" if n is None else f"{n / 1e6:.1f} MB"
        print(f"{name:<36}{took:>8.1f}s{mb(served):>20}{mb(fetched):>19}")


if __name__ == "__main__":
    main()
