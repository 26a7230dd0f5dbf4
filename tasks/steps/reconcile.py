"""Reconcile what a sync changed, and only that, the environments side by side.

What an edit can change, read from the graph of Flux objects (flux-cd/bootstrap):

    OCIRepository lab-gitops ──> infrastructure ──dependsOn──> apps-dev, apps-staging, apps-production
    ConfigMap lab-vars (APP_IMAGE) ─────────────── substituted by ──> apps-<env> that follow every publish

- an app edit changes the image, so lab-vars: the apps Kustomizations that substitute it, nothing else
  (the artifact, its source and infrastructure cannot have changed);
- an edit under flux-cd/ is a new artifact revision: the source fetches it now. Flux then re-applies
  every Kustomization of that source by itself (a new revision is a trigger). The apps' `dependsOn`
  has a `readyExpr` (flux-cd/bootstrap/base/apps.yaml): infrastructure applied its current spec once and
  is Ready or re-applying, not "applied this very revision" (the built-in check, which made every edit
  under apps/ wait for infrastructure's re-apply of an unchanged folder). So infrastructure is
  *reconciled*, before the apps, only when its own folder changed (the artifact carries its digest as an
  annotation, which the OCIRepository's status repeats); otherwise Flux re-applies it beside the apps
  and nothing waits for it;
- a bootstrap change (a setting, WATCH_ENVS) is a spec change of the objects it touched (their
  generation moved): those are reconciled.

Flux is asked by `request`: the annotation `flux reconcile` sets, then one watch per object instead of
flux's 2-second poll (a fetch takes well under a second; the poll made it 2 s). The apps Kustomizations
have `wait: true`, so an environment's watch ends after its rollout and health checks; the environments
are watched side by side.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tasks.core import console, flux_status, kube, names, parallel
from tasks.core.errors import LabError
from tasks.core.tools import tail

KS_KIND = "kustomizations.kustomize.toolkit.fluxcd.io"
SOURCE_KINDS = {"oci": "ocirepositories.source.toolkit.fluxcd.io", "git": "gitrepositories.source.toolkit.fluxcd.io"}
# On the artifact (`flux push artifact -a`), in the OCIRepository's status.artifact.metadata afterwards.
INFRASTRUCTURE_DIGEST = "gitops-lab.digest.infrastructure"


@dataclass(frozen=True)
class Before:
    """The Flux objects as this run found them, before the sync changed anything."""
    kustomizations: dict[str, dict]  # name -> object (flux-system)
    sources: dict[str, dict]  # name -> object (flux-system), of GITOPS_SOURCE's kind
    images: dict[str, str] | None = None  # env -> the image its app Deployment runs, where the run read it

    def ready(self, name: str) -> bool:
        obj = self.kustomizations.get(name) or self.sources.get(name)
        return bool(obj) and kube.is_true(obj) and \
            obj["metadata"].get("generation") == (obj.get("status") or {}).get("observedGeneration")

    def revision(self, source: str) -> str:
        return ((self.sources.get(source) or {}).get("status") or {}).get("artifact", {}).get("revision", "")


def observe(lab) -> Before:
    """From the run's read of the cluster (the up-to-date check's), or one read when there was none."""
    def by_name(listed):
        return {o["metadata"]["name"]: o for o in kube.objects(listed, namespace=names.FLUX_NAMESPACE)}

    kustomizations = by_name(kube.snapshot(lab, [KS_KIND])[KS_KIND])
    if not set(names.FLUX_KUSTOMIZATIONS) & set(kustomizations):
        return Before({}, {})  # a first sync: everything is new, whatever the sources say
    kind = SOURCE_KINDS[lab.cfg.GITOPS_SOURCE]
    sources = by_name(kube.snapshot(lab, [kind])[kind])
    # The Deployments only where the run has read them already (a re-run's reality checks did): a sync
    # that finds nothing else to do still notices an environment left on another image.
    deployments = lab.memo.get("kube", {}).get("deployments.apps")
    images = None if deployments is None or lab.cfg.existing else {
        env: dep["spec"]["template"]["spec"]["containers"][0].get("image", "")
        for env in names.ENVIRONMENTS for dep in kube.objects(deployments, namespace=env, name=names.APP)}
    return Before(kustomizations, sources, images)


@dataclass
class Plan:
    sources: list[str] = field(default_factory=list)  # fetch now (the lab's source, seeded pinned sources)
    infrastructure: bool = False  # reconciled (and waited for) before the apps
    apps: list[str] = field(default_factory=list)  # environments whose apps Kustomization is reconciled
    why: list[str] = field(default_factory=list)  # one phrase per decision, for the log


def plan(before: Before, *, source: str, digest: str | None, infrastructure_digest: str, image_changed: bool,
         follow: tuple[str, ...], seeded: tuple[str, ...] = (), changed: frozenset[str] = frozenset(),
         image: str = "") -> Plan:
    """What to reconcile. SOURCE: the lab's source object; DIGEST: the manifest digest its tag `latest` now
    points at (None when unknown: a git source or a remote registry); FOLLOW: the environments that follow
    every publish; SEEDED: pinned environments started from this publish; CHANGED: the Flux objects whose
    spec the bootstrap apply just changed; IMAGE: the image the followers should run."""
    todo = Plan()
    layers = [source, names.INFRASTRUCTURE, *(names.APP_LAYERS[e] for e in follow)]
    first = [n for n in layers if n not in before.kustomizations and n not in before.sources]
    if first:
        todo.why.append(f"new: {', '.join(first)}")
    fetched = before.revision(source)
    current = digest is not None and before.ready(source) and fetched.endswith("@" + digest) and source not in changed
    if not current:
        todo.sources.append(source)
        todo.why.append(f"source {source}: " + ("new revision" if digest else "asked (revision unknown before fetching)"))
    for env in seeded:
        todo.sources.append(f"{source}-{env}")
    infra = names.INFRASTRUCTURE
    infra_at = (before.kustomizations.get(infra) or {}).get("status", {}).get("lastAppliedRevision")
    if first or not before.ready(infra) or infra in changed or (current and infra_at != fetched):
        todo.infrastructure = True
        todo.why.append(f"{infra}: not Ready at the current revision, or its spec changed")
    elif not current:
        had = ((before.sources.get(source) or {}).get("status") or {}).get("artifact", {}).get("metadata") or {}
        if digest and had.get(INFRASTRUCTURE_DIGEST) == infrastructure_digest:
            # the apps' readyExpr lets them apply while Flux re-applies this unchanged folder
            todo.why.append(f"{infra}: unchanged; Flux re-applies the new revision itself, the apps do not wait")
        else:
            todo.infrastructure = True
            todo.why.append(f"{infra}: its folder changed")
    for env in (*follow, *seeded):
        layer = names.APP_LAYERS[env]
        reasons = [why for why, hit in (
            ("new revision", not current and env in follow),
            ("new image", image_changed and env in follow),
            ("seeded", env in seeded),
            ("spec changed", layer in changed),
            ("not Ready", not before.ready(layer)),
            ("behind the revision", current and env in follow
             and before.kustomizations.get(layer, {}).get("status", {}).get("lastAppliedRevision") != fetched),
            ("runs another image", env in follow and before.images is not None and image
             and before.images.get(env) != image),
        ) if hit]
        if reasons:
            todo.apps.append(env)
            todo.why.append(f"{layer}: {', '.join(reasons)}")
    return todo


def run(lab, todo: Plan) -> None:
    """Sources first, then infrastructure, then every environment side by side."""
    for line in todo.why:
        console.info(line)
    kind = "oci" if lab.cfg.GITOPS_SOURCE == "oci" else "git"
    sources = [(SOURCE_KINDS[kind if s == names.SOURCE else "oci"], s) for s in todo.sources]
    request(lab, sources, timeout="3m")
    if todo.infrastructure:
        infra = names.layer(names.INFRASTRUCTURE)
        try:  # its own spec.timeout: the first install of kube-prometheus-stack takes minutes
            request(lab, [(KS_KIND, infra.name)], timeout=infra.timeout)
        except LabError as failed:
            raise infrastructure_blocker(lab) or failed from None
    if len(todo.apps) > 1:
        console.info(f"reconciling {', '.join(names.APP_LAYERS[e] for e in todo.apps)} side by side")
    request(lab, [(KS_KIND, names.APP_LAYERS[env]) for env in todo.apps],
            timeout=max((names.layer(names.APP_LAYERS[e]).timeout for e in todo.apps),
                        key=kube.duration_seconds, default="5m"))


REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
KIND_NAMES = {SOURCE_KINDS["oci"]: "OCIRepository", SOURCE_KINDS["git"]: "GitRepository", KS_KIND: "Kustomization"}


def request(lab, objects: list[tuple[str, str]], *, timeout: str) -> None:
    """What `flux reconcile` does, with a watch where flux polls every 2 s (a source's fetch takes well
    under a second, a rollout's health check ends between two polls): one annotation of every object
    (KIND: `plural.group`, NAME; in flux-system) with a new request, then, side by side, one watch per
    object until its controller says it handled that request (status.lastHandledReconcileAt: set when a
    reconcile ends, whether it worked or not); its Ready condition then tells how it went.
    `apps-<env>` with `wait: true`: the watch ends after its rollout and health checks."""
    if not objects:
        return
    token = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ns = ("-n", names.FLUX_NAMESPACE)
    res = lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, *ns, "annotate", "--overwrite",
                                                   *(f"{kind}/{name}" for kind, name in objects),
                                                   f"{REQUESTED_AT}={token}", "-o", "json"), timeout=60)
    if lab.dry_run:
        return
    # Flux reconciles nothing suspended: the request would never be handled (flux reconcile refuses it)
    paused = [o for o in json_documents(res.out) if (o.get("spec") or {}).get("suspend")]
    if paused:
        raise flux_status.suspended_error(lab.cfg, paused)

    def handled(obj: tuple[str, str]) -> None:
        kind, name = obj
        res = lab.probe("kubectl", *kube.kubectl_args(lab.cfg, *ns, "wait", f"{kind}/{name}",
                                                      f"--for=jsonpath={{.status.lastHandledReconcileAt}}={token}",
                                                      f"--timeout={timeout}", "-o", "json"),
                        timeout=(kube.duration_seconds(timeout) or 300) + 60, check=False)
        what = f"{KIND_NAMES.get(kind, kind)}/{names.FLUX_NAMESPACE}/{name}"
        if not res.ok:
            raise LabError(f"{what} did not finish the reconcile this run asked for within {timeout}",
                           tail(res.err or res.out) or "kubectl printed nothing",
                           "`doit flux_status` and `doit flux_logs` say what it is doing; then `doit setup` again")
        status, reason, message = kube.condition(json.loads(res.out))
        if status != "True":
            raise LabError(f"{what} reconciliation failed: {reason or 'not Ready'}: {_short(message)}",
                           "its controller tried and says why in its Ready condition",
                           "`doit flux_logs` says more; fix the cause, then `doit setup`")

    parallel.side_by_side(handled, objects)


def json_documents(text: str) -> list[dict]:
    """The objects kubectl printed with -o json: one document per object, or a List."""
    decoder, found, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        doc, end = decoder.raw_decode(text, at)
        found.extend(doc.get("items", []) if doc.get("kind") == "List" else [doc])
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def infrastructure_blocker(lab) -> LabError | None:
    """Why infrastructure did not become Ready, read once after it failed: flux itself only says
    "context deadline exceeded". Its health checks wait for the charts it installs: a chart source that
    cannot fetch (a registry the cluster does not reach: the usual cause), else a HelmRelease not Ready."""
    from tasks.steps import mirrors
    objs = flux_status.objects(lab, quiet=True, fresh=True)
    charts = {(src.namespace, src.name) for src in mirrors.declared_chart_sources(lab.cfg)}
    for obj in objs:
        meta = obj.get("metadata") or {}
        if obj.get("kind") != "OCIRepository" or (meta.get("namespace"), meta.get("name")) not in charts \
                or kube.is_true(obj):
            continue
        _, reason, message = kube.condition(obj)
        url = (obj.get("spec") or {}).get("url", "")
        host = url.removeprefix("oci://").split("/", 1)[0]
        if mirrors.upstream_of(url.removeprefix("oci://")):
            fix = (f"let the cluster reach {host}, or name a registry it reaches that mirrors {host}: "
                   f"CHART_MIRRORS={host}=https://… (README \"From kind to a real cluster\"); MONITORING=crds "
                   "installs no chart; then `doit setup`")
        else:
            fix = (f"check that the cluster reaches {host} and that it holds the chart (CHART_MIRRORS; "
                   "`doit mirror_status` for the lab's own mirrors); then `doit setup`")
        return LabError(f"{kube.ref(obj)} cannot fetch its chart from {url}: {reason or 'not Ready'}: "
                        f"{_short(message)}",
                        "Flux's source-controller fetches the chart inside the cluster; infrastructure waits for "
                        "the HelmRelease that installs it", fix)
    for obj in objs:
        meta = obj.get("metadata") or {}
        if obj.get("kind") != "HelmRelease" or kube.is_true(obj) or (obj.get("spec") or {}).get("suspend"):
            continue
        _, reason, message = kube.condition(obj)
        stalled = kube.is_true(obj, "Stalled")
        retry = (f"`flux reconcile helmrelease {meta.get('name')} -n {meta.get('namespace')} --reset "
                 f"--context {lab.cfg.KUBE_CONTEXT}` (helm-controller stopped retrying)" if stalled else
                 "`doit setup` waits for it again")
        return LabError(f"{kube.ref(obj)} is not Ready: {reason or 'no reason given'}: {_short(message)}",
                        "infrastructure's health check waits for it", f"`doit flux_logs` says why; fix that, then "
                        f"{retry}")
    return None


def _short(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
