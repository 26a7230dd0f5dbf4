"""The app image: built from app/, tagged by the content of its build inputs.

The tag is a hash of exactly the files Docker sends as build context (app/ minus
what app/.dockerignore excludes), so an edit yields a new tag and Kubernetes
really rolls out — never `:latest`.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tasks import versions
from tasks.core import console, containers, state
from tasks.steps import registry
from tasks.core.errors import LabError
from tasks.core.state import source_url

APP_DIR = state.ROOT / "app"


def _pattern_regex(pattern: str) -> re.Pattern:
    # Docker's .dockerignore: Go filepath.Match per path element, plus `**`.
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c) if c != "[" else "[")
        if c == "[":
            end = pattern.find("]", i)
            out = out[:-1] + "[" + pattern[i + 1:end].replace("!", "^", 1) + "]"
            i = end
        i += 1
    return re.compile(out + "(/.*)?")


def ignore_rules(app_dir: Path) -> list[tuple[bool, re.Pattern]]:
    rules = []
    try:
        lines = (app_dir / ".dockerignore").read_text().splitlines()
    except FileNotFoundError:
        return rules
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:].strip() if negate else line
        pat = pat.strip("/").removeprefix("./")
        rules.append((negate, _pattern_regex(pat)))
    return rules


def excluded(rel: str, rules) -> bool:
    out = False
    for negate, rx in rules:
        if rx.fullmatch(rel):
            out = not negate
    return out


def build_inputs(app_dir: Path = APP_DIR) -> list[Path]:
    """Every file of the build context, sorted. Dockerfile is always an input."""
    rules = ignore_rules(app_dir)
    files = []
    for path in sorted(p for p in app_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(app_dir).as_posix()
        if rel in ("Dockerfile", ".dockerignore") or not excluded(rel, rules):
            files.append(path)
    return files


def content_tag(app_dir: Path = APP_DIR) -> str:
    digest = hashlib.sha256()
    for path in build_inputs(app_dir):
        digest.update(path.relative_to(app_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def image_ref(cfg, tag: str | None = None) -> str:
    return f"{cfg.image_registry}/{versions.APP_IMAGE_NAME}:{tag or content_tag()}"


def built_locally(lab, ref: str) -> bool:
    return containers.image_present(lab, ref)


def pushed(lab, tag: str | None = None) -> bool:
    tag = tag or content_tag()
    if lab.cfg.remote_registry:  # asked with the user's own docker credentials
        return lab.probe("docker", "manifest", "inspect", image_ref(lab.cfg, tag), check=False, timeout=60).ok
    return registry.has_manifest(lab.cfg, versions.APP_IMAGE_NAME, tag) is not None


def is_built(lab) -> bool:
    tag = content_tag()
    return pushed(lab, tag) or built_locally(lab, image_ref(lab.cfg, tag))


def build(lab) -> dict:
    tag = content_tag()
    ref = image_ref(lab.cfg, tag)
    if pushed(lab, tag) or built_locally(lab, ref):
        console.info(f"{ref} already built")
        return {"tag": tag}
    revision = state.git_revision()
    # The OCI labels come from these build arguments (app/Dockerfile's last LABEL); `--label` flags would
    # repeat them as one more step after it.
    lab.mutate("docker", "build", "-t", ref,
             "--build-arg", f"SOURCE={source_url()}",
             "--build-arg", f"REVISION={revision}", "--build-arg", f"VERSION={tag}",
             "-f", str(APP_DIR / "Dockerfile"), str(APP_DIR), timeout=900, env=builder_env(lab))
    return {"tag": tag}


def builder_env(lab) -> dict[str, str]:
    """BuildKit where this Docker has it, else the classic builder (app/Dockerfile caches on both).

    `DOCKER_BUILDKIT=1` makes `docker build` hand the build to buildx; where the buildx plugin is
    missing (Docker Engine packages without it, such as Debian's docker.io) that is an error, and an
    unset DOCKER_BUILDKIT there falls back to the classic builder. Asked once per run, only when a
    build runs: a binary does not change under a running process."""
    if "_buildkit" not in lab.__dict__:
        lab._buildkit = lab.probe("docker", "buildx", "version", check=False, timeout=30).ok
    return {"DOCKER_BUILDKIT": "1"} if lab._buildkit else {}


def pushed_digest(lab, tag: str | None = None) -> str | None:
    """The digest the registry holds for the app's tag: what the push returned.

    The local registry is asked over its HTTP API (Docker-Content-Digest); a remote one through
    the RepoDigests Docker records when it pushes, else `docker manifest inspect --verbose`.
    """
    tag = tag or content_tag()
    if not lab.cfg.remote_registry:
        digest = registry.has_manifest(lab.cfg, versions.APP_IMAGE_NAME, tag)
        return digest if digest and digest.startswith("sha256:") else None
    ref = image_ref(lab.cfg, tag)
    repo = ref.rsplit(":", 1)[0]
    res = lab.probe("docker", "image", "inspect", "-f", "{{json .RepoDigests}}", ref, check=False)
    try:
        for entry in (json.loads(res.out or "null") or []) if res.ok else []:
            name, _, digest = entry.partition("@")
            if name == repo and digest.startswith("sha256:"):
                return digest
    except ValueError:
        pass
    res = lab.probe("docker", "manifest", "inspect", "--verbose", ref, check=False, timeout=60)
    try:
        doc = json.loads(res.out) if res.ok else None
    except ValueError:
        doc = None
    digest = ((doc or {}).get("Descriptor") or {}).get("digest", "") if isinstance(doc, dict) else ""
    return digest if digest.startswith("sha256:") else None


def pinned_ref(lab) -> str:
    """`name:tag@sha256:…`: the tag for people, the digest for the nodes (exact, and so is IfNotPresent)."""
    tag = content_tag()
    digest = pushed_digest(lab, tag)
    if digest is None:
        raise LabError(f"the registry reports no digest for {image_ref(lab.cfg, tag)}",
                       "the lab names the app image by the digest its push returned",
                       "run `doit app_push` (then `doit setup`) again")
    return f"{image_ref(lab.cfg, tag)}@{digest}"


def push(lab) -> dict:
    tag = content_tag()
    ref = image_ref(lab.cfg, tag)
    if pushed(lab, tag):
        console.info(f"{ref} already in the registry")
    else:
        lab.mutate("docker", "push", ref, timeout=600)
    if lab.dry_run:
        return {"image": ref}
    pinned = pinned_ref(lab)
    console.info(f"pushed as {pinned}")
    return {"image": pinned}
