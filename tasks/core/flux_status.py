"""Flux objects' readiness, decided from their Ready conditions (parsed JSON)."""
from __future__ import annotations

import time

from tasks.core import console, kube, names
from tasks.core.errors import LabError

KINDS = ("kustomizations.kustomize.toolkit.fluxcd.io", "helmreleases.helm.toolkit.fluxcd.io",
         "ocirepositories.source.toolkit.fluxcd.io", "gitrepositories.source.toolkit.fluxcd.io")


def objects(lab, quiet: bool = False, fresh: bool = False) -> list[dict]:
    """Every Flux object of KINDS (a kind whose CRD is absent has none), in one `kubectl get` shared by
    the run; FRESH reads them again (a wait: Flux changes them without a mutation of ours)."""
    if fresh:
        kube.forget(lab, *KINDS)
    found = kube.snapshot(lab, KINDS, quiet=quiet)
    return [obj for kind in KINDS for obj in found[kind] or []]


def expected(cfg) -> list[tuple[str, str]]:
    """(kind, name) of the Flux objects the lab's bootstrap makes in flux-system: its source and every
    Kustomization of flux-cd/bootstrap/base, named (a count would let another object stand in for one)."""
    source = "OCIRepository" if cfg.GITOPS_SOURCE == "oci" else "GitRepository"
    return [(source, names.SOURCE), *(("Kustomization", name) for name in names.FLUX_KUSTOMIZATIONS)]


def missing(cfg, objs: list[dict]) -> list[str]:
    """The expected objects absent from OBJS, as `Kind/flux-system/name`."""
    have = {(o.get("kind"), o["metadata"].get("name")) for o in objs
            if o["metadata"].get("namespace") == names.FLUX_NAMESPACE}
    return [f"{kind}/{names.FLUX_NAMESPACE}/{name}" for kind, name in expected(cfg) if (kind, name) not in have]


def missing_error(gone: list[str]) -> LabError:
    return LabError(f"{', '.join(gone)} {'does' if len(gone) == 1 else 'do'} not exist",
                    "Flux applies nothing without the lab's bootstrap objects (deleted, or never applied)",
                    "run `doit sync` (it applies the bootstrap again and waits for Ready)")


# `flux resume <this>` per kind (the lab's own Kustomizations have `doit flux_resume`)
_RESUME = {"Kustomization": "kustomization", "HelmRelease": "helmrelease", "OCIRepository": "source oci",
           "GitRepository": "source git"}


def suspended(cfg, objs: list[dict]) -> list[dict]:
    """The lab's own Flux objects in OBJS that are suspended (those `expected`, and the pinned sources
    lab-gitops-<env>): Flux reconciles none of them, and `flux reconcile` refuses them."""
    ours = {name for _, name in expected(cfg)} | {f"{names.SOURCE}-{env}" for env in names.ENVIRONMENTS}
    return [o for o in objs if (o.get("spec") or {}).get("suspend")
            and o["metadata"].get("namespace") == names.FLUX_NAMESPACE and o["metadata"].get("name") in ours]


def suspended_error(cfg, objs: list[dict]) -> LabError:
    """One line for suspended objects, naming the command that resumes them."""
    layers = [o["metadata"]["name"] for o in objs
              if o.get("kind") == "Kustomization" and o["metadata"]["name"] in names.FLUX_KUSTOMIZATIONS]
    others = [o for o in objs if o["metadata"]["name"] not in layers]
    if others:
        o = others[0]
        fix = (f"run `flux resume {_RESUME.get(o.get('kind'), o.get('kind', '').lower())} {o['metadata']['name']} "
               f"-n {o['metadata'].get('namespace')} --context {cfg.KUBE_CONTEXT}`")
    elif len(layers) == 1:
        fix = f"run `doit flux_resume FLUX_KUSTOMIZATION={layers[0]}`"
    else:
        fix = "run `doit flux_resume`"
    return LabError(f"{', '.join(kube.ref(o) for o in objs)} {'is' if len(objs) == 1 else 'are'} suspended",
                    "Flux applies no change to a suspended object (`doit flux_suspend` or `doit cleanup_app` "
                    "suspended it)", fix)


def not_ready_error(cfg, obj: dict, why: str) -> LabError:
    """One line for an object that is not Ready, naming what repairs it: the lab's own objects are `doit
    sync`'s (its up-to-date check asks for their Ready, so it reconciles them again); any other is retried
    by flux itself."""
    meta = obj.get("metadata") or {}
    ours = {name for _, name in expected(cfg)} | {f"{names.SOURCE}-{env}" for env in names.ENVIRONMENTS}
    if meta.get("namespace") == names.FLUX_NAMESPACE and meta.get("name") in ours:
        fix = "run `doit sync` (it reconciles and waits; `doit flux_logs` says why if it fails again)"
    else:
        fix = (f"`doit flux_logs` says why; `flux reconcile {_RESUME.get(obj.get('kind'), str(obj.get('kind')).lower())} "
               f"{meta.get('name')} -n {meta.get('namespace')} --context {cfg.KUBE_CONTEXT}` retries it")
    return LabError(f"{kube.ref(obj)} is not Ready", why, fix)


def not_ready(objs: list[dict]) -> list[tuple[dict, str]]:
    bad = []
    for obj in objs:
        if (obj.get("spec") or {}).get("suspend"):
            bad.append((obj, "suspended (run `doit flux_resume`)"))
            continue
        status, reason, message = kube.condition(obj)
        if status != "True":
            bad.append((obj, f"{reason + ': ' if reason else ''}{message}"))
    return bad


def wait_ready(lab, timeout: float = 900, poll: float = 5) -> list[dict]:
    """Wait until the lab's Flux objects exist (each by name, see `expected`) and every Flux object is
    Ready; name the one that is not and why on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        objs = objects(lab, quiet=last is not None, fresh=True)
        gone = missing(lab.cfg, objs)
        bad = not_ready(objs)
        if not gone and not bad:
            return objs
        summary = "; ".join([*(f"{ref}: does not exist" for ref in gone),
                             *(f"{kube.ref(o)}: {why}" for o, why in bad)])
        if summary != last:
            console.info(f"waiting: {summary}")
            last = summary
        if time.monotonic() > deadline:
            if gone:
                raise missing_error(gone)
            obj, why = bad[0]
            raise LabError(f"{kube.ref(obj)} is not Ready after {timeout:.0f}s", why,
                           "see `doit flux_status` and `doit flux_logs`")
        time.sleep(poll)
