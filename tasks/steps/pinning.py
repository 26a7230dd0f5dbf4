"""Pinning environments for promotion, the GitOps way: with WATCH_ENVS=dev, dev follows every publish of flux-cd/ and the
other environments run what was last *promoted* to them, until `doit promote` moves the next one.

Nothing is rebuilt or re-published. The state of a promotion is two objects, both written by the lab:

- a tag of the one OCI artifact `lab-gitops`: `staging` (or `production`) is set by
  `flux tag artifact oci://…/lab-gitops@sha256:<digest> --tag staging` from the digest the environment
  before it last applied (its Kustomization's `status.lastAppliedRevision`), and OCIRepository
  `flux-system/lab-gitops-staging` follows that tag;
- ConfigMap `flux-system/lab-vars-staging` (key `APP_IMAGE`), the image that environment runs, which
  its Kustomization substitutes instead of `lab-vars`.

The tree in flux-cd/ is the same in both modes: the bootstrap is pointed at these objects when it is
rendered (`apply_pinning`, next to `sync.apply_monitoring`). `doit promote` itself is
tasks/day2/promote.py. Without WATCH_ENVS nothing here changes
anything: every environment follows `latest` and `lab-vars`, as before.
"""
from __future__ import annotations

import copy
import json

from tasks.core import console, kube, names
from tasks.steps import registry, sync
from tasks.core.errors import LabError

CHAIN = names.ENVIRONMENTS  # dev → staging → production
KS_KIND = "kustomizations.kustomize.toolkit.fluxcd.io"
OCI_KIND = "ocirepositories.source.toolkit.fluxcd.io"
ENV_LABEL = "gitops-lab/environment"  # on the ConfigMaps lab-vars-<env>


def watched(cfg) -> tuple[str, ...]:
    """The environments that follow every publish (all of them without WATCH_ENVS)."""
    return tuple(cfg.WATCH_ENVS.split(",")) if cfg.WATCH_ENVS else CHAIN


def pinned(cfg) -> tuple[str, ...]:
    """The environments that move only on `doit promote`, in promotion order."""
    return tuple(env for env in CHAIN if env not in watched(cfg))


def source_name(env: str) -> str:
    return f"{sync.ARTIFACT}-{env}"


def vars_name(env: str) -> str:
    return f"{sync.VARS}-{env}"


# --- the bootstrap, as rendered for WATCH_ENVS -------------------------------------------------------

def apply_pinning(docs: list[dict], envs: tuple[str, ...]) -> list[dict]:
    """For each pinned environment: an OCIRepository `lab-gitops-<env>` following tag `<env>` (a copy of
    `lab-gitops`: same URL, TLS and credentials), and its `apps-<env>` Kustomization reading that source
    and substituting from ConfigMap `lab-vars-<env>` (required: without it the environment would fall
    back to the manifests' default image)."""
    if not envs:
        return docs
    source = next((d for d in docs if d.get("kind") == "OCIRepository"
                   and d["metadata"]["name"] == sync.ARTIFACT), None)
    if source is None:
        raise LabError(f"WATCH_ENVS needs the OCIRepository {sync.ARTIFACT} in the bootstrap",
                       "the pinned environments follow tags of that artifact", "use GITOPS_SOURCE=oci")
    at = docs.index(source) + 1
    for env in envs:
        pin = copy.deepcopy(source)
        pin["metadata"]["name"] = source_name(env)
        pin["metadata"].setdefault("labels", {})[ENV_LABEL] = env
        pin["spec"]["ref"] = {"tag": env}
        docs.insert(at, pin)
        at += 1
    for doc in docs:
        if doc.get("kind") != "Kustomization" or "kustomize.toolkit.fluxcd.io" not in doc.get("apiVersion", ""):
            continue
        env = doc["metadata"]["name"].removeprefix("apps-")
        if env not in envs:
            continue
        spec = doc["spec"]
        spec["sourceRef"] = {**spec["sourceRef"], "name": source_name(env)}
        post = spec.setdefault("postBuild", {})
        post["substituteFrom"] = [{"kind": "ConfigMap", "name": vars_name(env)} if s.get("name") == sync.VARS else s
                                  for s in post.get("substituteFrom") or []]
    return docs


def bootstrap_matches(cfg, kustomizations: list[dict], sources: list[dict]) -> bool:
    """Reality: each `apps-<env>` reads the source WATCH_ENVS says, and each pinned source exists."""
    by_name = {o["metadata"]["name"]: o for o in kube.objects(kustomizations, namespace=names.FLUX_NAMESPACE)}
    for env in CHAIN:
        want = source_name(env) if env in pinned(cfg) else sync.ARTIFACT
        ks = by_name.get(names.APP_LAYERS[env])
        if ks is not None and ((ks.get("spec") or {}).get("sourceRef") or {}).get("name") != want:
            return False
    have = {o["metadata"]["name"] for o in kube.objects(sources, namespace=names.FLUX_NAMESPACE)}
    return {source_name(env) for env in pinned(cfg)} <= have


def stale(cfg, kustomizations: list[dict] | None) -> list[str]:
    """Environments the cluster still pins that WATCH_ENVS no longer does (from a listing already read)."""
    found = []
    for ks in kube.objects(kustomizations, namespace=names.FLUX_NAMESPACE):
        env = ks["metadata"]["name"].removeprefix("apps-")
        ref = ((ks.get("spec") or {}).get("sourceRef") or {}).get("name")
        if env in CHAIN and ref == source_name(env) and env not in pinned(cfg):
            found.append(env)
    return sorted(found, key=CHAIN.index)


def forget_pins(lab, envs: list[str]) -> None:
    """Delete the sources and ConfigMaps of environments that follow every publish again."""
    if not envs:
        return
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "-n", names.FLUX_NAMESPACE, "delete", OCI_KIND,
                                           *(source_name(e) for e in envs), "--ignore-not-found"), timeout=60)
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "-n", names.FLUX_NAMESPACE, "delete", "configmaps",
                                           *(vars_name(e) for e in envs), "--ignore-not-found"), timeout=60)
    console.info(f"{', '.join(envs)} follow every publish again (WATCH_ENVS={lab.cfg.WATCH_ENVS or 'all'})")


# --- the promotion state ---------------------------------------------------------------------------

def vars_configmap(env: str, image_ref: str) -> dict:
    cm = sync.vars_configmap(None, image_ref)
    cm["metadata"]["name"] = vars_name(env)
    cm["metadata"]["labels"][ENV_LABEL] = env
    return cm


def promoted_images(lab) -> dict[str, str]:
    """{env: APP_IMAGE} of the pinned environments' ConfigMaps (one `kubectl get`)."""
    if not pinned(lab.cfg):
        return {}
    found = {}
    for cm in sync.vars_maps(lab).values():
        env = (cm["metadata"].get("labels") or {}).get(ENV_LABEL)
        if env in CHAIN and cm["metadata"]["name"] == vars_name(env):
            found[env] = (cm.get("data") or {}).get("APP_IMAGE", "")
    return found


def promotions_present(lab) -> bool:
    """Reality: each pinned environment has its promotion, lab-vars-<env> and the artifact tag <env>
    (what `seed` writes when one is missing)."""
    have = promoted_images(lab)
    return all(have.get(env) and (lab.cfg.remote_registry or registry.has_manifest(lab.cfg, sync.ARTIFACT, env))
               for env in pinned(lab.cfg))


def seed(lab, image_ref: str) -> list[str]:
    """A pinned environment without a promotion yet (a new lab, a recreated cluster, WATCH_ENVS just set)
    starts from what this sync publishes: the artifact tagged `<env>` and `lab-vars-<env>`. Both or
    neither, so a manifest revision never meets another revision's image. Returns the seeded envs."""
    envs = pinned(lab.cfg)
    if not envs:
        return []
    have = promoted_images(lab)
    missing = [e for e in envs if e not in have
               or (not lab.cfg.remote_registry and registry.has_manifest(lab.cfg, sync.ARTIFACT, e) is None)]
    if not missing:
        return []
    tag = sync.content_digest()[:12]
    lab.mutate("flux", "tag", "artifact", sync.artifact_url(lab.cfg, tag), *(a for e in missing for a in ("--tag", e)),
             *sync.auth_args(lab.cfg), timeout=120)
    for env in missing:
        lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"),
                 stdin=json.dumps(vars_configmap(env, image_ref)), timeout=60)
    console.info(f"{', '.join(missing)} start from this publish ({sync.ARTIFACT}:{tag}); "
                 f"from now on they move on `doit promote`")
    return missing


def expected_images(lab, fresh: str) -> dict[str, str]:
    """What each environment should run: FRESH (this run's image) where it follows every publish, its
    promoted image where it is pinned."""
    promoted = promoted_images(lab)
    want = {}
    for env in CHAIN:
        if env in pinned(lab.cfg) and env not in promoted:
            raise LabError(f"no ConfigMap {vars_name(env)} for {env}",
                           f"{env} is pinned (WATCH_ENVS={lab.cfg.WATCH_ENVS}) and runs what was promoted to it",
                           "run `doit sync` (it starts a pinned environment from the current publish)")
        want[env] = promoted[env] if env in pinned(lab.cfg) else fresh
    return want


# --- doit promote ----------------------------------------------------------------------------------


