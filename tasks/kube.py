"""Reading cluster objects: kubectl JSON in, Python dicts and conditions out."""
from __future__ import annotations

import json

from tasks.errors import LabError


def kubectl_args(cfg, *args) -> tuple:
    return ("--context", cfg.KUBE_CONTEXT, *args)


def get_json(t, cfg, *args, missing_ok: bool = False, quiet: bool = False):
    """`kubectl get ... -o json`; None when missing_ok and the object does not exist."""
    res = t.probe("kubectl", *kubectl_args(cfg, "get", *args, "-o", "json"), check=not missing_ok,
                  timeout=60, quiet=quiet)
    if not res.ok:
        if "NotFound" in res.err or "not found" in res.err or "the server doesn't have a resource type" in res.err:
            return None
        raise LabError(f"`kubectl get {' '.join(args)}` failed", res.err.strip()[-300:],
                       f"is the cluster up? try `kubectl --context {cfg.KUBE_CONTEXT} get nodes`")
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
