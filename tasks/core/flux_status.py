"""Flux objects' readiness, decided from their Ready conditions (parsed JSON)."""
from __future__ import annotations

import time

from tasks.core import console, kube
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


def wait_ready(lab, timeout: float = 900, poll: float = 5, expect: int = 1) -> list[dict]:
    """Wait until every Flux object is Ready; name the one that is not and why on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        objs = objects(lab, quiet=last is not None, fresh=True)
        bad = not_ready(objs)
        if len(objs) >= expect and not bad:
            return objs
        summary = "; ".join(f"{kube.ref(o)}: {why}" for o, why in bad) or "no Flux objects yet"
        if summary != last:
            console.info(f"waiting: {summary}")
            last = summary
        if time.monotonic() > deadline:
            obj, why = bad[0] if bad else ({}, "no Flux objects found")
            raise LabError(f"{kube.ref(obj) if obj else 'Flux'} is not Ready after {timeout:.0f}s", why,
                           "see `doit flux_status` and `doit flux_logs`")
        time.sleep(poll)
