"""Reading cluster objects: kubectl JSON in, Python dicts and conditions out."""
from __future__ import annotations

import json
import re
import threading

from tasks.core import parallel
from tasks.core.errors import LabError
from tasks.core.tools import Result


def kubectl_args(cfg, *args) -> tuple:
    return ("--context", cfg.KUBE_CONTEXT, *args)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def duration_seconds(text):
    """A Go duration (`5m`, `1m0s`) in seconds; None for anything else. The API server writes `5m` back
    as `5m0s`: the same value."""
    if not isinstance(text, str) or not text or _GO_DURATION.sub("", text):
        return None
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u] for n, u in _GO_DURATION.findall(text))


def custom_resource(resource: str) -> str | None:
    """The CRD behind a fully qualified resource type (`plural.group`), None for built-in types."""
    plural, dot, group = resource.partition(".")
    if not dot or "/" in resource or group.endswith("k8s.io"):
        return None
    return resource


def has_crd(lab, name: str, quiet: bool = False) -> bool:
    """Is custom resource type NAME served? Asked as an object (the CRD), not read from an error."""
    seen = lab.__dict__.setdefault("_crds_seen", set())  # CRDs do not vanish mid-run; absences are re-asked
    if name in seen:
        return True
    res = lab.probe("kubectl", *kubectl_args(lab.cfg, "get", "customresourcedefinitions.apiextensions.k8s.io", name,
                                           "--ignore-not-found", "-o", "name"), timeout=60, quiet=quiet,
                  check=False)
    if not res.ok:
        raise _get_failed(lab.cfg, ("crd", name), res)
    if res.out.strip():
        seen.add(name)
        return True
    return False


def _get_failed(cfg, args, res) -> LabError:
    return LabError(f"`kubectl get {' '.join(args)}` failed", res.err.strip()[-300:],
                    f"is the cluster up? try `kubectl --context {cfg.KUBE_CONTEXT} get nodes`")


def get_json(lab, *args, missing_ok: bool = False, quiet: bool = False):
    """`kubectl get ... -o json`; None when missing_ok and the object (or its custom type) does not exist.

    Absence is decided without reading kubectl's error text: `--ignore-not-found` turns a missing
    object into an empty answer with exit 0 (and so a list with no items), and a custom resource
    type is looked up as its CRD first. Any other failure is a failure.
    """
    if missing_ok:
        crd = custom_resource(args[0]) if args else None
        if crd and not has_crd(lab, crd, quiet=quiet):
            return None
    flags = ("--ignore-not-found",) if missing_ok else ()
    res = lab.probe("kubectl", *kubectl_args(lab.cfg, "get", *args, *flags, "-o", "json"), check=False, timeout=60,
                  quiet=quiet)
    if not res.ok:
        raise _get_failed(lab.cfg, args, res)
    if missing_ok and not res.out.strip():
        return None
    try:
        return json.loads(res.out)
    except ValueError:
        raise LabError(f"`kubectl get {' '.join(args)}` printed no JSON", res.out[:200]) from None


# --- one read of the cluster per run ------------------------------------------------------
# What a `doit setup` run reads from the cluster: resource -> (API group, kind, served by a CRD?).
SETUP_READS = {
    "apiservices.apiregistration.k8s.io": ("apiregistration.k8s.io", "APIService", False),
    "nodes": ("", "Node", False),
    "deployments.apps": ("apps", "Deployment", False),
    "pods": ("", "Pod", False),
    "kustomizations.kustomize.toolkit.fluxcd.io": ("kustomize.toolkit.fluxcd.io", "Kustomization", True),
    "helmreleases.helm.toolkit.fluxcd.io": ("helm.toolkit.fluxcd.io", "HelmRelease", True),
    "ocirepositories.source.toolkit.fluxcd.io": ("source.toolkit.fluxcd.io", "OCIRepository", True),
    "gitrepositories.source.toolkit.fluxcd.io": ("source.toolkit.fluxcd.io", "GitRepository", True),
}


# Also read by a setup run, per namespace (in_namespace): asked side by side with the run's first read.
SETUP_NAMESPACED_READS = (("configmaps", "flux-system"),)  # lab-vars and the pins' variables


def _custom(resource: str) -> bool:
    return SETUP_READS[resource][2]


def snapshot(lab, need, also=(), quiet: bool = False) -> dict[str, list[dict] | None]:
    """Every object of each resource in NEED (across namespaces), None for a custom type the cluster
    does not serve. Read with one `kubectl get A,B,... -A -o json` and kept for the run (Tools.memo)
    until a mutation or `forget`. ALSO: what the run reads later, fetched in the same call while
    nothing has changed yet (a run that checks and changes nothing reads the cluster once; after a
    change, each read asks for what it needs)."""
    with _READING:  # threads checking environments side by side wait for one read, never repeat it
        memo = lab.memo.setdefault("kube", {})
        todo = [r for r in need if r not in memo]
        if todo:
            extra = [] if lab.mutated else [r for r in also if r not in memo and r not in todo]
            if extra:  # a setup run's first read: its per-namespace reads go side by side with it
                # (both in worker threads: each echoes its whole line when it ends, never into the other's)
                parallel.side_by_side(lambda read: read(), [lambda: _fetch(lab, memo, todo, extra, quiet),
                                                            lambda: _prefetch(lab, memo, quiet)])
            else:
                _fetch(lab, memo, todo, extra, quiet)
        return {r: memo[r] for r in need}


def _answer(res) -> dict | None:
    """kubectl's `-o json` answer as an object; None when it failed or printed no JSON object."""
    try:
        doc = json.loads(res.out) if res.ok else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _prefetch(lab, memo, quiet: bool) -> None:
    """SETUP_NAMESPACED_READS into the memo where kubectl answers; where it does not, in_namespace asks
    again when the run needs it (and says what failed)."""
    for resource, namespace in SETUP_NAMESPACED_READS:
        key = f"{resource} -n {namespace}"
        if key in memo:
            continue
        res = lab.probe("kubectl", *kubectl_args(lab.cfg, "get", resource, "-n", namespace, "-o", "json"),
                        check=False, timeout=60, quiet=quiet)
        doc = _answer(res)
        if doc is not None:
            memo[key] = items(doc)


_READING = threading.RLock()


# Read across namespaces only on the lab's own cluster; an existing one is asked per namespace (namespaced).
LAB_CLUSTER_ONLY = ("deployments.apps", "pods")


def setup_read(lab, resource: str, quiet: bool = False) -> list[dict] | None:
    """RESOURCE's objects, read together with everything else a setup run reads (SETUP_READS)."""
    also = [r for r in SETUP_READS if not (lab.cfg.existing and r in LAB_CLUSTER_ONLY)]
    return snapshot(lab, [resource], also=also, quiet=quiet)[resource]


def namespaced(lab, resource: str, namespace: str, labels: dict[str, str] | None = None) -> list[dict]:
    """RESOURCE's objects in NAMESPACE carrying LABELS. On the lab's own cluster, from the setup run's
    one read (it holds little but the lab); on an existing cluster, which may hold thousands of pods,
    asked in that namespace only (`get -n -l`), once per run."""
    if not lab.cfg.existing:
        return objects(setup_read(lab, resource), namespace=namespace, labels=labels)
    memo = lab.memo.setdefault("kube", {})
    selector = ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))
    key = f"{resource} -n {namespace} -l {selector}"
    if key in memo:
        return memo[key]
    found = items(get_json(lab, resource, "-n", namespace, *(("-l", selector) if selector else ())))
    lab.memo.setdefault("kube", {})[key] = found  # (a mutation meanwhile may have replaced the memo)
    return found


def in_namespace(lab, resource: str, namespace: str) -> list[dict]:
    """RESOURCE's objects in NAMESPACE, asked once per run until a change: for a kind the setup run's one
    read leaves out because the cluster holds too many (ConfigMaps: Grafana's dashboards are megabytes)."""
    memo = lab.memo.setdefault("kube", {})
    key = f"{resource} -n {namespace}"
    if key not in memo:
        memo[key] = items(get_json(lab, resource, "-n", namespace))
    return memo[key]


def forget(lab, *resources: str) -> None:
    """Read these again next time (after a wait: they changed without a mutation of ours)."""
    memo = lab.memo.get("kube", {})
    for key in [k for k in memo if k.split(" ", 1)[0] in resources]:
        memo.pop(key)


def _fetch(lab, memo, need: list[str], extra: list[str], quiet: bool) -> None:
    if extra:
        if _list_into(lab, memo, need + extra, quiet).ok:
            return
        extra = [r for r in extra if not _custom(r)]  # a custom one may not be served: read when needed
    batch = need + extra
    res = _list_into(lab, memo, batch, quiet)
    if res.ok:
        return
    # kubectl refused. A custom type may not be served (yet): ask each one's CRD as an object,
    # never from the error text; read the others again. Any other failure is the answer.
    absent = [r for r in need if _custom(r) and not has_crd(lab, r, quiet=quiet)]
    served = [r for r in batch if r not in absent]
    if not absent:
        raise _get_failed(lab.cfg, ("get", ",".join(batch), "-A"), res)
    if served and not _list_into(lab, memo, served, quiet).ok:
        raise _get_failed(lab.cfg, ("get", ",".join(served), "-A"), res)
    for r in absent:
        memo[r] = None


def _list_into(lab, memo, batch: list[str], quiet: bool):
    res = lab.probe("kubectl", *kubectl_args(lab.cfg, "get", ",".join(batch), "-A", "-o", "json"), check=False,
                  timeout=60, quiet=quiet)
    doc = _answer(res)
    if doc is None:
        return Result(res.rc or 1, res.out, res.err or "kubectl printed no JSON")
    by_kind: dict[tuple[str, str], list[dict]] = {}
    for obj in items(doc):
        group = obj.get("apiVersion", "").rpartition("/")[0]
        by_kind.setdefault((group, obj.get("kind", "")), []).append(obj)
    seen = lab.__dict__.setdefault("_crds_seen", set())
    for r in batch:
        memo[r] = by_kind.get(SETUP_READS[r][:2], [])
        if _custom(r):
            seen.add(r)  # kubectl listed it: the type is served
    return res


def objects(listed: list[dict] | None, namespace: str | None = None, name: str | None = None,
            labels: dict[str, str] | None = None) -> list[dict]:
    """The objects of a snapshot's list in NAMESPACE, named NAME, carrying LABELS (as `get -n -l` selects)."""
    found = []
    for obj in listed or []:
        meta = obj.get("metadata", {})
        if namespace is not None and meta.get("namespace") != namespace:
            continue
        if name is not None and meta.get("name") != name:
            continue
        if labels and any((meta.get("labels") or {}).get(k) != v for k, v in labels.items()):
            continue
        found.append(obj)
    return found


def rollout_complete(dep: dict) -> bool:
    """`kubectl rollout status deployment` would return at once, successfully (its DeploymentStatusViewer):
    the spec is observed, every replica is updated and available, no old replica is left."""
    meta, spec, status = dep.get("metadata", {}), dep.get("spec", {}), dep.get("status", {})
    if meta.get("generation", 0) > status.get("observedGeneration", 0):
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False  # rollout status says so, as an error
    updated = status.get("updatedReplicas", 0)
    if spec.get("replicas") is not None and updated < spec["replicas"]:
        return False
    return status.get("replicas", 0) <= updated and status.get("availableReplicas", 0) >= updated


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
