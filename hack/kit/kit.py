#!/usr/bin/env python3
"""The kit: every binary and image the lab would download, built here from sources.

Test tooling for machines with no container registry and no download site
(this project's CI sandboxes); a user's laptop pulls the real artifacts and
never needs it. Versions come from tasks/versions.py, the lab's one place for
them, so the kit and the lab cannot drift apart.

    python3 hack/kit/kit.py build [PART ...]   build what is missing, load images into Docker
    python3 hack/kit/kit.py status             what is cached, under which key
    python3 hack/kit/kit.py env                PATH line putting the kit's binaries first
    python3 hack/kit/kit.py bin                the folder of the kit's binaries
    python3 hack/kit/kit.py check              exit 0 when every part is cached (CI asks this)

Each part is a script in hack/kit/parts/ (see README.md for its contract). A part's
cache key hashes its script, the versions it names, and its dependencies' keys:
change any of those and only that part (and what depends on it) is rebuilt.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS_DIR = Path(__file__).resolve().parent / "parts"
sys.path.insert(0, str(ROOT))
from tasks import versions  # noqa: E402  (one place for versions)

CACHE = Path(os.environ.get("LAB_KIT_CACHE") or Path.home() / ".cache" / "gitops-lab-kit")


@dataclass
class Part:
    name: str
    doc: str
    uses: tuple[str, ...] = ()      # names in tasks/versions.py (or kit-only pins below)
    needs: tuple[str, ...] = ()     # parts whose outputs this one reads
    images: tuple[str, ...] = field(default=())  # filled in from the part's output


# Versions only the kit needs (what upstream's own builds use at the lab's pins).
KIT_PINS = {
    "DEBIAN_SUITE": "bookworm",
    # the app's Dockerfile FROM line (app/Dockerfile is the one place it is written)
    "KIT_PYTHON_BASE": "python:3.11.14-slim-bookworm",
}

PARTS = [
    Part("debian", "Debian rootfs image, the base of every stand-in", ("DEBIAN_SUITE",)),
    Part("kind", "kind CLI", ("KIND_VERSION",)),
    Part("k8s", "Kubernetes binaries", ("K8S_VERSION",)),
    Part("node-base", "kind's base image: systemd, containerd, runc, crictl, CNI plugins",
         ("KIND_VERSION",), ("debian",)),
    Part("node-images", "images a kind node preloads: control plane, etcd, CoreDNS, pause, CNI, storage",
         ("K8S_VERSION", "KIND_VERSION"), ("debian", "k8s")),
    Part("node", "the kind node image", ("K8S_VERSION", "KIND_VERSION"), ("node-base", "node-images", "k8s")),
    Part("flux", "flux CLI, Flux controller images and install manifests", ("FLUX_VERSION",), ("debian",)),
    Part("registry", "the lab registry image", ("REGISTRY_IMAGE",), ("debian",)),
    Part("python", "stand-in for the app's base image", ("KIT_PYTHON_BASE",), ("debian",)),
    Part("metrics-server", "metrics-server image", ("METRICS_SERVER_VERSION",), ("debian",)),
    Part("tools", "stand-ins for the debug and curl images", ("DEBUG_IMAGE", "CURL_IMAGE"), ("debian",)),
    Part("prom-crds", "Prometheus Operator CRDs", ("KUBE_PROMETHEUS_STACK_CHART",)),
]


def value(name: str) -> str:
    if name in KIT_PINS:
        return KIT_PINS[name]
    return str(getattr(versions, name))


def written(part: Part) -> bool:
    return (PARTS_DIR / f"{part.name}.sh").exists()


def by_name() -> dict[str, Part]:
    found = {p.name: p for p in PARTS}
    # parts whose script exists but are not declared above are a mistake worth a loud line
    for script in PARTS_DIR.glob("*.sh"):
        if script.stem not in found:
            raise SystemExit(f"kit: {script} is not declared in PARTS in {__file__}")
    return found


def key(part: Part, parts: dict[str, Part], memo: dict[str, str] | None = None) -> str:
    memo = {} if memo is None else memo
    if part.name in memo:
        return memo[part.name]
    h = hashlib.sha256()
    if not written(part):
        return "unwritten"
    h.update((PARTS_DIR / f"{part.name}.sh").read_bytes())
    for extra in sorted((PARTS_DIR / part.name).rglob("*")) if (PARTS_DIR / part.name).is_dir() else ():
        if extra.is_file():
            h.update(str(extra.relative_to(PARTS_DIR)).encode())
            h.update(extra.read_bytes())
    for name in part.uses:
        h.update(f"{name}={value(name)}\n".encode())
    for dep in part.needs:
        h.update(f"{dep}:{key(parts[dep], parts, memo)}\n".encode())
    memo[part.name] = h.hexdigest()[:16]
    return memo[part.name]


def out_dir(part: Part, parts: dict[str, Part]) -> Path:
    return CACHE / part.name / key(part, parts)


def ordered(names: list[str], parts: dict[str, Part]) -> list[Part]:
    seen: list[str] = []

    def visit(n: str) -> None:
        if n not in parts:
            raise SystemExit(f"kit: no part named {n!r}; parts: {', '.join(parts)}")
        for d in parts[n].needs:
            visit(d)
        if n not in seen:
            seen.append(n)

    for n in names:
        visit(n)
    return [parts[n] for n in seen]


def part_env(part: Part, parts: dict[str, Part], out: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in dir(versions):
        if name.isupper():
            env[name] = str(getattr(versions, name))
    env.update(KIT_PINS)
    env.update(KIT_OUT=str(out), KIT_WORK=str(work), KIT_ROOT=str(ROOT), KIT_CACHE=str(CACHE),
               KIT_PARTS=str(PARTS_DIR))
    for dep in part.needs:
        # node-base -> KIT_DEP_NODE_BASE: a name a shell can read
        env[f"KIT_DEP_{dep.upper().replace('-', '_')}"] = str(out_dir(parts[dep], parts))
    return env


def docker_has(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                          capture_output=True).returncode == 0


def load_images(out: Path) -> list[str]:
    """Every image the part saved is in Docker (a Docker reset or prune loses them)."""
    listing = out / "images.txt"
    refs = listing.read_text().split() if listing.exists() else []
    missing = [r for r in refs if not docker_has(r)]
    if missing:
        for tar in sorted((out / "images").glob("*.tar")):
            subprocess.run(["docker", "load", "-q", "-i", str(tar)], check=True, stdout=subprocess.DEVNULL)
        still = [r for r in missing if not docker_has(r)]
        if still:
            raise SystemExit(f"kit: {out} lists {', '.join(still)} but its archives do not hold them")
    return refs


def build(names: list[str]) -> int:
    parts = by_name()
    todo = ordered(names or list(parts), parts)
    total = time.monotonic()
    for part in todo:
        if not written(part):
            print(f"kit: {part.name:<14} SKIPPED: hack/kit/parts/{part.name}.sh is not written yet", flush=True)
            continue
        out = out_dir(part, parts)
        start = time.monotonic()
        # Two kit runs at once (two terminals, helpers) build each part once: the second waits.
        lock_path = CACHE / "locks" / f"{part.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = lock_path.open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"kit: {part.name:<14} another kit run is building it; waiting ...", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / "done").exists():
            refs = load_images(out)
            print(f"kit: {part.name:<14} cached  {key(part, parts)}  {len(refs)} image(s)"
                  f"  {time.monotonic() - start:5.1f}s", flush=True)
            continue
        print(f"kit: {part.name:<14} building ({part.doc}) ...", flush=True)
        work = CACHE / "work" / part.name
        tmp_out = out.with_name(out.name + ".partial")
        for d in (work, tmp_out):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        log = CACHE / "logs" / f"{part.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as fh:
            rc = subprocess.run(["bash", str(PARTS_DIR / f"{part.name}.sh")], env=part_env(part, parts, tmp_out, work),
                                stdout=fh, stderr=subprocess.STDOUT, cwd=work).returncode
        if rc != 0:
            tail = log.read_text(errors="replace").splitlines()[-25:]
            print("\n".join("    " + line for line in tail), file=sys.stderr)
            print(f"kit: {part.name} failed (exit {rc}) after {time.monotonic() - start:.0f}s; full log: {log}",
                  file=sys.stderr)
            return 1
        (tmp_out / "done").write_text(json.dumps({"built": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                  "seconds": round(time.monotonic() - start, 1)}))
        shutil.rmtree(out, ignore_errors=True)
        tmp_out.rename(out)
        shutil.rmtree(work, ignore_errors=True)
        refs = load_images(out)
        sizes = ", ".join(f"{r} {image_size(r)}" for r in refs)
        print(f"kit: {part.name:<14} built   {key(part, parts)}  {time.monotonic() - start:6.1f}s"
              + (f"  [{sizes}]" if sizes else ""), flush=True)
    link_bins(parts)
    print(f"kit: ready in {time.monotonic() - total:.1f}s; put its tools first on PATH: "
          f"export PATH={CACHE / 'bin'}:$PATH", flush=True)
    return 0


def image_size(ref: str) -> str:
    res = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], capture_output=True, text=True)
    return f"{int(res.stdout.strip()) / 1e6:.0f} MB" if res.returncode == 0 and res.stdout.strip() else "?"


def link_bins(parts: dict[str, Part]) -> None:
    """One bin/ with the current key's binaries of every built part."""
    bindir = CACHE / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for link in bindir.iterdir():
        link.unlink()
    for part in parts.values():
        out = out_dir(part, parts) if written(part) else None
        if out and (out / "done").exists() and (out / "bin").is_dir():
            for binary in (out / "bin").iterdir():
                (bindir / binary.name).symlink_to(binary)


def status() -> int:
    parts = by_name()
    missing = 0
    for part in parts.values():
        if not written(part):
            print(f"{part.name:<14} NOT WRITTEN")
            missing += 1
            continue
        out = out_dir(part, parts)
        ok = (out / "done").exists()
        missing += not ok
        print(f"{part.name:<14} {'cached ' if ok else 'MISSING'} {key(part, parts)}  {out}")
    return 1 if missing else 0


def main(argv: list[str]) -> int:
    cmd, *rest = argv or ["build"]
    if cmd == "build":
        return build(rest)
    if cmd == "status":
        return status()
    if cmd == "check":
        parts = by_name()
        return 0 if all(written(p) and (out_dir(p, parts) / "done").exists() for p in parts.values()) else 1
    if cmd == "env":
        print(f"export PATH={CACHE / 'bin'}:$PATH")
        return 0
    if cmd == "bin":
        print(CACHE / "bin")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
