"""kubectl table printers (default and -o wide)."""

from . import cluster as K
from . import jsonpath
from .common import age


def tabwrite(rows):
    """Go tabwriter(minwidth=10, padding=3) as kubectl uses it."""
    if not rows:
        return ""
    n = max(len(r) for r in rows)
    widths = [0] * n
    for r in rows:
        for i, v in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(str(v)))
    lines = []
    for r in rows:
        parts = []
        for i, v in enumerate(r):
            v = str(v)
            if i < len(r) - 1:
                parts.append(v.ljust(max(widths[i] + 3, 10)))
            else:
                parts.append(v)
        lines.append("".join(parts).rstrip())
    return "\n".join(lines) + "\n"


def _cond(o, t):
    c = K.get_condition(o, t)
    return c


def _pod_row(o):
    st = o.get("status") or {}
    cs = st.get("containerStatuses") or []
    total = len(o["spec"].get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    status = st.get("phase", "Pending")
    for c in cs:
        w = (c.get("state") or {}).get("waiting")
        if w:
            status = w.get("reason", status)
    if o["metadata"].get("deletionTimestamp"):
        status = "Terminating"
    restarts = sum(c.get("restartCount", 0) for c in cs)
    return ["%d/%d" % (ready, total), status, str(restarts), age(o["metadata"].get("creationTimestamp"))]


def _pod_wide(o):
    st = o.get("status") or {}
    return [st.get("podIP") or "<none>", o["spec"].get("nodeName") or "<none>", "<none>", "<none>"]


def _svc_ports(o):
    out = []
    for p in o["spec"].get("ports") or []:
        s = "%s/%s" % (p["port"], p.get("protocol", "TCP"))
        if p.get("nodePort"):
            s = "%s:%s/%s" % (p["port"], p["nodePort"], p.get("protocol", "TCP"))
        out.append(s)
    return ",".join(out) or "<none>"


def _selector(sel):
    if not sel:
        return "<none>"
    ml = sel.get("matchLabels", sel) if isinstance(sel, dict) else {}
    return ",".join("%s=%s" % kv for kv in sorted(ml.items()) if isinstance(kv[1], str)) or "<none>"


def _node_roles(o):
    roles = [k.split("/", 1)[1] for k in (o["metadata"].get("labels") or {})
             if k.startswith("node-role.kubernetes.io/")]
    return ",".join(sorted(roles)) or "<none>"


def _node_status(o):
    c = _cond(o, "Ready")
    s = "Ready" if c and c["status"] == "True" else "NotReady"
    if o["spec"].get("unschedulable"):
        s += ",SchedulingDisabled"
    return s


def _hpa_targets(o):
    out = []
    cur = {m["resource"]["name"]: m["resource"]["current"] for m in (o.get("status") or {}).get("currentMetrics") or []
           if m.get("type") == "Resource"}
    for m in o["spec"].get("metrics") or []:
        if m.get("type") == "Resource":
            name = m["resource"]["name"]
            tgt = m["resource"].get("target") or {}
            c = cur.get(name, {})
            cv = ("%s%%" % c["averageUtilization"]) if "averageUtilization" in c else "<unknown>"
            out.append("%s: %s/%s%%" % (name, cv, tgt.get("averageUtilization", "?")))
    return ", ".join(out) or "<none>"


def _ready_cond(o, t="Ready"):
    c = _cond(o, t)
    return c["status"] if c else "Unknown"


PRINTERS = {
    "Pod": (["READY", "STATUS", "RESTARTS", "AGE"], _pod_row, ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
            _pod_wide),
    "Deployment": (["READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                   lambda o: ["%d/%d" % ((o.get("status") or {}).get("readyReplicas", 0), o["spec"].get("replicas", 1)),
                              str((o.get("status") or {}).get("updatedReplicas", 0)),
                              str((o.get("status") or {}).get("availableReplicas", 0)),
                              age(o["metadata"].get("creationTimestamp"))],
                   ["CONTAINERS", "IMAGES", "SELECTOR"],
                   lambda o: [",".join(c["name"] for c in o["spec"]["template"]["spec"].get("containers") or []),
                              ",".join(c.get("image", "") for c in o["spec"]["template"]["spec"].get("containers")
                                       or []), _selector(o["spec"].get("selector"))]),
    "ReplicaSet": (["DESIRED", "CURRENT", "READY", "AGE"],
                   lambda o: [str(o["spec"].get("replicas", 0)), str((o.get("status") or {}).get("replicas", 0)),
                              str((o.get("status") or {}).get("readyReplicas", 0)),
                              age(o["metadata"].get("creationTimestamp"))], [], None),
    "StatefulSet": (["READY", "AGE"],
                    lambda o: ["%d/%d" % ((o.get("status") or {}).get("readyReplicas", 0),
                                          o["spec"].get("replicas", 1)), age(o["metadata"].get("creationTimestamp"))],
                    [], None),
    "DaemonSet": (["DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
                  lambda o: [str((o.get("status") or {}).get(k, 0)) for k in
                             ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                              "updatedNumberScheduled", "numberAvailable")] +
                  [",".join("%s=%s" % kv for kv in ((o["spec"]["template"]["spec"].get("nodeSelector") or {})
                                                    .items())) or "<none>",
                   age(o["metadata"].get("creationTimestamp"))], [], None),
    "Service": (["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
                lambda o: [o["spec"].get("type", "ClusterIP"), o["spec"].get("clusterIP") or "<none>", "<none>",
                           _svc_ports(o), age(o["metadata"].get("creationTimestamp"))],
                ["SELECTOR"], lambda o: [_selector(o["spec"].get("selector"))]),
    "Endpoints": (["ENDPOINTS", "AGE"],
                  lambda o: [",".join("%s:%s" % (a["ip"], p["port"]) for s in o.get("subsets") or []
                                      for a in s.get("addresses") or [] for p in s.get("ports") or []) or "<none>",
                             age(o["metadata"].get("creationTimestamp"))], [], None),
    "Node": (["STATUS", "ROLES", "AGE", "VERSION"],
             lambda o: [_node_status(o), _node_roles(o), age(o["metadata"].get("creationTimestamp")),
                        o["status"]["nodeInfo"]["kubeletVersion"]],
             ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
             lambda o: [o["status"]["addresses"][0]["address"], "<none>", o["status"]["nodeInfo"]["osImage"],
                        o["status"]["nodeInfo"]["kernelVersion"], o["status"]["nodeInfo"]["containerRuntimeVersion"]]),
    "Namespace": (["STATUS", "AGE"], lambda o: [(o.get("status") or {}).get("phase", "Active"),
                                                age(o["metadata"].get("creationTimestamp"))], [], None),
    "ConfigMap": (["DATA", "AGE"], lambda o: [str(len(o.get("data") or {}) + len(o.get("binaryData") or {})),
                                              age(o["metadata"].get("creationTimestamp"))], [], None),
    "Secret": (["TYPE", "DATA", "AGE"], lambda o: [o.get("type", "Opaque"), str(len(o.get("data") or {})),
                                                   age(o["metadata"].get("creationTimestamp"))], [], None),
    "ServiceAccount": (["SECRETS", "AGE"], lambda o: [str(len(o.get("secrets") or [])),
                                                      age(o["metadata"].get("creationTimestamp"))], [], None),
    "HorizontalPodAutoscaler": (["REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
                                lambda o: ["%s/%s" % (o["spec"]["scaleTargetRef"].get("kind"),
                                                      o["spec"]["scaleTargetRef"].get("name")), _hpa_targets(o),
                                           str(o["spec"].get("minReplicas", 1)), str(o["spec"].get("maxReplicas")),
                                           str((o.get("status") or {}).get("currentReplicas", 0)),
                                           age(o["metadata"].get("creationTimestamp"))], [], None),
    "PodDisruptionBudget": (["MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"],
                            lambda o: [str(o["spec"].get("minAvailable", "N/A")),
                                       str(o["spec"].get("maxUnavailable", "N/A")),
                                       str((o.get("status") or {}).get("disruptionsAllowed", 0)),
                                       age(o["metadata"].get("creationTimestamp"))], [], None),
    "NetworkPolicy": (["POD-SELECTOR", "AGE"],
                      lambda o: [_selector((o.get("spec") or {}).get("podSelector")),
                                 age(o["metadata"].get("creationTimestamp"))], [], None),
    "APIService": (["SERVICE", "AVAILABLE", "AGE"],
                   lambda o: [("%s/%s" % (o["spec"]["service"]["namespace"], o["spec"]["service"]["name"]))
                              if (o.get("spec") or {}).get("service") else "Local",
                              (lambda c: "True" if c and c["status"] == "True" else
                               ("False (%s)" % c["reason"] if c else "Unknown"))(_cond(o, "Available")),
                              age(o["metadata"].get("creationTimestamp"))], [], None),
    "CustomResourceDefinition": (["CREATED AT"], lambda o: [o["metadata"].get("creationTimestamp")], [], None),
    "Event": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], None, [], None),
    "ResourceQuota": (["AGE", "REQUEST", "LIMIT"],
                      lambda o: [age(o["metadata"].get("creationTimestamp")),
                                 ", ".join("%s: 0/%s" % kv for kv in ((o.get("spec") or {}).get("hard") or {})
                                           .items()), ""], [], None),
    "Job": (["STATUS", "COMPLETIONS", "DURATION", "AGE"], lambda o: ["Running", "0/1", "1s",
                                                                      age(o["metadata"].get("creationTimestamp"))],
            [], None),
    "StorageClass": (["PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"],
                     lambda o: [o.get("provisioner", ""), o.get("reclaimPolicy", "Delete"),
                                o.get("volumeBindingMode", "Immediate"), "false",
                                age(o["metadata"].get("creationTimestamp"))], [], None),
}


def crd_columns(cl, m):
    crd = K.find(cl, "CustomResourceDefinition", "", m["crd"]) if m.get("crd") else None
    if not crd:
        return None
    for v in crd["spec"].get("versions") or []:
        if v.get("name") == m["version"] or v.get("storage"):
            return v.get("additionalPrinterColumns") or []
    return []


def table(cl, m, objs, wide=False, all_ns=False, show_kind=False, no_headers=False, show_labels=False):
    kind = m["kind"]
    if kind == "Event":
        hdr = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        rows = [[age(o.get("lastTimestamp")), o.get("type", ""), o.get("reason", ""),
                 "%s/%s" % (o["involvedObject"]["kind"].lower(), o["involvedObject"]["name"]), o.get("message", "")]
                for o in sorted(objs, key=lambda e: e.get("lastTimestamp", ""))]
        if all_ns:
            hdr = ["NAMESPACE"] + hdr
            rows = [[o["metadata"]["namespace"]] + r for o, r in zip(sorted(objs, key=lambda e: e.get(
                "lastTimestamp", "")), rows)]
        return tabwrite(([] if no_headers else [hdr]) + rows)
    if kind in PRINTERS:
        hdr, rowf, whdr, wrowf = PRINTERS[kind]
    else:
        cols = crd_columns(cl, m)
        if cols is None:
            hdr, rowf, whdr, wrowf = ["AGE"], lambda o: [age(o["metadata"].get("creationTimestamp"))], [], None
        else:
            cols = [c for c in cols if wide or not c.get("priority")]
            hdr = [c["name"].upper() for c in cols]
            if not any(c["name"].lower() == "age" for c in cols):
                hdr.append("AGE")

            def rowf(o, cols=cols):
                r = []
                for c in cols:
                    v = jsonpath.evaluate("{%s}" % c["jsonPath"], o)
                    if c.get("type") == "date":
                        v = age(v)
                    r.append(v)
                if not any(c["name"].lower() == "age" for c in cols):
                    r.append(age(o["metadata"].get("creationTimestamp")))
                return r
            whdr, wrowf = [], None
    header = ["NAME"] + hdr + (whdr if wide and wrowf else [])
    if show_labels:
        header.append("LABELS")
    if all_ns and m["namespaced"]:
        header = ["NAMESPACE"] + header
    rows = [] if no_headers else [header]
    for o in objs:
        name = o["metadata"]["name"]
        if show_kind:
            name = "%s/%s" % (K.kind_group(m), name)
        r = [name] + rowf(o) + (wrowf(o) if wide and wrowf else [])
        if show_labels:
            r.append(",".join("%s=%s" % kv for kv in sorted((o["metadata"].get("labels") or {}).items()))
                     or "<none>")
        if all_ns and m["namespaced"]:
            r = [o["metadata"].get("namespace", "")] + r
        rows.append(r)
    return tabwrite(rows)
