"""Reading cluster objects: kubectl JSON in, Python dicts and conditions out."""
from __future__ import annotations

import json

from tasks.errors import LabError


def kubectl_args(cfg, *args) -> tuple:
    return ("--context", cfg.KUBE_CONTEXT, *args)


def custom_resource(resource: str) -> str | None:
    """The CRD behind a fully qualified resource type (`plural.group`), None for built-in types."""
    plural, dot, group = resource.partition(".")
    if not dot or "/" in resource or group.endswith("k8s.io"):
        return None
    return resource


def has_crd(t, cfg, name: str, quiet: bool = False) -> bool:
    """Is custom resource type NAME served? Asked as an object (the CRD), not read from an error."""
    seen = t.__dict__.setdefault("_crds_seen", set())  # CRDs do not vanish mid-run; absences are re-asked
    if name in seen:
        return True
    res = t.probe("kubectl", *kubectl_args(cfg, "get", "customresourcedefinitions.apiextensions.k8s.io", name,
                                           "--ignore-not-found", "-o", "name"), timeout=60, quiet=quiet,
                  check=False)
    if not res.ok:
        raise _get_failed(cfg, ("crd", name), res)
    if res.out.strip():
        seen.add(name)
        return True
    return False


def _get_failed(cfg, args, res) -> LabError:
    return LabError(f"`kubectl get {' '.join(args)}` failed", res.err.strip()[-300:],
                    f"is the cluster up? try `kubectl --context {cfg.KUBE_CONTEXT} get nodes`")


def get_json(t, cfg, *args, missing_ok: bool = False, quiet: bool = False):
    """`kubectl get ... -o json`; None when missing_ok and the object (or its custom type) does not exist.

    Absence is decided without reading kubectl's error text: `--ignore-not-found` turns a missing
    object into an empty answer with exit 0 (and so a list with no items), and a custom resource
    type is looked up as its CRD first. Any other failure is a failure.
    """
    if missing_ok:
        crd = custom_resource(args[0]) if args else None
        if crd and not has_crd(t, cfg, crd, quiet=quiet):
            return None
    flags = ("--ignore-not-found",) if missing_ok else ()
    res = t.probe("kubectl", *kubectl_args(cfg, "get", *args, *flags, "-o", "json"), check=False, timeout=60,
                  quiet=quiet)
    if not res.ok:
        raise _get_failed(cfg, args, res)
    if missing_ok and not res.out.strip():
        return None
    try:
        return json.loads(res.out)
    except ValueError:
        raise LabError(f"`kubectl get {' '.join(args)}` printed no JSON", res.out[:200]) from None


def items(doc) -> list[dict]:
    if not doc:
        return []
    return doc.get("items", [doc]) if doc.get("kind", "").endswith("List") else [doc]


def condition(obj: dict, kind: str = "Ready") -> tuple[str, str, str]:
    """(status, reason, message) of a status condition; ('Unknown', '', 'no status yet') if absent."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status", "Unknown"), cond.get("reason", ""), cond.get("message", "")
    return "Unknown", "", "no status yet"


def is_true(obj: dict, kind: str = "Ready") -> bool:
    return condition(obj, kind)[0] == "True"


def ref(obj: dict) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')}/{ns + '/' if ns else ''}{meta.get('name', '?')}"
