"""`doit promote`: with WATCH_ENVS=dev, move the next environment to the artifact revision and image the
one before it runs. Nothing is rebuilt or re-published; how the bootstrap pins environments is
tasks/steps/pinning.py."""
from __future__ import annotations

import json

from tasks.core import console, flux_status, kube, names
from tasks.core.errors import LabError
from tasks.steps import reconcile, sync
from tasks.steps.pinning import (CHAIN, KS_KIND, OCI_KIND, bootstrap_matches, pinned, source_name,
                                 vars_configmap)


def _applied(ks: dict | None) -> str:
    """The artifact digest an apps-<env> Kustomization last applied (`<tag>@sha256:…` → `sha256:…`)."""
    rev = ((ks or {}).get("status") or {}).get("lastAppliedRevision") or ""
    return rev.rpartition("@")[2] if "@sha256:" in rev else ""

def _running(lab, env: str) -> tuple[str, dict | None]:
    found = kube.objects(kube.namespaced(lab, "deployments.apps", env), name="app")
    if not found:
        return "", None
    return found[0]["spec"]["template"]["spec"]["containers"][0]["image"], found[0]

def _short(ref: str) -> str:
    return ref.split("@")[0].rsplit(":", 1)[-1] if ref else "-"


def run(lab) -> dict:
    """`doit promote`: the environment before PROMOTE_TO (default: the first one behind its predecessor)
    hands its applied artifact revision and its image to it. Nothing is rebuilt or re-published."""
    held = pinned(lab.cfg)
    if not held:
        raise LabError("nothing to promote: every environment follows every publish (WATCH_ENVS is empty)",
                       "`doit promote` moves an environment that waits for it",
                       "run the lab with WATCH_ENVS=dev (e.g. `export WATCH_ENVS=dev; doit watch`), then promote")
    if lab.cfg.PROMOTE_TO and lab.cfg.PROMOTE_TO not in held:
        raise LabError(f"PROMOTE_TO={lab.cfg.PROMOTE_TO}: {lab.cfg.PROMOTE_TO} follows every publish "
                       f"(WATCH_ENVS={lab.cfg.WATCH_ENVS})", "only a pinned environment is promoted to",
                       f"promote to one of: {', '.join(held)}")
    listed, sources = kube.setup_read(lab, KS_KIND), kube.setup_read(lab, OCI_KIND)
    if listed is None or not bootstrap_matches(lab.cfg, listed, sources):
        raise LabError(f"the cluster is not set up for WATCH_ENVS={lab.cfg.WATCH_ENVS}",
                       "the pinned environments need their own source and variables",
                       f"run `doit setup WATCH_ENVS={lab.cfg.WATCH_ENVS}` (or `doit watch` with it) first")
    kss = {o["metadata"]["name"]: o for o in kube.objects(listed, namespace=names.FLUX_NAMESPACE)}
    state = {}
    for env in CHAIN:
        image_ref, dep = _running(lab, env)
        state[env] = {"revision": _applied(kss.get(names.APP_LAYERS[env])), "image": image_ref, "deployment": dep,
                      "ks": kss.get(names.APP_LAYERS[env])}

    def behind(env: str) -> bool:
        before = state[CHAIN[CHAIN.index(env) - 1]]
        return (state[env]["revision"], state[env]["image"]) != (before["revision"], before["image"])

    if lab.cfg.PROMOTE_TO:
        target = lab.cfg.PROMOTE_TO
    else:
        target = next((env for env in held if behind(env)), "")
    if not target or not behind(target):
        where = target or ", ".join(held)
        console.info(f"nothing to promote: {where} already run{'s' if target else ''} the revision and image "
                     f"of the environment before")
        _print_state(state)
        return {"promoted": ""}
    origin = CHAIN[CHAIN.index(target) - 1]
    src = state[origin]
    ready, reason, message = kube.condition(src["ks"] or {})
    if ready != "True" or not src["revision"] or src["deployment"] is None \
            or not kube.rollout_complete(src["deployment"]):
        why = f"{reason}: {message}" if ready != "True" else "its app rollout has not completed"
        raise LabError(f"{origin} is not Ready, so there is nothing tested to promote to {target}", why,
                       f"fix {origin} first (see `doit flux_status`), then promote")
    console.info(f"{target} ← {origin}: artifact {sync.ARTIFACT}@{src['revision'][:19]}…, "
                 f"image {_short(src['image'])} (nothing is rebuilt)")
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"),
             stdin=json.dumps(vars_configmap(target, src["image"])), timeout=60)
    lab.mutate("flux", "tag", "artifact", f"oci://{lab.cfg.image_registry}/{sync.ARTIFACT}@{src['revision']}",
             "--tag", target, *sync.auth_args(lab.cfg), timeout=120)
    # as a sync asks Flux: the source fetches the new tag, then the environment applies it
    reconcile.request(lab, [(OCI_KIND, source_name(target))], timeout="3m")
    reconcile.request(lab, [(KS_KIND, names.APP_LAYERS[target])], timeout="5m")
    if lab.dry_run:
        return {"promoted": target}
    flux_status.wait_ready(lab, timeout=600)
    kube.forget(lab, KS_KIND, "deployments.apps", "pods")
    kss = {o["metadata"]["name"]: o for o in kube.objects(kube.setup_read(lab, KS_KIND), namespace=names.FLUX_NAMESPACE)}
    for env in CHAIN:
        image_ref, dep = _running(lab, env)
        state[env] = {"revision": _applied(kss.get(names.APP_LAYERS[env])), "image": image_ref, "deployment": dep}
    if (state[target]["revision"], state[target]["image"]) != (src["revision"], src["image"]):
        raise LabError(f"{target} did not take the promotion", f"it runs {_short(state[target]['image'])} from "
                       f"{state[target]['revision'][:19] or 'nothing'}", "see `doit flux_status` and `doit flux_logs`")
    _print_state(state)
    return {"promoted": target, "revision": src["revision"], "image": src["image"]}


def _print_state(state: dict) -> None:
    print()
    console.print_table(["ENV", "IMAGE TAG", "ARTIFACT REVISION"],
                        [[env, _short(s["image"]), (s["revision"][:19] + "…") if s["revision"] else "-"]
                         for env, s in state.items()])
