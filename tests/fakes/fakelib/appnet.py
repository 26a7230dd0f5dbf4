"""Pod networking: NetworkPolicy evaluation, service resolution, and the
real processes that stand in for pods (the repo's app, or the built-in
responder)."""

import base64
import ipaddress
import os
import sys

from . import cluster as K
from .common import FAKELIB_DIR, free_port, kill_pid, pid_alive, register_bg, sha_hex, spawn, wait_port


# ---------------------------------------------------------------- NetworkPolicy

def ns_labels(cl, ns):
    o = K.find(cl, "Namespace", "", ns)
    labels = dict((o or {}).get("metadata", {}).get("labels") or {})
    labels.setdefault("kubernetes.io/metadata.name", ns)
    return labels


def policies_selecting(cl, pod, direction):
    ns = pod["metadata"]["namespace"]
    out = []
    for p in K.objs_of_kind(cl, "NetworkPolicy", ns):
        spec = p.get("spec") or {}
        types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
        if direction not in types:
            continue
        if K.match_label_selector(pod["metadata"].get("labels"), spec.get("podSelector") or {}):
            out.append(p)
    return out


def peer_matches(cl, peer, pol_ns, other):
    if "ipBlock" in peer:
        ip = (other.get("status") or {}).get("podIP")
        if not ip:
            return False
        net = ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False)
        if ipaddress.ip_address(ip) not in net:
            return False
        return not any(ipaddress.ip_address(ip) in ipaddress.ip_network(e, strict=False)
                       for e in peer["ipBlock"].get("except") or [])
    ons = other["metadata"]["namespace"]
    if "namespaceSelector" in peer:
        if not K.match_label_selector(ns_labels(cl, ons), peer["namespaceSelector"] or {}):
            return False
    elif ons != pol_ns:
        return False
    if "podSelector" in peer:
        if not K.match_label_selector(other["metadata"].get("labels"), peer["podSelector"] or {}):
            return False
    return True


def named_port(pod, name):
    for c in pod["spec"].get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") == name:
                return int(cp["containerPort"])
    return None


def port_matches(ports, port, proto, dst_pod):
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != proto:
            continue
        if "port" not in p:
            return True
        pp = p["port"]
        if isinstance(pp, str) and not pp.isdigit():
            pp = named_port(dst_pod, pp)
            if pp is None:
                continue
        pp = int(pp)
        end = int(p.get("endPort", pp))
        if pp <= port <= end:
            return True
    return False


def egress_allowed(cl, src, dst, port, proto="TCP"):
    pols = policies_selecting(cl, src, "Egress")
    if not pols:
        return True
    for p in pols:
        for rule in (p["spec"].get("egress") or []):
            peers = rule.get("to") or []
            if (not peers or any(peer_matches(cl, pr, p["metadata"]["namespace"], dst) for pr in peers)) and \
                    port_matches(rule.get("ports"), port, proto, dst):
                return True
    return False


def ingress_allowed(cl, src, dst, port, proto="TCP"):
    pols = policies_selecting(cl, dst, "Ingress")
    if not pols:
        return True
    for p in pols:
        for rule in (p["spec"].get("ingress") or []):
            peers = rule.get("from") or []
            if (not peers or any(peer_matches(cl, pr, p["metadata"]["namespace"], src) for pr in peers)) and \
                    port_matches(rule.get("ports"), port, proto, dst):
                return True
    return False


def connection_allowed(cl, src, dst, port, proto="TCP"):
    return egress_allowed(cl, src, dst, port, proto) and ingress_allowed(cl, src, dst, port, proto)


def dns_allowed(cl, src):
    """Can SRC reach a CoreDNS pod on 53/UDP (or TCP)?"""
    dns_pods = [p for p in K.objs_of_kind(cl, "Pod", "kube-system")
                if (p["metadata"].get("labels") or {}).get("k8s-app") == "kube-dns"]
    for d in dns_pods:
        for proto in ("UDP", "TCP"):
            if connection_allowed(cl, src, d, 53, proto):
                return True
    return False


# ---------------------------------------------------------------- service resolution

def resolve_host(cl, host, src_ns):
    """-> ('service', svc) | ('pod', pod) | (None, None)."""
    try:
        ipaddress.ip_address(host)
        for p in K.objs_of_kind(cl, "Pod"):
            if (p.get("status") or {}).get("podIP") == host:
                return "pod", p
        for s in K.objs_of_kind(cl, "Service"):
            if s["spec"].get("clusterIP") == host:
                return "service", s
        return None, None
    except ValueError:
        pass
    parts = host.rstrip(".").split(".")
    if len(parts) == 1:
        name, ns = parts[0], src_ns
    elif len(parts) == 2 or (len(parts) >= 3 and parts[2] == "svc" and
                             (len(parts) == 3 or parts[3:] == ["cluster", "local"])):
        name, ns = parts[0], parts[1]
    else:
        return None, None
    s = K.find(cl, "Service", ns, name)
    return ("service", s) if s else (None, None)


def service_backend(cl, svc, port):
    """-> (pod, targetPort) | ('noport', None) | ('noendpoints', None)."""
    sp = next((p for p in svc["spec"].get("ports") or [] if int(p.get("port")) == int(port)), None)
    if sp is None:
        return "noport", None
    ns = svc["metadata"]["namespace"]
    sel = svc["spec"].get("selector") or {}
    pods = [p for p in K.objs_of_kind(cl, "Pod", ns)
            if sel and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
    from .controllers import pod_ready
    ready = [p for p in pods if pod_ready(p)]
    if not ready:
        return "noendpoints", None
    tp = sp.get("targetPort", sp["port"])
    pod = sorted(ready, key=lambda p: p["metadata"]["name"])[0]
    if isinstance(tp, str) and not tp.isdigit():
        tp = named_port(pod, tp)
    return pod, int(tp) if tp is not None else None


# ---------------------------------------------------------------- pod processes

def app_image_name():
    return os.environ.get("FAKE_APP_IMAGE_NAME", "lab-app")


def workload_of(cl, pod):
    refs = pod["metadata"].get("ownerReferences") or []
    if not refs:
        return "pod", pod["metadata"]["name"]
    r = refs[0]
    if r["kind"] == "ReplicaSet":
        rs_obj = K.find(cl, "ReplicaSet", pod["metadata"]["namespace"], r["name"])
        rr = (rs_obj or {}).get("metadata", {}).get("ownerReferences") or []
        if rr:
            return rr[0]["kind"].lower(), rr[0]["name"]
    return r["kind"].lower(), r["name"]


def container_env(cl, pod, container):
    ns = pod["metadata"]["namespace"]
    env = {}

    def cm_data(kind, name):
        o = K.find(cl, kind, ns, name)
        if o is None:
            return None
        d = dict(o.get("data") or {})
        if kind == "Secret":
            d = {k: base64.b64decode(v).decode(errors="replace") for k, v in d.items()}
        return d
    for ef in container.get("envFrom") or []:
        pre = ef.get("prefix", "")
        if "configMapRef" in ef:
            d = cm_data("ConfigMap", ef["configMapRef"]["name"]) or {}
        elif "secretRef" in ef:
            d = cm_data("Secret", ef["secretRef"]["name"]) or {}
        else:
            d = {}
        for k, v in d.items():
            env[pre + k] = v
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "configMapKeyRef" in vf:
                d = cm_data("ConfigMap", vf["configMapKeyRef"]["name"]) or {}
                if vf["configMapKeyRef"]["key"] in d:
                    env[e["name"]] = d[vf["configMapKeyRef"]["key"]]
            elif "secretKeyRef" in vf:
                d = cm_data("Secret", vf["secretKeyRef"]["name"]) or {}
                if vf["secretKeyRef"]["key"] in d:
                    env[e["name"]] = d[vf["secretKeyRef"]["key"]]
            elif "fieldRef" in vf:
                fp = vf["fieldRef"].get("fieldPath")
                env[e["name"]] = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns,
                                  "status.podIP": (pod.get("status") or {}).get("podIP", ""),
                                  "spec.nodeName": pod["spec"].get("nodeName", "")}.get(fp, "")
    return env


def process_spec(st, cl, pod, port):
    """-> (argv, env, cwd, description)."""
    from .controllers import image_snapshot
    c = (pod["spec"].get("containers") or [{}])[0]
    image = c.get("image", "")
    _, wl = workload_of(cl, pod)
    ns = pod["metadata"]["namespace"]
    repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image.split("@")[0]
    src = None
    if repo.rsplit("/", 1)[-1] == app_image_name():
        src = image_snapshot(st, cl, pod["spec"].get("nodeName"), image)
        if not src:
            root = os.environ.get("FAKE_REPO_ROOT")
            if root and os.path.isfile(os.path.join(root, "app", "server.py")):
                src = os.path.join(root, "app")
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("FAKE_"):
            del env[k]
    if src and os.path.isfile(os.path.join(src, "server.py")):
        env.update(container_env(cl, pod, c))
        env["PORT"] = str(port)
        # The process stands in for a pod the fake already reports Ready, i.e. one whose
        # readiness delay is long past: it must answer /readyz 200 from the start.
        if any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or []):
            env["READINESS_DELAY_SEC"] = "0"
        # The fake ends a stand-in (port-forward gone, app replaced, test over) by discarding it:
        # no pod is being terminated, so nothing is drained (the default drain is 5 s per process).
        env["SHUTDOWN_DRAIN_SEC"] = "0"
        env.setdefault("HOSTNAME", pod["metadata"]["name"])
        env["PYTHONUNBUFFERED"] = "1"
        return ([os.environ.get("FAKE_APP_PYTHON", sys.executable), "server.py"], env, src,
                "app %s/%s from %s" % (ns, wl, src))
    if repo.endswith("/prometheus/prometheus") and st is not None:
        # a Prometheus pod: its HTTP API, computed from this cluster at each request
        env["PYTHONPATH"] = os.path.dirname(FAKELIB_DIR)
        return ([sys.executable, "-m", "fakelib.prometheus_api", str(port), st.dir, cl["name"], ns,
                 pod["metadata"]["name"]], env, None, "fake Prometheus API for %s/%s" % (ns, wl))
    # app/ not available (or a third-party image): built-in responder
    return ([sys.executable, os.path.join(FAKELIB_DIR, "builtin_app.py"), str(port), ns, wl], env, None,
            "builtin responder for %s/%s" % (ns, wl))


def ensure_app(st, cl, pod):
    """Background process serving POD's workload; -> (port, proc_desc) or raises RuntimeError."""
    kind, wl = workload_of(cl, pod)
    key = "%s/%s/%s/%s" % (cl["name"], pod["metadata"]["namespace"], kind, wl)
    probe_argv, probe_env, probe_cwd, _ = process_spec(st, cl, pod, 0)
    h = sha_hex(repr((probe_argv[1:2], sorted((k, v) for k, v in probe_env.items() if k != "PORT"), probe_cwd,
                      pod["spec"].get("containers"))))
    apps = st.data["apps"]
    cur = apps.get(key)
    if cur and cur["hash"] == h and pid_alive(cur["pid"]):
        return cur["port"], cur["desc"]
    if cur:
        kill_pid(cur["pid"])
        st.data["background"].pop(str(cur["pid"]), None)
    port = free_port()
    argv, env, cwd, desc = process_spec(st, cl, pod, port)
    logf = os.path.join(st.dir, "logs", "app-%s.log" % key.replace("/", "_"))
    os.makedirs(os.path.dirname(logf), exist_ok=True)
    p = spawn(argv, env=env, cwd=cwd, logfile=logf)
    register_bg(st, p.pid, "app", desc)
    apps[key] = {"pid": p.pid, "port": port, "hash": h, "desc": desc, "log": logf}
    st.save()
    if not wait_port(port, 15.0, p):
        raise RuntimeError("%s did not start listening (see %s)" % (desc, logf))
    return port, desc


def stop_apps(st, prefix=""):
    for key, a in list(st.data["apps"].items()):
        if key.startswith(prefix):
            kill_pid(a["pid"])
            st.data["background"].pop(str(a["pid"]), None)
            del st.data["apps"][key]
