"""Schemas: every rendered object against the Kubernetes strict schemas of the pinned version
(kubernetes-validate) or the vendored Flux / Prometheus Operator CRD schemas (tasks/schemas/)."""
from __future__ import annotations

import functools
import json
import pathlib
import re
from typing import Any

from tasks import versions
from tasks.validation.render import RenderError, ident

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent.parent / "schemas"


@functools.lru_cache(maxsize=1)
def _k8s_schema_dir() -> tuple[pathlib.Path, str]:
    import kubernetes_validate  # noqa: PLC0415 (heavy, only when validating)

    wanted = versions.K8S_VERSION.lstrip("v")
    major_minor = ".".join(wanted.split(".")[:2])
    base = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    candidates = sorted(
        (p for p in base.glob("v*-local-strict") if p.name[1:].startswith(major_minor + ".")),
        key=lambda p: p.name,
    )
    if not candidates:
        raise RenderError(f"kubernetes-validate has no strict schemas for Kubernetes {major_minor}")
    return candidates[-1], major_minor


@functools.lru_cache(maxsize=None)
def _k8s_validator(kind: str, api_version: str):
    import jsonschema  # noqa: PLC0415
    from referencing import Registry, Resource  # noqa: PLC0415

    schema_dir, _ = _k8s_schema_dir()
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = schema_dir / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        return None
    registry = Registry()
    registry = Resource.from_contents(json.loads(path.read_text())) @ registry
    registry = _k8s_definitions() @ registry
    return jsonschema.Draft202012Validator(json.loads(path.read_text()), registry=registry)


@functools.lru_cache(maxsize=1)
def _k8s_definitions():
    from referencing import Resource  # noqa: PLC0415

    schema_dir, _ = _k8s_schema_dir()
    return Resource.from_contents(json.loads((schema_dir / "_definitions.json").read_text()))


def _strict(schema: Any) -> Any:
    """Close every object that lists its properties (the API server rejects
    unknown fields with strict field validation), as kubernetes-validate's
    -strict schemas do."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.lru_cache(maxsize=1)
def crd_validators() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> validator, from the vendored schemas."""
    import jsonschema  # noqa: PLC0415

    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        meta = doc.pop("x-vendored")
        key = (f"{meta['group']}/{meta['version']}", meta["kind"])
        out[key] = jsonschema.Draft202012Validator(_strict(doc))
    return out


def _error_path(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def schema_problems(objs: list[dict], where: str) -> list[str]:
    problems = []
    for obj in objs:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        validator = crd_validators().get((api_version, kind))
        source = "vendored CRD schema"
        if validator is None:
            validator = _k8s_validator(kind, api_version)
            source = f"Kubernetes {_k8s_schema_dir()[1]} strict schema"
        if validator is None:
            problems.append(f"{where}: {ident(obj)}: [schema] no schema for {api_version} {kind}")
            continue
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            problems.append(f"{where}: {ident(obj)}: [schema] {_error_path(error)}: {error.message} ({source})")
    return problems
