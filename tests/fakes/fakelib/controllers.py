"""Simulated in-cluster controllers, run as a "tick" at the start of every
kubectl and flux call: namespaces, scheduler, kubelet (image pulls),
deployment/replicaset/statefulset/daemonset, endpoints, HPA, APIService
(metrics-server), and the Flux source/kustomize/helm controllers."""

import copy
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time

from . import cluster as K
from . import dockerworld as dw
from . import registry_store as rs
from .common import now_iso, parse_duration, real_kubectl, sha_hex

FLUX_NS = "flux-system"


# ---------------------------------------------------------------- helpers

def log(cl, controller, kind, name, ns, msg, level="info"):
    logs = cl.setdefault("flux_logs", [])
    logs.append({"ts": now_iso(), "level": level, "controller": controller, "kind": kind, "name": name,
                 "namespace": ns, "msg": msg})
    if len(logs) > 600:
        del logs[:len(logs) - 600]


def event(cl, obj, etype, reason, message, component):
    ns = obj["metadata"].get("namespace") or "default"
    uid = obj["metadata"].get("uid", "")
    for e in K.objs_of_kind(cl, "Event", ns):
        if e["involvedObject"].get("uid") == uid and e["reason"] == reason and e["message"] == message:
            e["count"] = e.get("count", 1) + 1
            e["lastTimestamp"] = now_iso()
            return
    name = "%s.%x" % (obj["metadata"]["name"], int(time.time() * 1e9) + len(cl["objects"]))
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
          "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj["kind"],
                             "name": obj["metadata"]["name"], "namespace": obj["metadata"].get("namespace"),
                             "uid": uid},
          "type": etype, "reason": reason, "message": message, "source": {"component": component},
          "count": 1, "firstTimestamp": now_iso(), "lastTimestamp": now_iso()}
    m = K.mapping_for_kind(cl, "v1", "Event")
    K.put_object(cl, m, ev, "event")
    evs = K.objs_of_kind(cl, "Event")
    if len(evs) > 400:
        evs.sort(key=lambda e: e["lastTimestamp"])
        for e in evs[:len(evs) - 400]:
            K.delete_object(cl, e)


def owner_ref(o, controller=True):
    return {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}


def owned_by(cl, kind, owner):
    uid = owner["metadata"]["uid"]
    return [o for o in cl["objects"].values() if o["kind"] == kind
            and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]


def int_or_percent(v, total, round_up):
    if isinstance(v, str) and v.endswith("%"):
        x = total * int(v[:-1]) / 100.0
        return int(math.ceil(x)) if round_up else int(math.floor(x))
    return int(v)


def node_container(st, node_name):
    return dw.find_container(st, node_name)


def cluster_name_of(cl):
    return cl["name"]


# ---------------------------------------------------------------- nodes & namespaces

def reconcile_nodes(st, cl):
    for n in K.objs_of_kind(cl, "Node"):
        c = node_container(st, n["metadata"]["name"])
        ready = dw.running(c)
        cond = K.get_condition(n, "Ready")
        want = "True" if ready else "Unknown"
        if cond is None or cond["status"] != want:
            K.set_condition(n, "Ready", want, "KubeletReady" if ready else "NodeStatusUnknown",
                            "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.")
            taints = [t for t in n["spec"].get("taints", []) if t["key"] != "node.kubernetes.io/unreachable"]
            if not ready:
                taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
            n["spec"]["taints"] = taints
            if not n["spec"]["taints"]:
                n["spec"].pop("taints")
            K.touch(cl, n)


def reconcile_namespaces(cl):
    m_cm = K.mapping_for_kind(cl, "v1", "ConfigMap")
    m_sa = K.mapping_for_kind(cl, "v1", "ServiceAccount")
    for ns in K.objs_of_kind(cl, "Namespace"):
        name = ns["metadata"]["name"]
        if K.find(cl, "ConfigMap", name, "kube-root-ca.crt") is None:
            K.put_object(cl, m_cm, K.new_obj("v1", "ConfigMap", "kube-root-ca.crt", name,
                                             data={"ca.crt": "-----BEGIN CERTIFICATE-----\nFAKE\n"
                                                             "-----END CERTIFICATE-----\n"}), "kube-controller-manager")
        if K.find(cl, "ServiceAccount", name, "default") is None:
            K.put_object(cl, m_sa, K.new_obj("v1", "ServiceAccount", "default", name), "kube-controller-manager")


# ---------------------------------------------------------------- scheduling

def tolerates(tols, taint):
    for t in tols or []:
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if t.get("key") != taint["key"]:
            continue
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator", "Equal") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_term_matches(labels, term):
    for e in term.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        v = labels.get(k)
        if op == "In" and v not in vals:
            return False
        if op == "NotIn" and v in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
        if op in ("Gt", "Lt"):
            try:
                if not ((int(v) > int(vals[0])) if op == "Gt" else (int(v) < int(vals[0]))):
                    return False
            except (TypeError, ValueError):
                return False
    return True


def node_matches_affinity(node, podspec):
    labels = node["metadata"].get("labels") or {}
    for k, v in (podspec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (((podspec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if req:
        terms = req.get("nodeSelectorTerms") or []
        if not any(node_term_matches(labels, t) for t in terms):
            return False
    return True


def anti_affinity_blocks(cl, node, pod_labels, podspec, ns, exclude_name=None):
    req = (((podspec.get("affinity") or {}).get("podAntiAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution")) or []
    for term in req:
        if term.get("topologyKey") != "kubernetes.io/hostname":
            continue
        for p in K.objs_of_kind(cl, "Pod"):
            if p["metadata"]["name"] == exclude_name or p["spec"].get("nodeName") != node["metadata"]["name"]:
                continue
            if term.get("namespaces") is None and p["metadata"]["namespace"] != ns:
                continue
            if K.match_label_selector(p["metadata"].get("labels"), term.get("labelSelector") or {}):
                return True
    return False


def schedule(cl, pod):
    """-> (node name, None) or (None, FailedScheduling message)."""
    spec = pod["spec"]
    nodes = K.objs_of_kind(cl, "Node")
    reasons = {}
    fits = []
    for n in nodes:
        why = None
        for t in (n["spec"].get("taints") or []):
            if t["effect"] in ("NoSchedule", "NoExecute") and not tolerates(spec.get("tolerations"), t):
                why = "node(s) had untolerated taint {%s: %s}" % (t["key"], t.get("value", ""))
                break
        if why is None and not node_matches_affinity(n, spec):
            why = "node(s) didn't match Pod's node affinity/selector"
        if why is None and anti_affinity_blocks(cl, n, pod["metadata"].get("labels"), spec,
                                                pod["metadata"]["namespace"], pod["metadata"]["name"]):
            why = "node(s) didn't match pod anti-affinity rules"
        if why:
            reasons[why] = reasons.get(why, 0) + 1
        else:
            fits.append(n)
    if not fits:
        parts = ", ".join("%d %s" % (c, r.replace("node(s)", "node(s)")) for r, c in sorted(reasons.items()))
        total = len(nodes)
        return None, ("0/%d nodes are available: %s. preemption: 0/%d nodes are available: %d Preemption is not "
                      "helpful for scheduling." % (total, parts, total, total))
    owner = (pod["metadata"].get("ownerReferences") or [{}])[0].get("uid")
    app = pod["metadata"].get("labels", {})

    def load(n):
        same = 0
        allp = 0
        for p in K.objs_of_kind(cl, "Pod"):
            if p["spec"].get("nodeName") == n["metadata"]["name"]:
                allp += 1
                refs = p["metadata"].get("ownerReferences") or [{}]
                if refs[0].get("uid") == owner or p["metadata"].get("labels") == app:
                    same += 1
        return (same, allp, n["metadata"]["name"])
    fits.sort(key=load)
    return fits[0]["metadata"]["name"], None


# ---------------------------------------------------------------- kubelet: image pulls

def parse_hosts_toml(text):
    m = re.search(r'\[host\."(https?)://([^"/]+)"\]', text or "")
    return (m.group(1), m.group(2)) if m else None


def registry_lookup(st, hostport, from_network="kind"):
    """Resolve NAME:PORT the way a node (on the kind network) would."""
    name, _, port = hostport.partition(":")
    c = dw.registry_on_network(st, name, from_network)
    if c is None or int(port or 80) != dw.REGISTRY_CONTAINER_PORT:
        return None
    return c


def _pull_from(st, ref, repo, tag, scheme, hp):
    """None if HP serves REF, else containerd's message for that host."""
    c = registry_lookup(st, hp)
    if c is None:
        if scheme == "https" and "." in hp.split(":")[0]:
            return None  # a public upstream: the fake world has internet
        return ('failed to pull and unpack image "%s": failed to resolve reference "%s": failed to do request: '
                'Head "%s://%s/v2/%s/manifests/%s": dial tcp: lookup %s: no such host'
                % (ref, ref, scheme, hp, repo, tag, hp.split(":")[0]))
    if scheme == "https":
        return ('failed to pull and unpack image "%s": failed to resolve reference "%s": failed to do request: '
                'Head "https://%s/v2/%s/manifests/%s": http: server gave HTTP response to HTTPS client'
                % (ref, ref, hp, repo, tag))
    if any(e.startswith("REGISTRY_PROXY_REMOTEURL=") for e in c.get("env", [])):
        return None  # a pull-through cache fetches what it lacks (the fake world has internet)
    if rs.resolve(dw.registry_root(st, c), repo, tag) is None:
        return 'failed to pull and unpack image "%s": failed to resolve reference "%s": %s: not found' % (
            ref, ref, ref)
    return None


def image_pull_error(st, cl, node_name, image):
    """None if the node can pull IMAGE, else a containerd-like message."""
    host, repo, tag = dw.split_ref(image)
    ref = image
    node = node_container(st, node_name)
    fs = (node or {}).get("fs", {"files": {}})
    if host is None:  # Docker Hub: containerd reads certs.d/docker.io
        hosts = fs["files"].get("/etc/containerd/certs.d/docker.io/hosts.toml")
        if hosts is None:
            return None  # public registries: the fake world has internet
        host, repo = "docker.io", repo if "/" in repo else "library/" + repo
    else:
        hosts = fs["files"].get("/etc/containerd/certs.d/%s/hosts.toml" % host)
    if hosts is not None:
        # containerd: each [host."..."] in order, then `server` (default: the upstream itself).
        entries = re.findall(r'\[host\."(https?)://([^"/]+)"\]', hosts)
        server = re.search(r'^\s*server\s*=\s*"(https?)://([^"/]+)"', hosts, re.M)
        if not entries and not server:
            return 'failed to pull and unpack image "%s": failed to resolve reference "%s": invalid hosts.toml' % (
                ref, ref)
        tries = list(entries) + ([server.groups()] if server and server.groups() not in entries else [])
        last = None
        for scheme, hp in tries:
            last = _pull_from(st, ref, repo, tag, scheme, hp)
            if last is None:
                return None
        return last
    if host.split(":")[0] in ("localhost", "127.0.0.1"):
        port = host.partition(":")[2] or "443"
        return ('failed to pull and unpack image "%s": failed to resolve reference "%s": failed to do request: '
                'Head "https://%s/v2/%s/manifests/%s": dial tcp [::1]:%s: connect: connection refused'
                % (ref, ref, host, repo, tag, port))
    c = registry_lookup(st, host)
    if c is not None:
        return ('failed to pull and unpack image "%s": failed to resolve reference "%s": failed to do request: '
                'Head "https://%s/v2/%s/manifests/%s": http: server gave HTTP response to HTTPS client'
                % (ref, ref, host, repo, tag))
    if "." not in host.split(":")[0]:
        return ('failed to pull and unpack image "%s": failed to resolve reference "%s": failed to do request: '
                'Head "https://%s/v2/%s/manifests/%s": dial tcp: lookup %s: no such host'
                % (ref, ref, host, repo, tag, host.split(":")[0]))
    return None


def image_snapshot(st, cl, node_name, image):
    """Directory holding the code of IMAGE as built by `docker build`, or None."""
    host, repo, tag = dw.split_ref(image)
    iid = None
    node = node_container(st, node_name)
    hosts = (node or {}).get("fs", {"files": {}})["files"].get("/etc/containerd/certs.d/%s/hosts.toml" % host) \
        if host else None
    target = parse_hosts_toml(hosts) if hosts else None
    c = registry_lookup(st, target[1]) if target else (registry_lookup(st, host) if host else None)
    if c is not None:
        iid = rs.image_id_of(dw.registry_root(st, c), repo, tag)
    if iid is None:
        img = dw.find_image(st, image)
        iid = img["id"] if img else None
    if iid:
        img = st.data["docker"]["images"].get(iid)
        if img and img.get("context") and os.path.isdir(img["context"]):
            return img["context"]
    return None


# ---------------------------------------------------------------- pods

def container_ready_override(pod):
    """Simulated readiness quirks: metrics-server on kind without
    --kubelet-insecure-tls never becomes ready (kubelet certs lack IP SANs)."""
    for c in pod["spec"].get("containers") or []:
        args = (c.get("args") or []) + (c.get("command") or [])
        if "metrics-server" in c.get("image", "") and not any(a.startswith("--kubelet-insecure-tls") for a in args):
            return c["name"]
    return None


def reconcile_pod(st, cl, pod):
    spec = pod["spec"]
    status = copy.deepcopy(pod.get("status") or {})
    if not spec.get("nodeName"):
        node, why = schedule(cl, pod)
        if node is None:
            status["phase"] = "Pending"
            status["qosClass"] = status.get("qosClass", "BestEffort")
            K.set_condition({"status": status}, "PodScheduled", "False", "Unschedulable", why)
            if pod.get("status") != status:
                event(cl, pod, "Warning", "FailedScheduling", why, "default-scheduler")
            K.set_status(cl, pod, status)
            return
        spec["nodeName"] = node
        K.touch(cl, pod)
        event(cl, pod, "Normal", "Scheduled", "Successfully assigned %s/%s to %s"
              % (pod["metadata"]["namespace"], pod["metadata"]["name"], node), "default-scheduler")
    nodeobj = K.find(cl, "Node", "", spec["nodeName"])
    node_ip = ""
    if nodeobj:
        node_ip = next((a["address"] for a in nodeobj["status"].get("addresses", []) if a["type"] == "InternalIP"), "")
    if not status.get("podIP"):
        cl["pod_ip_seq"] = cl.get("pod_ip_seq", 1) + 1
        idx = [n["metadata"]["name"] for n in K.objs_of_kind(cl, "Node")].index(spec["nodeName"]) \
            if nodeobj else 0
        ip = "10.244.%d.%d" % (idx, (cl["pod_ip_seq"] % 250) + 2)
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
        status["hostIP"] = node_ip
        status["hostIPs"] = [{"ip": node_ip}]
        status["startTime"] = now_iso()
    # init containers run first, in order: one whose image cannot be pulled holds the pod in
    # Init:ImagePullBackOff and none of its containers starts
    istats = []
    for c in spec.get("initContainers") or []:
        err = image_pull_error(st, cl, spec["nodeName"], c.get("image", ""))
        if err:
            istats.append({"name": c["name"], "image": c.get("image"), "imageID": "", "ready": False,
                           "started": False, "restartCount": 0, "state": {"waiting": {
                               "reason": "ImagePullBackOff",
                               "message": 'Back-off pulling image "%s": ErrImagePull: %s' % (c.get("image"), err)}}})
            prev = next((x for x in (status.get("initContainerStatuses") or []) if x["name"] == c["name"]), None)
            if not prev or "waiting" not in prev.get("state", {}):
                event(cl, pod, "Warning", "Failed", "Failed to pull image \"%s\": %s" % (c.get("image"), err),
                      "kubelet")
            status["initContainerStatuses"] = istats
            status["containerStatuses"] = [
                {"name": x["name"], "image": x.get("image"), "imageID": "", "ready": False, "started": False,
                 "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
                for x in spec.get("containers") or []]
            status["phase"] = "Pending"
            holder = {"status": status}
            msg = "containers with incomplete status: [%s]" % c["name"]
            K.set_condition(holder, "PodScheduled", "True", "", "")
            K.set_condition(holder, "Initialized", "False", "ContainersNotInitialized", msg)
            msg = "containers with unready status: [%s]" % " ".join(x["name"] for x in spec.get("containers") or [])
            K.set_condition(holder, "ContainersReady", "False", "ContainersNotReady", msg)
            K.set_condition(holder, "Ready", "False", "ContainersNotReady", msg)
            for cond in status["conditions"]:
                if cond.get("reason") == "":
                    cond.pop("reason")
                    cond.pop("message")
            K.set_status(cl, pod, status)
            return
        istats.append({"name": c["name"], "image": c.get("image"),
                       "imageID": "%s@sha256:%s" % (c.get("image", "").rsplit(":", 1)[0], sha_hex(c.get("image", ""))),
                       "ready": True, "started": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}})
    if istats:
        status["initContainerStatuses"] = istats
    else:
        status.pop("initContainerStatuses", None)
    cstats = []
    all_ready = True
    waiting = False
    unready_name = container_ready_override(pod)
    for c in spec.get("containers") or []:
        err = image_pull_error(st, cl, spec["nodeName"], c.get("image", ""))
        prev = next((x for x in (status.get("containerStatuses") or []) if x["name"] == c["name"]), None)
        if err:
            all_ready = False
            waiting = True
            cs = {"name": c["name"], "image": c.get("image"), "imageID": "", "ready": False, "started": False,
                  "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff",
                                                           "message": 'Back-off pulling image "%s": ErrImagePull: %s'
                                                                      % (c.get("image"), err)}}}
            if not prev or "waiting" not in prev.get("state", {}):
                event(cl, pod, "Warning", "Failed", "Failed to pull image \"%s\": %s" % (c.get("image"), err),
                      "kubelet")
        else:
            ready = c["name"] != unready_name
            all_ready = all_ready and ready
            started = (prev or {}).get("state", {}).get("running", {}).get("startedAt") or now_iso()
            cs = {"name": c["name"], "image": c.get("image"),
                  "imageID": "%s@sha256:%s" % (c.get("image", "").rsplit(":", 1)[0], sha_hex(c.get("image", ""))),
                  "containerID": "containerd://" + sha_hex(pod["metadata"].get("uid", "") + c["name"]),
                  "ready": ready, "started": True, "restartCount": 0, "state": {"running": {"startedAt": started}}}
            if not prev or "running" not in prev.get("state", {}):
                if c.get("image", "").endswith(":latest") or ":" not in c.get("image", "").rsplit("/", 1)[-1]:
                    cl.setdefault("notes", []).append("pulled mutable tag %s for %s/%s" % (
                        c.get("image"), pod["metadata"]["namespace"], pod["metadata"]["name"]))
                event(cl, pod, "Normal", "Started", "Started container %s" % c["name"], "kubelet")
        cstats.append(cs)
    status["containerStatuses"] = cstats
    status["phase"] = "Pending" if waiting else "Running"
    status["qosClass"] = "Burstable" if any((c.get("resources") or {}).get("requests")
                                            for c in spec.get("containers") or []) else "BestEffort"
    holder = {"status": status}
    K.set_condition(holder, "PodScheduled", "True", "", "")
    K.set_condition(holder, "Initialized", "True", "", "")
    K.set_condition(holder, "PodReadyToStartContainers", "True", "", "")
    names = [c["name"] for c, s in zip(spec.get("containers") or [], cstats) if not s["ready"]]
    if all_ready:
        K.set_condition(holder, "ContainersReady", "True", "", "")
        K.set_condition(holder, "Ready", "True", "", "")
    else:
        msg = "containers with unready status: [%s]" % " ".join(names)
        K.set_condition(holder, "ContainersReady", "False", "ContainersNotReady", msg)
        K.set_condition(holder, "Ready", "False", "ContainersNotReady", msg)
    for c in status["conditions"]:
        if c["reason"] == "":
            c.pop("reason")
            c.pop("message")
    K.set_status(cl, pod, status)


def pod_ready(p):
    c = K.get_condition(p, "Ready")
    return bool(c and c["status"] == "True")


def make_pod(cl, template, name, ns, owner, extra_labels=None):
    t = copy.deepcopy(template)
    md = t.get("metadata") or {}
    labels = dict(md.get("labels") or {})
    labels.update(extra_labels or {})
    spec = t.get("spec") or {}
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("tolerations", []).extend([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}])
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": labels,
                        "ownerReferences": [owner_ref(owner)] if owner else []},
           "spec": spec, "status": {"phase": "Pending"}}
    if md.get("annotations"):
        pod["metadata"]["annotations"] = dict(md["annotations"])
    if not pod["metadata"]["ownerReferences"]:
        del pod["metadata"]["ownerReferences"]
    m = K.mapping_for_kind(cl, "v1", "Pod")
    _, stored = K.put_object(cl, m, pod, "kube-controller-manager")
    return stored


# ---------------------------------------------------------------- workloads

def desired_replicas(cl, dep):
    return int(dep["spec"].get("replicas", 1) if dep["spec"].get("replicas") is not None else 1)


def reconcile_deployment(st, cl, dep):
    ns = dep["metadata"]["namespace"]
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    tmpl = spec.get("template") or {}
    h = K.safe_hash(json.dumps(tmpl, sort_keys=True), 10)
    want = desired_replicas(cl, dep)
    m_rs = K.mapping_for_kind(cl, "apps/v1", "ReplicaSet")
    rss = owned_by(cl, "ReplicaSet", dep)
    cur = next((r for r in rss if r["metadata"]["labels"].get("pod-template-hash") == h), None)
    rev = int((dep["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0"))
    if cur is None:
        rev += 1
        labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = h
        t2 = copy.deepcopy(tmpl)
        t2.setdefault("metadata", {})["labels"] = labels
        sel = copy.deepcopy(spec.get("selector") or {})
        sel.setdefault("matchLabels", {})["pod-template-hash"] = h
        rs_obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": "%s-%s" % (name, h), "namespace": ns, "labels": labels,
                               "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                               "ownerReferences": [owner_ref(dep)]},
                  "spec": {"replicas": want, "selector": sel, "template": t2}}
        _, cur = K.put_object(cl, m_rs, rs_obj, "kube-controller-manager")
        dep["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(rev)
        K.touch(cl, dep)
        event(cl, dep, "Normal", "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d"
              % (cur["metadata"]["name"], want), "deployment-controller")
    if cur["spec"].get("replicas") != want:
        cur["spec"]["replicas"] = want
        K.touch(cl, cur)
    # pods of the current RS
    pods = owned_by(cl, "Pod", cur)
    while len(pods) < want:
        pods.append(make_pod(cl, cur["spec"]["template"], "%s-%s-%s" % (name, h, K.rand_suffix()), ns, cur))
    if len(pods) > want:
        pods.sort(key=lambda p: (pod_ready(p), p["metadata"]["creationTimestamp"]))
        for p in pods[:len(pods) - want]:
            K.delete_object(cl, p)
        pods = pods[len(pods) - want:]
    for p in pods:
        reconcile_pod(st, cl, p)
    new_ready = sum(1 for p in pods if pod_ready(p))
    old_pods = []
    for r in rss:
        if r is cur:
            continue
        ops = owned_by(cl, "Pod", r)
        if new_ready >= want:
            for p in ops:
                K.delete_object(cl, p)
            if r["spec"].get("replicas"):
                r["spec"]["replicas"] = 0
                K.touch(cl, r)
        else:
            for p in ops:
                reconcile_pod(st, cl, p)
            old_pods.extend(ops)
    # keep revisionHistoryLimit
    olds = sorted([r for r in owned_by(cl, "ReplicaSet", dep) if r is not cur and not owned_by(cl, "Pod", r)],
                  key=lambda r: r["metadata"]["creationTimestamp"])
    limit = spec.get("revisionHistoryLimit", 10)
    for r in olds[:max(0, len(olds) - limit)]:
        K.delete_object(cl, r)
    allp = pods + old_pods
    ready = sum(1 for p in allp if pod_ready(p))
    for r in owned_by(cl, "ReplicaSet", dep):
        rp = owned_by(cl, "Pod", r)
        rr = sum(1 for p in rp if pod_ready(p))
        rstat = {"replicas": len(rp), "fullyLabeledReplicas": len(rp), "readyReplicas": rr, "availableReplicas": rr,
                 "observedGeneration": r["metadata"].get("generation", 1)}
        rstat = {k: v for k, v in rstat.items() if v or k in ("replicas", "observedGeneration")}
        K.set_status(cl, r, rstat)
    status = copy.deepcopy(dep.get("status") or {})
    status.update({"observedGeneration": dep["metadata"].get("generation", 1), "replicas": len(allp),
                   "updatedReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready})
    unavailable = max(0, want - ready) if len(allp) >= want else want - ready
    if unavailable:
        status["unavailableReplicas"] = unavailable
    else:
        status.pop("unavailableReplicas", None)
    for k in ("readyReplicas", "availableReplicas", "updatedReplicas"):
        if not status[k]:
            status.pop(k)
    strat = spec.get("strategy") or {}
    max_unavail = int_or_percent(((strat.get("rollingUpdate") or {}).get("maxUnavailable", "25%")), want, False) \
        if strat.get("type", "RollingUpdate") == "RollingUpdate" else 0
    holder = {"status": status}
    if ready >= want - max_unavail:
        K.set_condition(holder, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        K.set_condition(holder, "Available", "False", "MinimumReplicasUnavailable",
                        "Deployment does not have minimum availability.")
    if len(pods) == want and sum(1 for p in pods if pod_ready(p)) == want and not old_pods:
        K.set_condition(holder, "Progressing", "True", "NewReplicaSetAvailable",
                        'ReplicaSet "%s" has successfully progressed.' % cur["metadata"]["name"])
    else:
        K.set_condition(holder, "Progressing", "True", "ReplicaSetUpdated",
                        'ReplicaSet "%s" is progressing.' % cur["metadata"]["name"])
    K.set_status(cl, dep, status)


def reconcile_statefulset(st, cl, sts):
    ns = sts["metadata"]["namespace"]
    name = sts["metadata"]["name"]
    want = int(sts["spec"].get("replicas", 1))
    tmpl = sts["spec"].get("template") or {}
    h = K.safe_hash(json.dumps(tmpl, sort_keys=True), 10)
    pods = {p["metadata"]["name"]: p for p in owned_by(cl, "Pod", sts)}
    for i in range(want):
        pn = "%s-%d" % (name, i)
        p = pods.pop(pn, None)
        if p is not None and p["metadata"]["labels"].get("controller-revision-hash") != "%s-%s" % (name, h):
            K.delete_object(cl, p)
            p = None
        if p is None:
            p = make_pod(cl, tmpl, pn, ns, sts, {"controller-revision-hash": "%s-%s" % (name, h),
                                                 "statefulset.kubernetes.io/pod-name": pn,
                                                 "apps.kubernetes.io/pod-index": str(i)})
        reconcile_pod(st, cl, p)
    for p in pods.values():
        K.delete_object(cl, p)
    allp = owned_by(cl, "Pod", sts)
    ready = sum(1 for p in allp if pod_ready(p))
    K.set_status(cl, sts, {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(allp),
                           "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": len(allp),
                           "updatedReplicas": len(allp), "currentRevision": "%s-%s" % (name, h),
                           "updateRevision": "%s-%s" % (name, h)})


def reconcile_daemonset(st, cl, ds):
    ns = ds["metadata"]["namespace"]
    name = ds["metadata"]["name"]
    tmpl = ds["spec"].get("template") or {}
    pods = owned_by(cl, "Pod", ds)
    by_node = {p["spec"].get("nodeName"): p for p in pods}
    desired = 0
    for n in K.objs_of_kind(cl, "Node"):
        spec = tmpl.get("spec") or {}
        ok = node_matches_affinity(n, spec) and all(
            t["effect"] not in ("NoSchedule", "NoExecute") or tolerates(spec.get("tolerations"), t)
            or t["key"].startswith("node.kubernetes.io/") for t in n["spec"].get("taints") or [])
        nn = n["metadata"]["name"]
        if not ok:
            if nn in by_node:
                K.delete_object(cl, by_node[nn])
            continue
        desired += 1
        p = by_node.get(nn)
        if p is None:
            t2 = copy.deepcopy(tmpl)
            t2.setdefault("spec", {})["nodeName"] = nn
            p = make_pod(cl, t2, "%s-%s" % (name, K.rand_suffix()), ns, ds)
        reconcile_pod(st, cl, p)
    allp = owned_by(cl, "Pod", ds)
    ready = sum(1 for p in allp if pod_ready(p))
    K.set_status(cl, ds, {"observedGeneration": ds["metadata"].get("generation", 1),
                          "desiredNumberScheduled": desired, "currentNumberScheduled": len(allp),
                          "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": len(allp),
                          "numberMisscheduled": 0})


def reconcile_services(cl):
    m_ep = K.mapping_for_kind(cl, "v1", "Endpoints")
    for svc in K.objs_of_kind(cl, "Service"):
        spec = svc["spec"]
        if not spec.get("clusterIP"):
            if svc["metadata"]["name"] == "kubernetes" and svc["metadata"]["namespace"] == "default":
                spec["clusterIP"] = "10.96.0.1"
            elif svc["metadata"]["name"] == "kube-dns":
                spec["clusterIP"] = "10.96.0.10"
            else:
                cl["svc_ip_seq"] = cl.get("svc_ip_seq", 20) + 1
                spec["clusterIP"] = "10.96.%d.%d" % (cl["svc_ip_seq"] // 250, cl["svc_ip_seq"] % 250 + 1)
            spec["clusterIPs"] = [spec["clusterIP"]]
            K.touch(cl, svc)
        if svc["status"] if "status" in svc else None:
            pass
        if "status" not in svc:
            svc["status"] = {"loadBalancer": {}}
        sel = spec.get("selector")
        if not sel:
            continue
        ns = svc["metadata"]["namespace"]
        ready, notready = [], []
        for p in K.objs_of_kind(cl, "Pod", ns):
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items()) and \
                    p.get("status", {}).get("podIP"):
                addr = {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                        "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
                                      "uid": p["metadata"]["uid"]}}
                (ready if pod_ready(p) else notready).append(addr)
        ports = []
        for sp in spec.get("ports") or []:
            e = {"port": resolve_target_port(cl, ns, sel, sp.get("targetPort", sp.get("port"))),
                 "protocol": sp.get("protocol", "TCP")}
            if sp.get("name"):
                e["name"] = sp["name"]
            ports.append(e)
        subset = {}
        if ready:
            subset["addresses"] = ready
        if notready:
            subset["notReadyAddresses"] = notready
        ep = {"apiVersion": "v1", "kind": "Endpoints",
              "metadata": {"name": svc["metadata"]["name"], "namespace": ns,
                           "labels": dict(svc["metadata"].get("labels") or {})}}
        if subset:
            subset["ports"] = ports
            ep["subsets"] = [subset]
        K.put_object(cl, m_ep, ep, "endpoint-controller")


def resolve_target_port(cl, ns, sel, tp):
    if isinstance(tp, int) or (isinstance(tp, str) and tp.isdigit()):
        return int(tp)
    for p in K.objs_of_kind(cl, "Pod", ns):
        if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in (sel or {}).items()):
            for c in p["spec"].get("containers") or []:
                for cp in c.get("ports") or []:
                    if cp.get("name") == tp:
                        return int(cp["containerPort"])
    return 0


def metrics_available(cl):
    a = K.find(cl, "APIService", "", "v1beta1.metrics.k8s.io")
    c = K.get_condition(a, "Available") if a else None
    return bool(c and c["status"] == "True")


def load_of(st, cl, ns):
    return (st.data.get("load", {}).get(cl["name"], {}) or {}).get(ns)


HPA_SCALE_UP_WINDOW = 0      # seconds: the controller's default scale-up stabilization
HPA_SCALE_DOWN_WINDOW = 300  # seconds: the default scale-down stabilization


def stabilize(h, current, recommended, now=None):
    """The HPA controller's stabilization (stabilizeRecommendationWithBehaviors), in wall-clock time.

    Every raw recommendation is kept with its time. The replicas may rise to no more than the
    lowest recommendation of the scale-up window (0 s: the latest), and fall to no less than the
    highest of the scale-down window (300 s): so a load seen even once keeps the replicas up for
    the whole scale-down window, and a manual scale-down against a still-loaded HPA is undone.
    """
    now = time.time() if now is None else now
    behavior = (h.get("spec") or {}).get("behavior") or {}
    up = (behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds", HPA_SCALE_UP_WINDOW)
    down = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds", HPA_SCALE_DOWN_WINDOW)
    fake = h.setdefault("_fake", {})
    recs = [r for r in fake.get("recommendations", []) if now - r[0] <= max(up, down, 0)]
    up_limit = min([r for t, r in recs if t > now - up] + [recommended])
    down_limit = max([r for t, r in recs if t > now - down] + [recommended])
    fake["recommendations"] = recs + [[now, recommended]]
    stabilized = current
    if stabilized < up_limit:
        stabilized = up_limit
    if stabilized > down_limit:
        stabilized = down_limit
    return stabilized


def reconcile_hpas(st, cl):
    for h in K.objs_of_kind(cl, "HorizontalPodAutoscaler"):
        spec = h["spec"]
        ns = h["metadata"]["namespace"]
        ref = spec.get("scaleTargetRef") or {}
        mn = int(spec.get("minReplicas", 1))
        mx = int(spec.get("maxReplicas", mn))
        target = K.find(cl, ref.get("kind", "Deployment"), ns, ref.get("name", ""))
        status = copy.deepcopy(h.get("status") or {})
        holder = {"status": status}
        if target is None:
            K.set_condition(holder, "AbleToScale", "False", "FailedGetScale",
                            'the HPA controller was unable to get the target\'s current scale: deployments/scale.apps '
                            '"%s" not found' % ref.get("name"))
            status.update({"currentReplicas": 0, "desiredReplicas": 0})
            K.set_status(cl, h, status)
            continue
        cur = int(target["spec"].get("replicas", 1))
        cpu_target = None
        for mt in spec.get("metrics") or []:
            if mt.get("type") == "Resource" and (mt.get("resource") or {}).get("name") == "cpu":
                cpu_target = ((mt["resource"].get("target") or {}).get("averageUtilization"))
        if spec.get("targetCPUUtilizationPercentage"):
            cpu_target = spec["targetCPUUtilizationPercentage"]
        load = load_of(st, cl, ns)
        have_metrics = metrics_available(cl) and cpu_target
        if have_metrics and load is not None:
            desired = int(math.ceil(cur * float(load) / float(cpu_target))) if cur else mn
            desired = stabilize(h, cur, desired)
        else:
            desired = cur
        desired2 = max(mn, min(mx, desired))
        K.set_condition(holder, "AbleToScale", "True", "ReadyForNewScale",
                        "recommended size matches current size" if desired2 == cur else
                        "the HPA controller was able to update the target scale to %d" % desired2)
        if have_metrics:
            K.set_condition(holder, "ScalingActive", "True", "ValidMetricFound",
                            "the HPA was able to successfully calculate a replica count from cpu resource "
                            "utilization (percentage of request)")
            util = int(load) if load is not None else 1
            status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": util, "averageValue": "%dm" % util}}}]
        else:
            K.set_condition(holder, "ScalingActive", "False", "FailedGetResourceMetric",
                            "the HPA was unable to compute the replica count: failed to get cpu utilization: unable "
                            "to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the "
                            "server could not find the requested resource (get pods.metrics.k8s.io)")
            status.pop("currentMetrics", None)
        if desired != desired2:
            K.set_condition(holder, "ScalingLimited", "True", "TooManyReplicas" if desired > mx else "TooFewReplicas",
                            "the desired replica count is %s than the maximum replica count"
                            % ("more" if desired > mx else "less"))
        else:
            K.set_condition(holder, "ScalingLimited", "False", "DesiredWithinRange",
                            "the desired count is within the acceptable range")
        if desired2 != cur:
            target["spec"]["replicas"] = desired2
            target["metadata"]["generation"] = target["metadata"].get("generation", 1) + 1
            K.touch(cl, target)
            status["lastScaleTime"] = now_iso()
            event(cl, h, "Normal", "SuccessfulRescale", "New size: %d; reason: %s" % (
                desired2, "cpu resource utilization (percentage of request) above target" if desired2 > cur
                else "All metrics below target"), "horizontal-pod-autoscaler")
        status["currentReplicas"] = cur
        status["desiredReplicas"] = desired2
        K.set_status(cl, h, status)


def reconcile_apiservices(cl):
    for a in K.objs_of_kind(cl, "APIService"):
        svc_ref = (a.get("spec") or {}).get("service")
        status = copy.deepcopy(a.get("status") or {})
        holder = {"status": status}
        if not svc_ref:
            K.set_condition(holder, "Available", "True", "Local", "Local APIServices are always available")
        else:
            ns, name = svc_ref.get("namespace"), svc_ref.get("name")
            svc = K.find(cl, "Service", ns, name)
            ep = K.find(cl, "Endpoints", ns, name)
            if svc is None:
                K.set_condition(holder, "Available", "False", "ServiceNotFound",
                                'service/%s in "%s" is not present' % (name, ns))
            elif not ep or not any(s.get("addresses") for s in ep.get("subsets") or []):
                ip = svc["spec"].get("clusterIP", "")
                path = "/apis/%s/%s" % (a["spec"].get("group"), a["spec"].get("version"))
                K.set_condition(holder, "Available", "False", "FailedDiscoveryCheck",
                                'failing or missing response from https://%s:443%s: Get "https://%s:443%s": dial tcp '
                                '%s:443: connect: connection refused' % (ip, path, ip, path, ip))
            else:
                K.set_condition(holder, "Available", "True", "Passed", "all checks passed")
        K.set_status(cl, a, status)


def reconcile_crds(cl):
    for c in K.objs_of_kind(cl, "CustomResourceDefinition"):
        if K.get_condition(c, "Established") is None:
            st = copy.deepcopy(c.get("status") or {})
            h = {"status": st}
            K.set_condition(h, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
            K.set_condition(h, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
            st["acceptedNames"] = c["spec"].get("names", {})
            st["storedVersions"] = [v["name"] for v in c["spec"].get("versions", []) if v.get("storage")]
            K.set_status(cl, c, st)


def workloads(st, cl, now=None):
    reconcile_nodes(st, cl)
    reconcile_namespaces(cl)
    reconcile_crds(cl)
    K.gc(cl)
    # pods without owner (kubectl run)
    for p in K.objs_of_kind(cl, "Pod"):
        if not p["metadata"].get("ownerReferences"):
            reconcile_pod(st, cl, p)
    reconcile_hpas(st, cl)
    for d in K.objs_of_kind(cl, "Deployment"):
        reconcile_deployment(st, cl, d)
    for s in K.objs_of_kind(cl, "StatefulSet"):
        reconcile_statefulset(st, cl, s)
    for d in K.objs_of_kind(cl, "DaemonSet"):
        reconcile_daemonset(st, cl, d)
    reconcile_services(cl)
    reconcile_apiservices(cl)
    from . import flux_controllers as FC
    FC.reconcile_sources(st, cl)
    FC.reconcile_helmreleases(st, cl)


def tick(st, cname, forced=()):
    """Reconcile everything in cluster CNAME. forced: iterable of
    (kind, ns, name) Flux objects to reconcile now regardless of interval."""
    cl = st.data["clusters"][cname]
    cl["name"] = cname
    from . import flux_controllers as FC
    FC.FORCED = set(tuple(x) for x in forced)
    for _ in range(3):
        before = cl.get("rv")
        workloads(st, cl)
        FC.reconcile_kustomizations(st, cl)
        workloads(st, cl)
        if cl.get("rv") == before:
            break
    FC.FORCED = set()
    for o in cl["objects"].values():  # FakeWorld.busy_kustomization counts CLI calls that tick, not passes
        if o.get("_fake", {}).get("busy"):
            o["_fake"]["busy"] -= 1
