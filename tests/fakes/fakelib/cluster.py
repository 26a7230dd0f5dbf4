"""Simulated Kubernetes API server: resource mappings (built-in + CRDs),
object store, apply/patch/delete semantics, label selectors.

A cluster lives in st.data["clusters"][NAME]:
  objects: {"<group>/<Kind>/<namespace>/<name>": obj}   (obj["_fake"] is private)
  rv: resourceVersion counter; k8s_version; api_port; node_image; ...
"""

import copy
import json
import random
import re
import time
import uuid

from .common import now_iso, sha_hex

BUILTINS = [
    # group, version, kind, plural, namespaced, shortnames
    ("", "v1", "Namespace", "namespaces", False, ["ns"]),
    ("", "v1", "Pod", "pods", True, ["po"]),
    ("", "v1", "Service", "services", True, ["svc"]),
    ("", "v1", "Endpoints", "endpoints", True, ["ep"]),
    ("", "v1", "ConfigMap", "configmaps", True, ["cm"]),
    ("", "v1", "Secret", "secrets", True, []),
    ("", "v1", "ServiceAccount", "serviceaccounts", True, ["sa"]),
    ("", "v1", "Node", "nodes", False, ["no"]),
    ("", "v1", "Event", "events", True, ["ev"]),
    ("", "v1", "ResourceQuota", "resourcequotas", True, ["quota"]),
    ("", "v1", "LimitRange", "limitranges", True, ["limits"]),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ["pvc"]),
    ("", "v1", "PersistentVolume", "persistentvolumes", False, ["pv"]),
    ("apps", "v1", "Deployment", "deployments", True, ["deploy"]),
    ("apps", "v1", "ReplicaSet", "replicasets", True, ["rs"]),
    ("apps", "v1", "StatefulSet", "statefulsets", True, ["sts"]),
    ("apps", "v1", "DaemonSet", "daemonsets", True, ["ds"]),
    ("batch", "v1", "Job", "jobs", True, []),
    ("batch", "v1", "CronJob", "cronjobs", True, ["cj"]),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ["hpa"]),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ["pdb"]),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ["netpol"]),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", True, ["ing"]),
    ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False, []),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True, []),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, []),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, []),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, []),
    ("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, []),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, ["crd", "crds"]),
    ("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ["sc"]),
    ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ["pc"]),
    ("coordination.k8s.io", "v1", "Lease", "leases", True, []),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, []),
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
     False, []),
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
     False, []),
]
EXTRA_VERSIONS = {("autoscaling", "HorizontalPodAutoscaler"): ["v2", "v1"]}


class ApiError(Exception):
    """An API-server style error; .msg is the kubectl-printed text."""

    def __init__(self, msg, code="BadRequest"):
        super().__init__(msg)
        self.msg = msg
        self.code = code


def mapping(group, version, kind, plural, namespaced, short, versions=None, crd=None):
    return {"group": group, "version": version, "versions": versions or [version], "kind": kind,
            "plural": plural, "singular": kind.lower(), "namespaced": namespaced, "short": short, "crd": crd}


def all_mappings(cl):
    ms = [mapping(g, v, k, p, n, s, EXTRA_VERSIONS.get((g, k))) for g, v, k, p, n, s in BUILTINS]
    for o in cl["objects"].values():
        if o["kind"] != "CustomResourceDefinition" or o.get("metadata", {}).get("deletionTimestamp"):
            continue
        sp = o.get("spec", {})
        names = sp.get("names", {})
        served = [v["name"] for v in sp.get("versions", []) if v.get("served", True)]
        storage = [v["name"] for v in sp.get("versions", []) if v.get("storage")] or served[:1]
        if not served:
            continue
        m = mapping(sp.get("group", ""), storage[0], names.get("kind", ""), names.get("plural", ""),
                    sp.get("scope", "Namespaced") == "Namespaced", names.get("shortNames", []) or [],
                    served, crd=o["metadata"]["name"])
        if names.get("singular"):
            m["singular"] = names["singular"]
        m["categories"] = names.get("categories", [])
        ms.append(m)
    return ms


def mapping_for_kind(cl, api_version, kind):
    group, _, version = api_version.rpartition("/")
    for m in all_mappings(cl):
        if m["group"] == group and m["kind"] == kind and version in m["versions"]:
            return m
    return None


def resolve_resource(cl, name):
    """kubectl resource argument -> mapping, or None."""
    n = name.lower()
    ms = all_mappings(cl)
    parts = n.split(".", 1)
    base, grp = parts[0], (parts[1] if len(parts) > 1 else None)
    cands = []
    for m in ms:
        names = {m["plural"], m["singular"], m["kind"].lower()} | set(m["short"])
        if grp is None:
            if n in names:
                cands.append(m)
        else:
            if base in names and (m["group"] == grp or any(grp == "%s.%s" % (v, m["group"]) for v in m["versions"])
                                  or (m["group"] == "" and grp in m["versions"])):
                cands.append(m)
    if not cands:
        return None
    # prefer built-in core/apps over CRDs with same short name
    cands.sort(key=lambda m: (m["crd"] is not None, m["group"] != "", m["group"]))
    return cands[0]


def gr(m):
    """'deployments.apps' / 'pods' style name used in errors."""
    return m["plural"] + ("." + m["group"] if m["group"] else "")


def kind_group(m):
    """'deployment.apps' style used in apply/create output."""
    return m["kind"].lower() + ("." + m["group"] if m["group"] else "")


def obj_key(m, ns, name):
    return "%s/%s/%s/%s" % (m["group"], m["kind"], ns if m["namespaced"] else "", name)


def get_obj(cl, m, ns, name):
    return cl["objects"].get(obj_key(m, ns, name))


def list_objs(cl, m, ns=None):
    prefix = "%s/%s/" % (m["group"], m["kind"])
    out = []
    for k, o in cl["objects"].items():
        if k.startswith(prefix):
            if ns is not None and m["namespaced"] and o["metadata"].get("namespace") != ns:
                continue
            out.append(o)
    out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    return out


def objs_of_kind(cl, kind, ns=None, group=None):
    out = []
    for o in cl["objects"].values():
        if o["kind"] == kind and (ns is None or o["metadata"].get("namespace") == ns):
            if group is None or o["apiVersion"].rpartition("/")[0] == group:
                out.append(o)
    out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    return out


def find(cl, kind, ns, name):
    for o in cl["objects"].values():
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace", "") == (ns or ""):
            return o
    return None


def public(o):
    """Object as the API returns it (without private bookkeeping)."""
    o = copy.deepcopy(o)
    o.pop("_fake", None)
    return o


def next_rv(cl):
    cl["rv"] = cl.get("rv", 1000) + 1
    return str(cl["rv"])


# ---------------------------------------------------------------- selectors

def parse_selector(sel):
    """kubectl -l syntax -> list of (key, op, values)."""
    reqs = []
    if not sel:
        return reqs
    parts = re.findall(r"[^,(]+(?:\([^)]*\))?", sel)
    for p in parts:
        p = p.strip()
        if not p:
            continue
        m = re.fullmatch(r"(\S+?)\s+(in|notin)\s+\(([^)]*)\)", p)
        if m:
            reqs.append((m[1], m[2], [v.strip() for v in m[3].split(",") if v.strip()]))
            continue
        m = re.fullmatch(r"(\S+?)\s*(==|!=|=)\s*(\S*)", p)
        if m:
            reqs.append((m[1], "!=" if m[2] == "!=" else "=", [m[3]]))
            continue
        if p.startswith("!"):
            reqs.append((p[1:], "!", []))
            continue
        if re.fullmatch(r"[A-Za-z0-9./_-]+", p):
            reqs.append((p, "exists", []))
            continue
        raise ApiError('error: unable to parse requirement: found \'%s\', expected: \',\', \'!=\', \'==\', \'=\', '
                       '\'in\', \'notin\'' % p)
    return reqs


def match_selector_reqs(labels, reqs):
    labels = labels or {}
    for k, op, vals in reqs:
        if op == "=" and labels.get(k) != vals[0]:
            return False
        if op == "!=" and labels.get(k) == vals[0]:
            return False
        if op == "in" and labels.get(k) not in vals:
            return False
        if op == "notin" and k in labels and labels[k] in vals:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


def match_label_selector(labels, sel):
    """metav1.LabelSelector (matchLabels/matchExpressions); {} matches all; None matches none."""
    if sel is None:
        return False
    labels = labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


# ---------------------------------------------------------------- validation

FLUX_SPEC_FIELDS = {
    "OCIRepository": {"url", "ref", "layerSelector", "provider", "secretRef", "verify", "serviceAccountName",
                      "certSecretRef", "proxySecretRef", "interval", "timeout", "ignore", "insecure", "suspend"},
    "GitRepository": {"url", "secretRef", "provider", "interval", "timeout", "ref", "verify", "proxySecretRef",
                      "ignore", "suspend", "recurseSubmodules", "include", "sparseCheckout", "serviceAccountName"},
    "HelmRepository": {"url", "secretRef", "passCredentials", "interval", "insecure", "timeout", "suspend",
                       "accessFrom", "type", "provider", "certSecretRef"},
    "HelmChart": {"chart", "version", "sourceRef", "interval", "reconcileStrategy", "valuesFiles",
                  "ignoreMissingValuesFiles", "suspend", "verify"},
    "Kustomization": {"commonMetadata", "decryption", "dependsOn", "force", "healthChecks", "healthCheckExprs",
                      "images", "interval", "kubeConfig", "namePrefix", "nameSuffix", "patches", "path", "postBuild",
                      "prune", "deletionPolicy", "retryInterval", "serviceAccountName", "sourceRef", "suspend",
                      "targetNamespace", "timeout", "wait", "components", "ignoreMissingComponents"},
    "HelmRelease": {"chart", "chartRef", "interval", "kubeConfig", "suspend", "releaseName", "targetNamespace",
                    "storageNamespace", "dependsOn", "timeout", "maxHistory", "serviceAccountName", "persistentClient",
                    "driftDetection", "install", "upgrade", "test", "rollback", "uninstall", "valuesFrom", "values",
                    "postRenderers", "commonMetadata"},
}


def _flux_release(cl, m):
    """The Flux release whose CRD serves mapping M (its app.kubernetes.io/version label)."""
    crd = find(cl, "CustomResourceDefinition", "", m["crd"]) or {}
    version = ((crd.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/version", "")
    found = re.findall(r"\d+", version)[:3]
    return tuple(int(p) for p in found) if len(found) == 3 else (99, 0, 0)


def validate(cl, m, obj):
    """Server-side validation subset. Raises ApiError with kubectl text."""
    name = obj["metadata"].get("name", "")
    kind = m["kind"]
    if not name:
        raise ApiError("error: error when retrieving current configuration: resource name may not be empty")
    if kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        # RBAC names are path segments (kube-apiserver ValidatePathSegmentName): "system:x" is fine.
        if name in (".", "..") or "/" in name or "%" in name:
            raise ApiError('The %s "%s" is invalid: metadata.name: Invalid value: "%s": may not contain \'/\''
                           % (kind, name, name), "Invalid")
    elif not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
        raise ApiError('The %s "%s" is invalid: metadata.name: Invalid value: "%s": a lowercase RFC 1123 subdomain '
                       "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with "
                       "an alphanumeric character" % (kind, name, name), "Invalid")
    spec = obj.get("spec") or {}
    errs = []
    allowed = FLUX_SPEC_FIELDS.get(kind) if m["crd"] else None
    if allowed is not None:
        for k in spec:
            if k not in allowed:
                raise ApiError('%s in version "%s" cannot be handled as a %s: strict decoding error: unknown field '
                               '"spec.%s"' % (kind, obj["apiVersion"].rpartition("/")[2], kind, k), "BadRequest")
        if kind == "Kustomization" and "substituteStrategy" in (spec.get("postBuild") or {}) \
                and _flux_release(cl, m) < (2, 9, 0):
            # postBuild.substituteStrategy first appears in kustomize-controller v1.9.0 (Flux 2.9)
            raise ApiError('%s in version "%s" cannot be handled as a %s: strict decoding error: unknown field '
                           '"spec.postBuild.substituteStrategy"' % (kind, obj["apiVersion"].rpartition("/")[2], kind),
                           "BadRequest")
        if "interval" not in spec and kind != "HelmChart":
            errs.append("spec.interval: Required value")
        if kind == "OCIRepository":
            if "url" not in spec:
                errs.append("spec.url: Required value")
            elif not str(spec["url"]).startswith("oci://"):
                errs.append("spec.url: Invalid value: \"%s\": spec.url in body should match '^oci://.*$'"
                            % spec["url"])
        if kind == "GitRepository":
            if "url" not in spec:
                errs.append("spec.url: Required value")
            elif not re.match(r"^(http|https|ssh)://.*$", str(spec["url"])):
                errs.append("spec.url: Invalid value: \"%s\": spec.url in body should match "
                            "'^(http|https|ssh)://.*$'" % spec["url"])
        if kind == "Kustomization":
            if "prune" not in spec:
                errs.append("spec.prune: Required value")
            if "sourceRef" not in spec:
                errs.append("spec.sourceRef: Required value")
            elif spec["sourceRef"].get("kind") not in ("OCIRepository", "GitRepository", "Bucket",
                                                       "ExternalArtifact"):
                errs.append('spec.sourceRef.kind: Unsupported value: "%s": supported values: "OCIRepository", '
                            '"GitRepository", "Bucket", "ExternalArtifact"' % spec["sourceRef"].get("kind"))
        if kind == "HelmRelease":
            if "chart" in spec and "chartRef" in spec:
                errs.append("spec: Invalid value: \"object\": either chart or chartRef must be set")
            elif "chart" not in spec and "chartRef" not in spec:
                errs.append("spec: Invalid value: \"object\": either chart or chartRef must be set")
    if kind == "Deployment":
        sel = spec.get("selector")
        tl = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if sel is None:
            errs.append("spec.selector: Required value")
        elif not match_label_selector(tl, sel):
            errs.append("spec.template.metadata.labels: Invalid value: %s: `selector` does not match template "
                        "`labels`" % json.dumps(tl, separators=(",", ":")).replace('"', '\\"').join('""'))
        if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
            errs.append("spec.template.spec.containers: Required value")
    if kind == "Service":
        for p in spec.get("ports") or []:
            if "port" not in p:
                errs.append("spec.ports[0].port: Required value")
    if errs:
        raise ApiError('The %s "%s" is invalid: %s' % (kind, name, ", ".join(errs) if len(errs) == 1 else
                                                        "\n* " + "\n* ".join(errs)), "Invalid")


# ---------------------------------------------------------------- writes

SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "deletionTimestamp",
               "selfLink")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _content(o):
    c = {k: v for k, v in o.items() if k not in ("status", "_fake", "metadata")}
    md = {k: v for k, v in (o.get("metadata") or {}).items() if k not in SERVER_META}
    c["metadata"] = md
    return c


def merge3(live, last, new):
    """Client-side-apply 3-way merge on plain dicts, as kubectl computes it: every field of the new
    configuration whose value differs from the live one is set (a hand edit or `kubectl scale` of a
    field the configuration sets is undone), and fields the last applied configuration had and the new
    one dropped are deleted; fields the configuration never set are left alone."""
    if not isinstance(live, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    last = last if isinstance(last, dict) else {}
    out = copy.deepcopy(live)
    for k, v in new.items():
        if k in live and isinstance(v, dict) and isinstance(live[k], dict):
            out[k] = merge3(live[k], last.get(k), v)
        else:
            out[k] = copy.deepcopy(v)
    for k in last:
        if k not in new and k in out:
            del out[k]
    return out


def defaults(m, obj):
    """Apply a few API defaults so that re-applying is 'unchanged'."""
    spec = obj.get("spec")
    if m["kind"] == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    if m["kind"] == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
    if m["kind"] == "Secret":
        obj.setdefault("type", "Opaque")
        if "stringData" in obj:
            import base64
            obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                obj["data"][k] = base64.b64encode(str(v).encode()).decode()
    if m["kind"] == "NetworkPolicy" and isinstance(spec, dict):
        if "policyTypes" not in spec:
            pt = ["Ingress"]
            if "egress" in spec:
                pt.append("Egress")
            spec["policyTypes"] = pt
    if m["kind"] == "Namespace":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    return obj


def _spec_part(o):
    return {k: v for k, v in o.items() if k not in ("metadata", "status", "_fake", "apiVersion", "kind")}


def put_object(cl, m, obj, manager="kubectl", op="Update"):
    """Create or replace (no merge). Returns ('created'|'configured'|'unchanged', stored)."""
    ns = obj["metadata"].get("namespace", "") if m["namespaced"] else ""
    if not m["namespaced"]:
        obj["metadata"].pop("namespace", None)
    key = obj_key(m, ns, obj["metadata"]["name"])
    old = cl["objects"].get(key)
    obj = defaults(m, obj)
    if old is None:
        o = copy.deepcopy(obj)
        md = o["metadata"]
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_iso()
        md["resourceVersion"] = next_rv(cl)
        md["generation"] = 1
        o.setdefault("_fake", {})["managers"] = [manager]
        if m["kind"] == "Namespace":
            o["status"] = {"phase": "Active"}
        cl["objects"][key] = o
        cl.setdefault("changed", True)
        return "created", o
    if _content(old) == _content(obj):
        mg = old.setdefault("_fake", {}).setdefault("managers", [])
        if manager not in mg:
            mg.append(manager)
        return "unchanged", old
    o = copy.deepcopy(obj)
    for k in SERVER_META:
        if k in old["metadata"]:
            o["metadata"][k] = old["metadata"][k]
    if "status" in old and "status" not in o:
        o["status"] = old["status"]
    o["_fake"] = old.get("_fake", {})
    if manager not in o["_fake"].setdefault("managers", []):
        o["_fake"]["managers"].append(manager)
    o["metadata"]["resourceVersion"] = next_rv(cl)
    if _spec_part(old) != _spec_part(o):
        if m["kind"] not in ("ConfigMap", "Secret", "Namespace", "ServiceAccount", "Endpoints", "Event") or m["crd"]:
            o["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
    cl["objects"][key] = o
    return "configured", o


def apply_object(cl, m, obj, server_side=False, manager=None):
    """kubectl apply semantics for one object. Returns (verb, stored)."""
    validate(cl, m, obj)
    ns = obj["metadata"].get("namespace", "")
    if m["namespaced"]:
        nsobj = find(cl, "Namespace", "", ns)
        if nsobj is None:
            raise ApiError('namespaces "%s" not found' % ns, "NotFound")
        if nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError('%s "%s" is forbidden: unable to create new content in namespace %s because it is being '
                           'terminated' % (m["plural"], obj["metadata"]["name"], ns), "Forbidden")
    key = obj_key(m, ns if m["namespaced"] else "", obj["metadata"]["name"])
    live = cl["objects"].get(key)
    applied = copy.deepcopy(obj)
    manager = manager or ("kubectl" if server_side else "kubectl-client-side-apply")
    if not server_side:
        cfg = copy.deepcopy(obj)
        cfg["metadata"].setdefault("annotations", {})
        cfg["metadata"]["annotations"].pop(LAST_APPLIED, None)
        if not cfg["metadata"]["annotations"]:
            del cfg["metadata"]["annotations"]
        la = json.dumps(cfg, separators=(",", ":"), sort_keys=True) + "\n"
        applied["metadata"].setdefault("annotations", {})[LAST_APPLIED] = la
    if live is None:
        verb, o = put_object(cl, m, applied, manager, "Apply")
        o.setdefault("_fake", {}).setdefault("applied", {})[manager] = copy.deepcopy(_content(defaults(m, copy.deepcopy(obj))))
        return verb, o
    last = (live.get("_fake") or {}).get("applied", {}).get(manager)
    if last is None and not server_side:
        ann = (live["metadata"].get("annotations") or {}).get(LAST_APPLIED)
        if ann:
            try:
                last = json.loads(ann)
            except ValueError:
                last = None
    new_cfg = _content(defaults(m, copy.deepcopy(applied)))
    merged_content = merge3(_content(live), last or {}, new_cfg)
    merged = dict(merged_content)
    merged["metadata"] = dict(live["metadata"], **merged_content["metadata"])
    for k in list(live["metadata"]):
        if k not in SERVER_META and k not in merged_content["metadata"]:
            merged["metadata"].pop(k, None)
    if "status" in live:
        merged["status"] = live["status"]
    verb, o = put_object(cl, m, merged, manager, "Apply")
    o.setdefault("_fake", {}).setdefault("applied", {})[manager] = copy.deepcopy(
        _content(defaults(m, copy.deepcopy(obj))))
    return verb, o


def delete_object(cl, o):
    key = None
    for k, v in cl["objects"].items():
        if v is o:
            key = k
            break
    if key is None:
        return
    del cl["objects"][key]
    uid = o["metadata"].get("uid")
    kind = o["kind"]
    if kind == "Namespace":
        ns = o["metadata"]["name"]
        for k in [k for k, v in cl["objects"].items() if v["metadata"].get("namespace") == ns]:
            del cl["objects"][k]
    if kind == "CustomResourceDefinition":
        sp = o.get("spec", {})
        prefix = "%s/%s/" % (sp.get("group"), sp.get("names", {}).get("kind"))
        for k in [k for k in cl["objects"] if k.startswith(prefix)]:
            del cl["objects"][k]
    gc(cl, {uid})


def gc(cl, dead_uids=None):
    """Garbage-collect objects whose owners are gone."""
    uids = {o["metadata"].get("uid") for o in cl["objects"].values()}
    changed = True
    while changed:
        changed = False
        for k, o in list(cl["objects"].items()):
            refs = o["metadata"].get("ownerReferences") or []
            if refs and all(r.get("uid") not in uids for r in refs):
                del cl["objects"][k]
                uids.discard(o["metadata"].get("uid"))
                changed = True


def set_condition(obj, ctype, status, reason, message, generation=None):
    st = obj.setdefault("status", {})
    conds = st.setdefault("conditions", [])
    for c in conds:
        if c["type"] == ctype:
            if c["status"] != status:
                c["lastTransitionTime"] = now_iso()
            c["status"], c["reason"], c["message"] = status, reason, message
            if generation is not None:
                c["observedGeneration"] = generation
            return c
    c = {"type": ctype, "status": status, "reason": reason, "message": message, "lastTransitionTime": now_iso()}
    if generation is not None:
        c["observedGeneration"] = generation
    conds.append(c)
    return c


def get_condition(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_status(cl, o, status):
    """Replace status; bump resourceVersion only on real change."""
    if o.get("status") != status:
        o["status"] = status
        o["metadata"]["resourceVersion"] = next_rv(cl)


def touch(cl, o):
    o["metadata"]["resourceVersion"] = next_rv(cl)


SAFE = "bcdfghjklmnpqrstvwxz2456789"


def safe_hash(s, n=10):
    h = int(sha_hex(s), 16)
    out = ""
    for _ in range(n):
        h, r = divmod(h, len(SAFE))
        out += SAFE[r]
    return out


def rand_suffix(n=5):
    return "".join(random.choice(SAFE) for _ in range(n))


def new_obj(api_version, kind, name, ns=None, labels=None, spec=None, **extra):
    o = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    if ns is not None:
        o["metadata"]["namespace"] = ns
    if labels:
        o["metadata"]["labels"] = dict(labels)
    if spec is not None:
        o["spec"] = spec
    o.update(extra)
    return o


def create_system(cl, m_kind_api, obj):
    """Create/replace an object on behalf of a controller (no validation)."""
    m = mapping_for_kind(cl, obj["apiVersion"], obj["kind"])
    if m is None:
        raise ApiError('no matches for kind "%s" in version "%s"' % (obj["kind"], obj["apiVersion"]))
    return put_object(cl, m, obj, manager=m_kind_api or "controller")


def ts_seconds(ts):
    try:
        return time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except Exception:
        return 0
