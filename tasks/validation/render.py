"""Rendering: every Flux entry point of flux-cd/ built as Flux builds it, offline.

The real `kubectl kustomize` (the kustomize v5 Flux embeds), run through tasks/tools.Tools like
every other command of the lab, then Flux's post-build substitution (`envsubst`), done here the
way kustomize-controller does it. Nothing here talks to a cluster or the network.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
from collections.abc import Iterable
from types import SimpleNamespace

import yaml

from tasks.core import names
from tasks.core.errors import LabError

FLUX_DIR = names.FLUX_DIR
APPS_BASE = f"{names.APPS_PATH}/base"  # the overlays' shared base, rendered and checked on its own


class RenderError(Exception):
    """kustomize or substitution failed."""


# --------------------------------------------------------------------------- kustomize


def kubectl_path() -> str:
    """`KUBECTL` from the environment, else `kubectl` on PATH."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        raise RenderError("kubectl not found (set KUBECTL or put kubectl on PATH)")
    return found


def local_tools():
    """Tools for a validation outside a lab run (tests, `python -m tasks.validation`): kubectl from
    KUBECTL or PATH, nothing echoed."""
    from tasks.core.tools import Tools  # noqa: PLC0415

    # existing=True: no kind cluster's node version to hold kubectl to (no cluster is involved at all)
    return Tools(SimpleNamespace(KUBECTL=kubectl_path(), dry_run=False, existing=True), echo=False)


def kustomize_build(directory: pathlib.Path, tools=None) -> str:
    """`kubectl kustomize DIR`: the same kustomize v5 Flux embeds. `tools`: the run's Tools (its
    KUBECTL setting), else local_tools()."""
    try:
        proc = (tools or local_tools()).kustomize(directory)
    except LabError as exc:  # kubectl missing, or it hung
        raise RenderError(f"kubectl kustomize {directory}: {exc.line()}") from None
    if proc.rc != 0:
        raise RenderError(f"kubectl kustomize {directory} failed: {proc.err.strip()}")
    # kustomize warns on stderr and still exits 0 (`# Warning: 'vars' is deprecated ...`): a
    # deprecated field today is a removed one tomorrow, so any warning fails the render.
    warnings = [line.strip().lstrip("# ") for line in proc.err.splitlines() if line.strip()]
    if warnings:
        raise RenderError(f"kubectl kustomize {directory} warned: {' | '.join(warnings)}")
    return proc.out


# --------------------------------------------------------------------------- Flux envsubst

_VAR_NAME = r"[_a-zA-Z][_a-zA-Z0-9]*"
_SUBST = re.compile(r"\$\$|\$\{(?P<name>" + _VAR_NAME + r")(?:(?P<op>:=|:-|=|-)(?P<default>[^}]*))?\}")
_BAD_REF = re.compile(r"\$\{(?!" + _VAR_NAME + r"(?:(?::=|:-|=|-)[^}]*)?\})[^}]*\}")


def envsubst(text: str, variables: dict[str, str], strict: bool = True) -> str:
    """Substitute variables like Flux's post-build (drone/envsubst semantics).

    - `${VAR}`: the value; undefined is an error in strict mode (Flux >= 2.7
      default, feature gate StrictPostBuildSubstitutions), empty otherwise.
    - `${VAR:=default}` / `${VAR:-default}`: the default when VAR is unset or empty.
    - `${VAR=default}` / `${VAR-default}`: the default only when VAR is unset.
    - `$${VAR}`: the literal `${VAR}` (escape); a lone `$` or `$VAR` is left alone.
    """
    bad = _BAD_REF.search(text)
    if bad:
        raise RenderError(f"invalid variable reference {bad.group(0)!r}")

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name"), match.group("op"), match.group("default")
        value = variables.get(name)
        if op in (":=", ":-"):
            return value if value else default
        if op in ("=", "-"):
            return value if value is not None else default
        if value is None:
            if strict:
                raise RenderError(f"variable not set (strict mode): {name}")
            return ""
        return value

    return _SUBST.sub(replace, text)


# --------------------------------------------------------------------------- what the lab substitutes

# The digest a push returns is not known offline; the lab never deploys an image without one (sync writes
# lab-vars from the push's digest and refuses otherwise), so its form is what a check can see. This
# stand-in has that form and is plainly no real image's digest.
STAND_IN_DIGEST = "sha256:" + "0" * 64


def deployed_vars(cfg=None) -> dict[str, str]:
    """The data of ConfigMap lab-vars as `sync` writes it (tasks/steps/sync.vars_configmap): the app's image
    `<registry>/lab-app:<content tag>@sha256:<digest>`, with STAND_IN_DIGEST for the push's digest. The
    overlays are checked with this substituted, as Flux's post-build substitutes it when it applies them."""
    from tasks.core import config  # noqa: PLC0415 - the steps' code, only when validating
    from tasks.steps import image, sync  # noqa: PLC0415

    cfg = cfg or config.load({}, {})
    return dict(sync.vars_configmap(cfg, f"{image.image_ref(cfg)}@{STAND_IN_DIGEST}")["data"])


# --------------------------------------------------------------------------- rendered objects

_KUSTOMIZE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_docs(text: str) -> list[dict]:
    return [doc for doc in yaml.load_all(text, Loader=_KUSTOMIZE_LOADER) if isinstance(doc, dict)]


def render(root: pathlib.Path, overlay_dir: pathlib.Path | str, variables: dict | None = None,
           tools=None) -> list[dict]:
    """Render `overlay_dir` (absolute, or relative to `root`) with kustomize,
    then apply Flux post-build substitution with `variables` (as if they came
    from ConfigMap lab-vars; None = the ConfigMap is absent, defaults apply,
    i.e. `substituteStrategy: Always`). Objects labelled or annotated
    `kustomize.toolkit.fluxcd.io/substitute: disabled` are left as built. `tools`: see kustomize_build."""
    root = pathlib.Path(root)
    directory = pathlib.Path(overlay_dir)
    if not directory.is_absolute():
        directory = root / directory
    variables = {k: str(v) for k, v in (variables or {}).items()}
    out = []
    for doc in load_docs(kustomize_build(directory, tools)):
        meta = doc.get("metadata") or {}
        marks = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
        if marks.get("kustomize.toolkit.fluxcd.io/substitute") == "disabled":
            out.append(doc)
            continue
        text = yaml.safe_dump(doc, sort_keys=False)
        try:
            out.append(yaml.safe_load(envsubst(text, variables)))
        except RenderError as exc:
            raise RenderError(f"{directory}: {ident(doc)}: {exc}") from exc
    return out


def render_all(root: pathlib.Path, variables: dict | None = None,
               tools=None) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(bootstrap variant -> objects, layer -> objects) for every Flux entry point.
    Layers, keyed by their folder under flux-cd/: each Flux Kustomization's path as the bootstrap
    declares it (tasks/core/names.py: `infrastructure`, `apps/<env>`), and `apps/base` under the overlays."""
    flux = pathlib.Path(root) / FLUX_DIR
    tools = tools or local_tools()
    bootstrap = {v: load_docs(kustomize_build(flux / "bootstrap" / v, tools)) for v in names.BOOTSTRAP_VARIANTS}
    rendered = {}
    for layer in names.LAYERS:
        if layer.path in names.APP_PATHS.values() and APPS_BASE not in rendered:
            rendered[APPS_BASE] = render(root, flux / APPS_BASE, variables, tools)  # before its overlays
        rendered[layer.path] = render(root, flux / layer.path, variables, tools)
    return bootstrap, rendered


def ident(obj: dict) -> str:
    """Kind/namespace/name, as the problems name an object."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def find(objs: Iterable[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind and (name is None or o["metadata"].get("name") == name)]
