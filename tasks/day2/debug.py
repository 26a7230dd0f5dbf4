"""Debugging from inside the cluster.

    doit debug_metrics     from a pod in `monitoring`, GET the app's /healthz and /metrics in
                           APP_ENV by Service DNS, summarise the metrics (real Prometheus
                           parser), then prove a pod in a foreign namespace is refused
    doit debug_cleanup     remove the debug pods and the outsider namespace
    doit debug_container   interactive shell (pinned debug image) in `default`
    doit debug_app         ... in APP_ENV
    doit debug_monitoring  ... in `monitoring`

Probe pods run CURL_IMAGE with `sleep` (an hour: a forgotten one ends by itself), are
reused while Running and recreated otherwise. Shell pods are removed when the shell ends.
"""
from __future__ import annotations

import json
import os
import sys

from tasks import versions
from tasks.core import console, debugpods, kube, names
from tasks.core.errors import LabError
from tasks.core.metrics_text import summarize_metrics

MONITORING = names.MONITORING_NAMESPACE
OUTSIDER = names.OUTSIDER
PROBE_POD = names.PROBE_POD
DEBUG_LABEL = names.DEBUG_LABEL
PROBE_SLEEP = "3600"
CURL_TIMEOUT = "5"
# curl exit codes that mean "the connection was refused, dropped or timed out".
REFUSED = {7: "connection refused", 28: "timed out", 52: "empty reply", 56: "connection reset"}


def service_url(ns: str, path: str) -> str:
    return f"http://{names.APP}.{ns}.svc.cluster.local:{names.APP_PORT}{path}"


# --- pods ---------------------------------------------------------------------------------

def restricted_security() -> tuple[dict, dict]:
    """(pod, container) securityContext meeting the "restricted" Pod Security Standard."""
    return ({"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
             "seccompProfile": {"type": "RuntimeDefault"}},
            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}})


def probe_pod_manifest(ns: str) -> dict:
    pod_sc, container_sc = restricted_security()
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": PROBE_POD, "namespace": ns,
                     "labels": {DEBUG_LABEL: "probe", "app.kubernetes.io/part-of": "gitops-lab"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,  # `sleep` as PID 1 ignores SIGTERM
            "automountServiceAccountToken": False,
            "securityContext": pod_sc,
            "containers": [{
                "name": "curl", "image": versions.CURL_IMAGE, "command": ["sleep", PROBE_SLEEP],
                "securityContext": {**container_sc, "readOnlyRootFilesystem": True},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "32Mi"}},
            }],
        },
    }


def healthy(pod: dict | None) -> bool:
    if not pod or pod["metadata"].get("deletionTimestamp"):
        return False
    st = pod.get("status") or {}
    statuses = st.get("containerStatuses") or []
    return st.get("phase") == "Running" and all(c.get("ready", True) for c in statuses)


def pod_problem(pod: dict | None) -> str:
    if not pod:
        return "it does not exist"
    st = pod.get("status") or {}
    for c in st.get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting:
            return f"{waiting.get('reason', 'Waiting')}: {waiting.get('message', '')}".strip(": ")
    cond = kube.condition(pod, "PodScheduled")
    if cond[0] == "False":
        return f"{cond[1]}: {cond[2]}"
    return f"phase {st.get('phase', 'unknown')}"


def ensure_namespace(lab, ns: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": ns, "labels": {DEBUG_LABEL: "outsider", "app.kubernetes.io/part-of": "gitops-lab"}}}
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"), stdin=json.dumps(doc), timeout=60)


def ensure_probe_pod(lab, ns: str) -> None:
    """A Running curl pod in `ns`: reused when healthy, recreated when not."""
    pod = None if lab.dry_run else kube.get_json(lab, "pod", PROBE_POD, "-n", ns, missing_ok=True)
    if healthy(pod):
        console.info(f"reusing pod {ns}/{PROBE_POD}")
        return
    if pod:
        console.info(f"recreating pod {ns}/{PROBE_POD} ({pod_problem(pod)})")
        lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "-n", ns, "delete", "pod", PROBE_POD, "--ignore-not-found",
                                               "--wait=true", "--timeout=60s"), timeout=90)
    lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "apply", "-f", "-"), stdin=json.dumps(probe_pod_manifest(ns)),
             timeout=60)
    if lab.dry_run:
        return
    res = lab.probe("kubectl", *kube.kubectl_args(lab.cfg, "-n", ns, "wait", "--for=condition=Ready", f"pod/{PROBE_POD}",
                                                "--timeout=120s"), timeout=150, check=False)
    if not res.ok:
        pod = kube.get_json(lab, "pod", PROBE_POD, "-n", ns, missing_ok=True)
        raise LabError(f"debug pod {ns}/{PROBE_POD} did not become Ready", pod_problem(pod),
                       f"can the nodes pull {versions.CURL_IMAGE}? see `kubectl -n {ns} describe pod {PROBE_POD}`")


def curl(lab, ns: str, url: str):
    """`kubectl exec` curl in the probe pod of `ns`; the Result, never raising on curl's exit code."""
    return lab.probe("kubectl", *kube.kubectl_args(lab.cfg, "-n", ns, "exec", PROBE_POD, "--",
                                                 "curl", "-sS", "-m", CURL_TIMEOUT, url),
                   timeout=60, check=False)


# kubectl exits 1 on its own failures (no pod, no container, no API) and passes the remote
# command's exit code through otherwise; curl exits 1 only for an unsupported protocol, which an
# http:// URL never is; 126/127: the container could not run curl at all.
KUBECTL_OWN_FAILURE = (1, 126, 127)


def exec_failed(res) -> bool:
    """True when kubectl itself failed (not curl), told by the exit code, never by the wording."""
    return res.rc in KUBECTL_OWN_FAILURE


# --- NetworkPolicies ---------------------------------------------------------------------------

APP_LABELS = names.APP_LABELS


def _selects_app(selector: dict | None) -> bool:
    """Could this podSelector select the app's pods? (matchExpressions: assume yes.)"""
    labels = (selector or {}).get("matchLabels") or {}
    return all(APP_LABELS.get(k) == v for k, v in labels.items())


def _admits_every_namespace(rule: dict) -> bool:
    peers = rule.get("from")
    if not peers:
        return True  # no `from`: every source, in every namespace
    for peer in peers:
        ns_sel = peer.get("namespaceSelector")
        if ns_sel is not None and not ns_sel.get("matchLabels") and not ns_sel.get("matchExpressions"):
            return True  # `namespaceSelector: {}` matches all namespaces
        if (peer.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0") and \
                not (peer.get("ipBlock") or {}).get("except"):
            return True
    return False


def open_policies(policies: list[dict]) -> list[str]:
    """Names of the NetworkPolicies that let any namespace reach the app's pods (by spec, sorted)."""
    found = []
    for pol in policies:
        spec = pol.get("spec") or {}
        types = spec.get("policyTypes") or ["Ingress"]
        if "Ingress" not in types or not _selects_app(spec.get("podSelector")):
            continue
        if any(_admits_every_namespace(rule) for rule in spec.get("ingress") or []):
            found.append(pol["metadata"]["name"])
    return sorted(found)


def open_ingress_policies(lab, ns: str) -> list[str]:
    """Best effort, for the error message only: [] when the policies can't be read."""
    try:
        return open_policies(kube.items(kube.get_json(lab, "networkpolicies", "-n", ns, missing_ok=True,
                                                      quiet=True)))
    except Exception:  # noqa: BLE001 - a diagnostic must never hide the finding it explains
        return []


# --- metrics --------------------------------------------------------------------------------

def _ms(v) -> str:
    return f"{v * 1000:.1f}ms" if v is not None else "-"


def print_summary(summary: dict) -> None:
    codes = "  ".join(f"{code}: {int(n)}" for code, n in sorted(summary["by_code"].items()))
    console.info(f"requests by code: {codes or 'none yet'}")
    if summary["in_flight"] is not None:
        console.info(f"in flight: {summary['in_flight']:.0f}")
    rows = []
    for ep, lat in sorted(summary["latency"].items(), key=lambda kv: (kv[0] == "(all)", kv[0])):
        rows.append([ep, f"{int(summary['by_endpoint'].get(ep, lat['count']))}", _ms(lat["p50"]), _ms(lat["p99"])])
    print("\n".join("  " + line for line in console.table(["ENDPOINT", "REQUESTS", "P50", "P99"], rows).splitlines()),
          flush=True)


# --- tasks --------------------------------------------------------------------------------------

def debug_metrics(lab) -> dict:
    ns = lab.cfg.APP_ENV
    health, metrics = service_url(ns, "/healthz"), service_url(ns, "/metrics")
    if lab.dry_run:
        ensure_probe_pod(lab, MONITORING)
        ensure_namespace(lab, OUTSIDER)
        ensure_probe_pod(lab, OUTSIDER)
        console.info(f"dry run: would curl {health} and {metrics} from {MONITORING}, "
                     f"then {health} from {OUTSIDER} (expecting a refusal)")
        return {}
    if not kube.get_json(lab, "namespace", MONITORING, missing_ok=True):
        raise LabError(f"namespace {MONITORING} does not exist", "Flux's infrastructure Kustomization creates it",
                       "run `doit setup` (then `doit flux_status`)")
    if not kube.get_json(lab, "service", names.APP, "-n", ns, missing_ok=True):
        raise LabError(f"no Service {names.APP} in {ns}", "Flux has not applied the app there",
                       "run `doit setup`, or `doit flux_resume` after cleanup_app")

    ensure_probe_pod(lab, MONITORING)
    res = curl(lab, MONITORING, health)
    if exec_failed(res):
        raise LabError(f"could not run curl in {MONITORING}/{PROBE_POD}", res.err.strip()[-200:],
                       "run `doit debug_cleanup` and try again")
    if not res.ok or res.out.strip() != "ok":
        why = REFUSED.get(res.rc, f"curl exit {res.rc}") + (f": {res.err.strip()[-160:]}" if res.err.strip() else "")
        raise LabError(f"{health} did not answer ok from namespace {MONITORING}", why,
                       f"NetworkPolicy allow-monitoring-scrape in {ns} must let {MONITORING} in; "
                       f"check the app with `doit verify`")
    console.ok(f"{MONITORING} → {health}: ok")
    res = curl(lab, MONITORING, metrics)
    if not res.ok:
        raise LabError(f"{metrics} failed from namespace {MONITORING}",
                       REFUSED.get(res.rc, f"curl exit {res.rc}") + f": {res.err.strip()[-160:]}",
                       "try again; check `kubectl logs deploy/app`")
    summary = summarize_metrics(res.out)
    console.ok(f"{MONITORING} → {metrics}: {len(res.out.splitlines())} lines, parsed")
    print_summary(summary)

    # Isolation: the same request from a namespace the NetworkPolicies do not allow.
    ensure_namespace(lab, OUTSIDER)
    ensure_probe_pod(lab, OUTSIDER)
    res = curl(lab, OUTSIDER, health)
    if exec_failed(res):
        raise LabError(f"could not run curl in {OUTSIDER}/{PROBE_POD}", res.err.strip()[-200:],
                       "run `doit debug_cleanup` and try again")
    if res.ok:
        culprits = open_ingress_policies(lab, ns)
        got = f"a pod in {OUTSIDER} got {res.out.strip()[:40]!r} from {health}"
        if culprits:
            listed = ", ".join(f"{ns}/{name}" for name in culprits)
            raise LabError(f"NetworkPolicy {listed} lets every namespace in (so {OUTSIDER} got in)", got,
                           f"remove it or narrow its ingress `from:`; the app's NetworkPolicies in {ns} must allow "
                           f"only {ns} and {MONITORING} (flux-cd/apps/base/networkpolicies.yaml)")
        raise LabError(f"NetworkPolicy lets namespace {OUTSIDER} in", got,
                       f"the app's NetworkPolicies in {ns} must allow only {ns} and {MONITORING} "
                       f"(flux-cd/apps/base/networkpolicies.yaml); is a NetworkPolicy-enforcing CNI running?")
    if res.rc not in REFUSED:
        raise LabError(f"the isolation check from {OUTSIDER} was inconclusive",
                       f"curl exit {res.rc}: {res.err.strip()[-160:]}",
                       "a refusal or a timeout was expected; see `doit debug_monitoring` to look around")
    console.ok(f"{OUTSIDER} → {health}: refused ({REFUSED[res.rc]}), as the NetworkPolicies require")
    console.info("`doit debug_cleanup` removes the debug pods and the outsider namespace")
    return {"requests_by_code": summary["by_code"]}


def debug_cleanup(lab) -> None:
    debugpods.remove(lab)


# --- interactive shells ---------------------------------------------------------------------------

def shell_overrides(name: str, restricted: bool) -> str:
    """A strategic-merge patch for `kubectl run`: resources always, restricted security when required."""
    container: dict = {"name": name,
                       "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                                     "limits": {"cpu": "500m", "memory": "256Mi"}}}
    spec: dict = {"containers": [container], "terminationGracePeriodSeconds": 1}
    if restricted:
        pod_sc, container_sc = restricted_security()
        spec["securityContext"] = pod_sc
        container["securityContext"] = container_sc
    return json.dumps({"spec": spec}, separators=(",", ":"))


def _shell(lab, ns: str) -> int:
    namespace = None if lab.dry_run else kube.get_json(lab, "namespace", ns, missing_ok=True)
    if not lab.dry_run and not namespace:
        raise LabError(f"namespace {ns} does not exist", "the lab creates dev, staging, production and monitoring",
                       "run `doit setup`, or pick APP_ENV=dev|staging|production")
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    restricted = labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    name = f"lab-debug-shell-{os.getpid()}"
    tty = ["-i", "-t"] if sys.stdin.isatty() else ["-i"]
    if restricted:
        console.info(f"{ns} enforces the restricted Pod Security Standard: the shell runs as a non-root user "
                     f"without capabilities (no tcpdump)")
    try:
        rc = lab.interactive("kubectl", *kube.kubectl_args(
            lab.cfg, "-n", ns, "run", name, f"--image={versions.DEBUG_IMAGE}", "--restart=Never",
            f"--labels={DEBUG_LABEL}=shell,app.kubernetes.io/part-of=gitops-lab",
            "--override-type=strategic", f"--overrides={shell_overrides(name, restricted)}",
            *tty, "--command", "--", "bash", "-l"))
    finally:
        lab.mutate("kubectl", *kube.kubectl_args(lab.cfg, "-n", ns, "delete", "pod", name, "--ignore-not-found",
                                               "--wait=false"), timeout=60, check=False)
    return rc


def debug_shell(namespace: str | None):
    """fn(lab): an interactive shell in a throwaway pod in `namespace` (None: APP_ENV), removed afterwards."""
    def run(lab) -> None:
        rc = _shell(lab, namespace or lab.cfg.APP_ENV)
        if rc:
            console.warn(f"the shell ended with exit code {rc}")
    run.__name__ = f"debug_shell_{namespace or 'app'}"
    return run
