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
    python3 hack/kit/kit.py check [PART ...]   exit 0 when every part (or those named) is cached
    python3 hack/kit/kit.py path PART          the cache entry of a built part (its files: images-*.txt, tools/helm, ...)
    python3 hack/kit/kit.py clean              remove the kit's images from Docker (only those it labelled)
    python3 hack/kit/kit.py chart-remote [stop] serve the cached charts on loopback; prints MIRROR_REMOTES

Kit images carry upstream's names (so nothing in the lab changes to use them); each one the
kit loads is labelled org.gitops-lab.kit=<part>/<key>, which `status` lists and `clean` removes.

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
import urllib.error
import urllib.request
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
    # Prometheus 3.x tags its Go module v0.3MM.P for release 3.MM.P (3.14.0 -> v0.314.0):
    # the release of PROMETHEUS_IMAGE, checked against the module's VERSION file.
    "PROMETHEUS_MODULE_VERSION": "v0.314.0",
    # What Prometheus' web UI build asks for: Node.js of web/ui/.nvmrc and pnpm 11 (its CI's
    # pnpm/action-setup range, 11.12.0 excluded), both installed from the npm registry.
    "KIT_NODEJS": "22.22.3",
    "KIT_PNPM": "11.29.0",
    # Helm for the chart's OCI artifact (`helm push`) and its rendering: the release Flux's
    # helm-controller (FLUX_VERSION 2.9.4: helm-controller v1.6.3) builds on.
    "KIT_HELM": "v4.2.2",
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
    # kube-prometheus-stack (MONITORING=full) on a machine that reaches no image registry
    Part("prom-bases", "busybox and distroless/static stand-ins the Prometheus images build FROM",
         ("DEBIAN_SUITE",), ("debian",)),
    Part("prometheus-operator", "prometheus-operator and prometheus-config-reloader images",
         ("PROMETHEUS_OPERATOR_IMAGE", "PROMETHEUS_CONFIG_RELOADER_IMAGE"), ("prom-bases",)),
    Part("prometheus", "Prometheus image, its web UI built in",
         ("PROMETHEUS_IMAGE", "PROMETHEUS_MODULE_VERSION", "KIT_NODEJS", "KIT_PNPM"), ("prom-bases",)),
    Part("kube-state-metrics", "kube-state-metrics image", ("KUBE_STATE_METRICS_IMAGE",), ("prom-bases",)),
    Part("node-exporter", "node-exporter image", ("NODE_EXPORTER_IMAGE",), ("prom-bases",)),
    Part("webhook-certgen", "stand-in for kube-webhook-certgen (the chart's admission webhook Jobs)",
         ("KUBE_WEBHOOK_CERTGEN_IMAGE",), ("debian",)),
    Part("k8s-sidecar", "stand-in for Grafana's dashboard sidecar (k8s-sidecar)", ("GRAFANA_SIDECAR_IMAGE",), ("debian",)),
    Part("prom-chart", "kube-prometheus-stack's chart as an OCI artifact, for the ghcr.io mirror",
         ("KUBE_PROMETHEUS_STACK_CHART", "KIT_HELM", "K8S_VERSION", "REGISTRY_IMAGE",
          "PROMETHEUS_OPERATOR_IMAGE", "PROMETHEUS_CONFIG_RELOADER_IMAGE", "PROMETHEUS_IMAGE",
          "KUBE_STATE_METRICS_IMAGE", "NODE_EXPORTER_IMAGE", "KUBE_WEBHOOK_CERTGEN_IMAGE", "GRAFANA_SIDECAR_IMAGE"),
         ("registry",)),
]

LABEL = "org.gitops-lab.kit"
# `docker image inspect` format: the image's ID and the kit's label (empty when there is none)
LABEL_FORMAT = f'{{{{.Id}}}} {{{{with .Config.Labels}}}}{{{{index . "{LABEL}"}}}}{{{{end}}}}'


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
               KIT_PARTS=str(PARTS_DIR), KIT_LABEL=f"{LABEL}={label_value(part, parts)}")
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


def label_value(part: Part, parts: dict[str, Part]) -> str:
    return f"{part.name}/{key(part, parts)}"


def ensure_labelled(refs: list[str], value: str) -> None:
    """Each image carries LABEL=value; one built before labels existed is relabelled in place
    (a one-line build FROM it, same layers), and its unlabelled predecessor removed if nothing uses it."""
    if not refs:
        return
    res = subprocess.run(["docker", "image", "inspect", "-f", LABEL_FORMAT, *refs], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"kit: cannot read the labels of {', '.join(refs)}: {res.stderr.strip()[:200]}")
    replaced = set()
    for ref, line in zip(refs, res.stdout.splitlines()):
        old_id, _, have = line.partition(" ")
        if have == value:
            continue
        done = subprocess.run(["docker", "build", "-q", "--label", f"{LABEL}={value}", "-t", ref, "-"],
                              input=f"FROM {ref}\n", text=True, capture_output=True)
        if done.returncode != 0:
            raise SystemExit(f"kit: cannot label {ref}: {done.stderr.strip()[:200]}")
        replaced.add(old_id)
    for old_id in replaced:
        tags = subprocess.run(["docker", "image", "inspect", "-f", "{{len .RepoTags}}", old_id],
                              capture_output=True, text=True).stdout.strip()
        if tags == "0":  # untagged now; `rmi` fails harmlessly while a container or child image uses it
            subprocess.run(["docker", "rmi", old_id], capture_output=True)


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
            ensure_labelled(refs, label_value(part, parts))
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
        ensure_labelled(refs, label_value(part, parts))
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
            print(f"{part.name:<19} NOT WRITTEN")
            missing += 1
            continue
        out = out_dir(part, parts)
        ok = (out / "done").exists()
        missing += not ok
        print(f"{part.name:<19} {'cached ' if ok else 'MISSING'} {key(part, parts)}  {out}")
    images = kit_images(parts)
    if images is None:
        print("kit images in Docker: Docker does not answer")
    else:
        print(f"kit images in Docker ({LABEL} label; `kit.py clean` removes them):")
        for img in images:
            print(f"  {img.ref:<72} {img.label}{'' if img.current else '  (stale key)'}")
        others = kit_derived(parts)
        if others:
            print(f"  and {len(others)} image(s) built FROM kit images (they inherit the label; `clean` keeps them)")
    return 1 if missing else 0


@dataclass
class KitImage:
    ref: str
    label: str     # <part>/<key>
    current: bool  # the label's key is the part's key today


def labelled_images() -> list[tuple[str, str]] | None:
    """(ref, label value) of every tagged image that carries the kit's label."""
    res = subprocess.run(["docker", "images", "--filter", f"label={LABEL}", "--format",
                          '{{.Repository}}:{{.Tag}}\t{{.ID}}'], capture_output=True, text=True)
    if res.returncode != 0:
        return None
    rows = [line.split("\t") for line in res.stdout.splitlines() if line and not line.startswith("<none>")]
    if not rows:
        return []
    ids = sorted({i for _, i in rows})
    got = subprocess.run(["docker", "image", "inspect", "-f", LABEL_FORMAT,
                          *ids], capture_output=True, text=True).stdout.splitlines()
    by_id = {}
    for line in got:
        full, _, value = line.partition(" ")
        by_id[full.removeprefix("sha256:")[:12]] = value
    return [(ref, by_id.get(i, "")) for ref, i in rows]


def listed_by(part: Part) -> set[str]:
    """Every reference any cached key of the part lists (images.txt)."""
    found: set[str] = set()
    for listing in (CACHE / part.name).glob("*/images.txt"):
        found |= set(listing.read_text().split())
    return found


def kit_images(parts: dict[str, Part]) -> list[KitImage] | None:
    """The kit's own images in Docker: labelled by the kit, under a name their part lists.
    Images built FROM a kit image inherit its label; their names are not the kit's, so they are not its."""
    rows = labelled_images()
    if rows is None:
        return None
    mine = []
    for ref, value in rows:
        name, _, k = value.partition("/")
        if name in parts and ref in listed_by(parts[name]):
            mine.append(KitImage(ref, value, written(parts[name]) and k == key(parts[name], parts)))
    return sorted(mine, key=lambda i: i.ref)


def kit_derived(parts: dict[str, Part]) -> list[str]:
    mine = {i.ref for i in kit_images(parts) or []}
    return [ref for ref, _ in labelled_images() or [] if ref not in mine]


def clean() -> int:
    """Remove the kit's images (and its chart server) from Docker; the cache stays, so a warm
    `kit.py build` loads them again. Never an image the kit did not label and name."""
    parts = by_name()
    images = kit_images(parts)
    if images is None:
        print("kit: Docker does not answer (`docker info`); nothing removed", file=sys.stderr)
        return 1
    chart_remote_stop(quiet=True)
    kept = []
    for img in images:
        res = subprocess.run(["docker", "rmi", img.ref], capture_output=True, text=True)
        if res.returncode != 0:
            kept.append(img.ref)
            print(f"kit: kept {img.ref}: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'docker rmi failed'}",
                  file=sys.stderr)
    print(f"kit: removed {len(images) - len(kept)} image(s) from Docker; the cache keeps them "
          f"(`kit.py build` loads them again)")
    if kept:
        print(f"kit: {len(kept)} image(s) kept: in use by a container or an image built FROM them; "
              "remove those first, then run `kit.py clean` again", file=sys.stderr)
        return 1
    return 0


CHART_REMOTE = "gitops-lab-kit-charts"
CHART_UPSTREAM = "ghcr.io"


def chart_remote() -> int:
    """Serve the prom-chart part's registry data (the chart as `helm push` stores it) on loopback,
    read-only, and print the MIRROR_REMOTES entry that makes `doit mirror_fill` copy it from there
    as from ghcr.io. Reuses a running server of the same key."""
    parts = by_name()
    part, registry = parts["prom-chart"], parts["registry"]
    out = out_dir(part, parts)
    if not (out / "done").exists():
        print("kit: the chart is not built: run `python3 hack/kit/kit.py build prom-chart`", file=sys.stderr)
        return 1
    load_images(out_dir(registry, parts))
    value = label_value(part, parts)
    res = subprocess.run(["docker", "inspect", "-f", f'{{{{.State.Running}}}} {{{{with .Config.Labels}}}}{{{{index . "{LABEL}"}}}}{{{{end}}}}',
                          CHART_REMOTE], capture_output=True, text=True)
    if res.returncode == 0 and res.stdout.split() != ["true", value]:  # stopped, or another key's
        subprocess.run(["docker", "rm", "-f", "-v", CHART_REMOTE], capture_output=True)
        res = subprocess.CompletedProcess(res.args, 1)
    if res.returncode != 0:
        # Read-only: the cache entry is served as built; no upload purging on a read-only folder.
        started = subprocess.run(["docker", "run", "-d", "--name", CHART_REMOTE, "--label", f"{LABEL}={value}",
                                  "-p", "127.0.0.1::5000", "-v", f"{out / 'registry'}:/var/lib/registry:ro",
                                  "-e", "REGISTRY_STORAGE_MAINTENANCE_READONLY={\"enabled\": true}",
                                  "-e", "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING={\"enabled\": false}",
                                  versions.REGISTRY_IMAGE], capture_output=True, text=True)
        if started.returncode != 0:
            print(f"kit: cannot start {CHART_REMOTE}: {started.stderr.strip()[:300]}", file=sys.stderr)
            return 1
    mapped = subprocess.run(["docker", "port", CHART_REMOTE, "5000/tcp"], capture_output=True, text=True).stdout.split()
    if not mapped:
        print(f"kit: {CHART_REMOTE} publishes no port; see `docker logs {CHART_REMOTE}`", file=sys.stderr)
        return 1
    port = mapped[0].rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{port}"
    repo, _, tag = (out / "chart.txt").read_text().split()[0].removeprefix(CHART_UPSTREAM + "/").rpartition(":")
    deadline = time.monotonic() + 30
    while True:
        try:
            req = urllib.request.Request(f"{url}/v2/{repo}/manifests/{tag}", method="HEAD",
                                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            with urllib.request.urlopen(req, timeout=2):
                break
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                print(f"kit: {CHART_REMOTE} does not serve {repo}:{tag} on {url} ({exc}); "
                      f"see `docker logs {CHART_REMOTE}`", file=sys.stderr)
                return 1
            time.sleep(0.2)
    print(f"{CHART_UPSTREAM}={url}")
    return 0


def chart_remote_stop(quiet: bool = False) -> int:
    res = subprocess.run(["docker", "rm", "-f", "-v", CHART_REMOTE], capture_output=True, text=True)
    if not quiet:
        print(f"kit: {CHART_REMOTE} {'removed' if res.returncode == 0 else 'was not running'}")
    return 0


def main(argv: list[str]) -> int:
    cmd, *rest = argv or ["build"]
    if cmd == "build":
        return build(rest)
    if cmd == "status":
        return status()
    if cmd == "check":
        parts = by_name()
        todo = ordered(rest, parts) if rest else list(parts.values())
        return 0 if all(written(p) and (out_dir(p, parts) / "done").exists() for p in todo) else 1
    if cmd == "path" and len(rest) == 1:
        parts = by_name()
        if rest[0] not in parts:
            print(f"kit: no part named {rest[0]!r}; parts: {', '.join(parts)}", file=sys.stderr)
            return 2
        out = out_dir(parts[rest[0]], parts)
        if not (out / "done").exists():
            print(f"kit: {rest[0]} is not built: run `python3 hack/kit/kit.py build {rest[0]}`", file=sys.stderr)
            return 1
        print(out)
        return 0
    if cmd == "clean":
        return clean()
    if cmd == "chart-remote":
        return chart_remote_stop() if rest == ["stop"] else chart_remote()
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
