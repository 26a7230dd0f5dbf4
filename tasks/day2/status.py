"""Status tables and Flux controls (flux_status, cluster_status, check/wait, logs, suspend/resume)."""
from __future__ import annotations

from datetime import datetime, timezone

from tasks.core import console, flux_status, kube, names
from tasks.core.errors import LabError


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    secs = int((datetime.now(timezone.utc) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"


def revision(obj: dict) -> str:
    st = obj.get("status") or {}
    rev = (st.get("lastAppliedRevision") or (st.get("artifact") or {}).get("revision")
           or st.get("lastAttemptedRevision") or "-")
    # "latest@sha256:abcdef…" → "latest@sha256:abcdef123456"
    head, _, digest = rev.partition(":")
    return f"{head}:{digest[:12]}" if digest else rev


def flux_rows(objs: list[dict]) -> list[list[str]]:
    rows = []
    for o in objs:
        status, reason, message = kube.condition(o)
        if (o.get("spec") or {}).get("suspend"):
            status = "Suspended"
        meta = o["metadata"]
        rows.append([o["kind"], f"{meta.get('namespace', '')}/{meta['name']}", status, revision(o),
                     age(meta.get("creationTimestamp")), message[:70]])
    return rows


def flux_table(lab) -> None:
    objs = flux_status.objects(lab)
    if not objs:
        console.warn("no Flux objects: run `doit setup`")
        return
    console.print_table(["KIND", "NAME", "READY", "REVISION", "AGE", "MESSAGE"], flux_rows(objs))


def check_flux(lab) -> None:
    objs = flux_status.objects(lab)
    if not objs:
        raise LabError("no Flux objects in the cluster", "the GitOps sync has not run", "run `doit setup`")
    gone = flux_status.missing(lab.cfg, objs)
    if gone:
        raise flux_status.missing_error(gone)
    bad = flux_status.not_ready(objs)
    if bad:
        obj, why = bad[0]
        raise LabError(f"{kube.ref(obj)} is not Ready", why,
                       "see `doit flux_logs`; `doit wait_for_flux` waits for it")
    console.ok(f"{len(objs)} Flux objects Ready")


def wait_for_flux(lab) -> None:
    objs = flux_status.wait_ready(lab, timeout=600)
    console.ok(f"{len(objs)} Flux objects Ready")


def flux_logs(lab) -> None:
    res = lab.probe("flux", "logs", "--context", lab.cfg.KUBE_CONTEXT, "--all-namespaces", "--tail", "50",
                  timeout=60)
    print(res.out, end="")


def flux_toggle(verb: str):
    def run(lab) -> None:
        targets = [lab.cfg.FLUX_KUSTOMIZATION] if lab.cfg.FLUX_KUSTOMIZATION else list(names.FLUX_KUSTOMIZATIONS)
        for name in targets:
            lab.mutate("flux", verb, "kustomization", name, "-n", names.FLUX_NAMESPACE, "--context", lab.cfg.KUBE_CONTEXT,
                     timeout=120)
        if verb == "suspend":
            console.info("Flux no longer applies changes to these; `doit flux_resume` resumes them")
    return run


def cluster_status(lab) -> None:
    nodes = kube.items(kube.get_json(lab, "nodes"))
    rows = []
    for n in nodes:
        labels = n["metadata"].get("labels", {})
        role = "control-plane" if names.CONTROL_PLANE_LABEL in labels else \
            labels.get(names.WORKER_LABEL, "-")
        ready = kube.condition(n)[0]
        rows.append([n["metadata"]["name"], role, "Ready" if ready == "True" else "NotReady",
                     n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "-")])
    console.print_table(["NODE", "ROLE", "STATUS", "VERSION"], rows)
    print()
    rows = []
    for env in names.ENVIRONMENTS:
        dep = kube.get_json(lab, "deployment", names.APP, "-n", env, missing_ok=True)
        if not dep:
            rows.append([env, "-", "absent", "-"])
            continue
        st = dep.get("status", {})
        rows.append([env, dep["spec"]["template"]["spec"]["containers"][0]["image"],
                     f"{st.get('readyReplicas', 0)}/{st.get('replicas', 0)}", age(dep["metadata"].get("creationTimestamp"))])
    console.print_table(["ENV", "IMAGE", "READY", "AGE"], rows)


def deploy_env(env: str):
    def run(lab) -> None:
        lab.mutate("flux", "reconcile", "kustomization", names.APP_LAYERS[env], "-n", names.FLUX_NAMESPACE, "--with-source",
                 "--context", lab.cfg.KUBE_CONTEXT, "--timeout=5m", timeout=330)
        if not lab.dry_run:
            lab.probe("kubectl", *kube.kubectl_args(lab.cfg, "-n", env, "rollout", "status", f"deployment/{names.APP}",
                                                  "--timeout=300s"), timeout=320)
    return run
