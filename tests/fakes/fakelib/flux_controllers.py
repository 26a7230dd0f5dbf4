"""Simulated Flux controllers (source, kustomize, helm) and the objects
`flux install` creates."""

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from . import cluster as K
from . import dockerworld as dw
from . import registry_store as rs
from .common import fmt_duration, load_yaml, now_iso, parse_duration, real_kubectl, sha_hex

FLUX_NS = "flux-system"
FORCED = set()
REQ_ANN = "reconcile.fluxcd.io/requestedAt"

# What flux2 v2.9.4's manifests/bases pin (read from the module by the kit's flux part).
CONTROLLER_VERSIONS = {"source-controller": "v1.9.4", "kustomize-controller": "v1.9.4",
                       "helm-controller": "v1.6.3", "notification-controller": "v1.9.3",
                       "image-reflector-controller": "v1.2.4", "image-automation-controller": "v1.2.4"}

FLUX_CRDS = [
    # group, version(s), kind, plural, shortnames, controller
    ("source.toolkit.fluxcd.io", ["v1"], "GitRepository", "gitrepositories", ["gitrepo"], "source-controller"),
    ("source.toolkit.fluxcd.io", ["v1"], "OCIRepository", "ocirepositories", ["ocirepo"], "source-controller"),
    ("source.toolkit.fluxcd.io", ["v1"], "HelmRepository", "helmrepositories", ["helmrepo"], "source-controller"),
    ("source.toolkit.fluxcd.io", ["v1"], "HelmChart", "helmcharts", ["hc"], "source-controller"),
    ("source.toolkit.fluxcd.io", ["v1"], "Bucket", "buckets", [], "source-controller"),
    ("source.toolkit.fluxcd.io", ["v1"], "ExternalArtifact", "externalartifacts", [], "source-controller"),
    ("kustomize.toolkit.fluxcd.io", ["v1"], "Kustomization", "kustomizations", ["ks"], "kustomize-controller"),
    ("helm.toolkit.fluxcd.io", ["v2"], "HelmRelease", "helmreleases", ["hr"], "helm-controller"),
    ("notification.toolkit.fluxcd.io", ["v1beta3"], "Alert", "alerts", [], "notification-controller"),
    ("notification.toolkit.fluxcd.io", ["v1beta3"], "Provider", "providers", [], "notification-controller"),
    ("notification.toolkit.fluxcd.io", ["v1"], "Receiver", "receivers", [], "notification-controller"),
]
EXTRA_CRDS = [
    ("image.toolkit.fluxcd.io", ["v1"], "ImageRepository", "imagerepositories", ["imagerepo"],
     "image-reflector-controller"),
    ("image.toolkit.fluxcd.io", ["v1"], "ImagePolicy", "imagepolicies", ["imgpol"], "image-reflector-controller"),
    ("image.toolkit.fluxcd.io", ["v1"], "ImageUpdateAutomation", "imageupdateautomations", [],
     "image-automation-controller"),
]

MONITORING_CRDS = [
    ("monitoring.coreos.com", ["v1"], "ServiceMonitor", "servicemonitors", ["smon"]),
    ("monitoring.coreos.com", ["v1"], "PodMonitor", "podmonitors", ["pmon"]),
    ("monitoring.coreos.com", ["v1"], "PrometheusRule", "prometheusrules", ["promrule"]),
    ("monitoring.coreos.com", ["v1"], "Prometheus", "prometheuses", ["prom"]),
    ("monitoring.coreos.com", ["v1"], "Alertmanager", "alertmanagers", ["am"]),
    ("monitoring.coreos.com", ["v1"], "Probe", "probes", ["prb"]),
    ("monitoring.coreos.com", ["v1"], "ThanosRuler", "thanosrulers", ["ruler"]),
    ("monitoring.coreos.com", ["v1alpha1"], "AlertmanagerConfig", "alertmanagerconfigs", ["amcfg"]),
    ("monitoring.coreos.com", ["v1alpha1"], "PrometheusAgent", "prometheusagents", ["promagent"]),
    ("monitoring.coreos.com", ["v1alpha1"], "ScrapeConfig", "scrapeconfigs", ["scfg"]),
]


def crd_obj(group, versions, kind, plural, short, labels=None, printer_cols=None):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "%s.%s" % (plural, group), "labels": dict(labels or {})},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "listKind": kind + "List", "plural": plural,
                               "singular": kind.lower(), "shortNames": short or None},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}},
                                   "subresources": {"status": {}},
                                   "additionalPrinterColumns": printer_cols or []}
                                  for i, v in enumerate(versions)]}}


def _strip_none(d):
    if isinstance(d, dict):
        return {k: _strip_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, list):
        return [_strip_none(x) for x in d]
    return d


def install_objects(version, components, network_policy=True, registry="ghcr.io/fluxcd", cluster_domain=None):
    labels = {"app.kubernetes.io/instance": FLUX_NS, "app.kubernetes.io/part-of": "flux",
              "app.kubernetes.io/version": version}
    objs = [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": FLUX_NS, "labels": dict(labels, **{
                 "pod-security.kubernetes.io/warn": "restricted",
                 "pod-security.kubernetes.io/warn-version": "latest"})}}]
    crds = [c for c in FLUX_CRDS if c[5] in components] + [c for c in EXTRA_CRDS if c[5] in components]
    cols = [{"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"},
            {"jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "name": "Ready", "type": "string"},
            {"jsonPath": ".status.conditions[?(@.type==\"Ready\")].message", "name": "Status", "type": "string"}]
    for g, vs, kind, plural, short, ctrl in crds:
        objs.append(_strip_none(crd_obj(g, vs, kind, plural, short, dict(labels, **{
            "app.kubernetes.io/component": ctrl}), cols)))
    objs.append({"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "critical-pods-flux-system", "namespace": FLUX_NS, "labels": dict(labels)},
                 "spec": {"hard": {"pods": "1000"}, "scopeSelector": {"matchExpressions": [
                     {"operator": "In", "scopeName": "PriorityClass",
                      "values": ["system-node-critical", "system-cluster-critical"]}]}}})
    objs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "crd-controller-flux-system", "labels": dict(labels)},
                 "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    objs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "cluster-reconciler-flux-system", "labels": dict(labels)},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "cluster-admin"},
                 "subjects": [{"kind": "ServiceAccount", "name": "kustomize-controller", "namespace": FLUX_NS},
                              {"kind": "ServiceAccount", "name": "helm-controller", "namespace": FLUX_NS}]})
    for comp in components:
        cl = dict(labels, **{"app.kubernetes.io/component": comp})
        objs.append({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": comp, "namespace": FLUX_NS, "labels": cl}})
        if comp in ("source-controller", "notification-controller"):
            objs.append({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": comp, "namespace": FLUX_NS, "labels": dict(cl, **{
                             "control-plane": "controller"})},
                         "spec": {"type": "ClusterIP", "selector": {"app": comp},
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                             "targetPort": "http"}]}})
        if comp == "notification-controller":
            objs.append({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "webhook-receiver", "namespace": FLUX_NS, "labels": dict(cl, **{
                             "control-plane": "controller"})},
                         "spec": {"type": "ClusterIP", "selector": {"app": comp},
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                             "targetPort": "http-webhook"}]}})
        ports = [{"containerPort": 8080, "name": "http-prom", "protocol": "TCP"},
                 {"containerPort": 9440, "name": "healthz", "protocol": "TCP"}]
        if comp == "source-controller":
            ports.insert(0, {"containerPort": 9090, "name": "http", "protocol": "TCP"})
        if comp == "notification-controller":
            ports.insert(0, {"containerPort": 9090, "name": "http", "protocol": "TCP"})
            ports.insert(1, {"containerPort": 9292, "name": "http-webhook", "protocol": "TCP"})
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": comp, "namespace": FLUX_NS, "labels": dict(cl, **{
                         "control-plane": "controller"})},
                     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": comp}},
                              "template": {"metadata": {"labels": {"app": comp},
                                                        "annotations": {"prometheus.io/port": "8080",
                                                                        "prometheus.io/scrape": "true"}},
                                           "spec": {"serviceAccountName": comp,
                                                    "priorityClassName": "system-cluster-critical",
                                                    "containers": [{
                                                        "name": "manager",
                                                        "image": "%s/%s:%s" % (registry, comp,
                                                                               CONTROLLER_VERSIONS.get(comp, "v1.0.0")),
                                                        "args": ["--events-addr=http://notification-controller."
                                                                 "flux-system.svc.cluster.local./",
                                                                 "--watch-all-namespaces=true", "--log-level=info",
                                                                 "--log-encoding=json", "--enable-leader-election"],
                                                        "ports": ports}]}}}})
    if network_policy:
        for name, spec in [
            ("allow-egress", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{}],
                              "policyTypes": ["Ingress", "Egress"]}),
            ("allow-scraping", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}],
                                                                "ports": [{"port": 8080, "protocol": "TCP"}]}],
                                "policyTypes": ["Ingress"]}),
            ("allow-webhooks", {"podSelector": {"matchLabels": {"app": "notification-controller"}},
                                "ingress": [{"from": [{"namespaceSelector": {}}]}], "policyTypes": ["Ingress"]}),
        ]:
            objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": name, "namespace": FLUX_NS, "labels": dict(labels)}, "spec": spec})
    return objs


def controller_ready(cl, name):
    d = K.find(cl, "Deployment", FLUX_NS, name)
    if d is None:
        return False
    c = K.get_condition(d, "Available")
    return bool(c and c["status"] == "True")


def _log(cl, ctrl, o, msg, level="info"):
    from .controllers import log
    log(cl, ctrl, o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", ""), msg, level)


def _interval(o):
    try:
        return parse_duration((o.get("spec") or {}).get("interval") or "10m")
    except ValueError:
        return 600


def needs_reconcile(o, extra_changed=False):
    spec = o.get("spec") or {}
    if spec.get("suspend"):
        return False
    f = o.setdefault("_fake", {})
    key = (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
    req = (o["metadata"].get("annotations") or {}).get(REQ_ANN)
    if key in FORCED or extra_changed:
        return True
    if f.get("obs_gen") != o["metadata"].get("generation"):
        return True
    if req and req != f.get("handled"):
        return True
    if not f.get("ok"):
        return True
    return time.time() - f.get("last", 0) >= _interval(o)


def _mark(o, ok):
    f = o.setdefault("_fake", {})
    f["obs_gen"] = o["metadata"].get("generation")
    f["ok"] = ok
    f["last"] = time.time()
    req = (o["metadata"].get("annotations") or {}).get(REQ_ANN)
    if req:
        f["handled"] = req


def _set_ready(cl, o, ok, reason, message, extra_status=None):
    status = copy.deepcopy(o.get("status") or {})
    gen = o["metadata"].get("generation")
    h = {"status": status}
    K.set_condition(h, "Ready", "True" if ok else "False", reason, message, gen)
    if o["kind"] in ("OCIRepository", "GitRepository", "HelmRepository", "HelmChart"):
        if ok:
            K.set_condition(h, "ArtifactInStorage", "True", "Succeeded", message, gen)
        status["conditions"] = [c for c in status["conditions"] if c["type"] != "FetchFailed"]
        if not ok:
            K.set_condition(h, "FetchFailed", "True", reason, message, gen)
    if ok or o["kind"] != "Kustomization":
        # kustomize-controller's finalizeStatus moves observedGeneration only when Ready is True: a failed
        # reconcile of a new spec leaves it behind (a readyExpr on it can tell "never applied")
        status["observedGeneration"] = gen
    req = (o["metadata"].get("annotations") or {}).get(REQ_ANN)
    if req:
        status["lastHandledReconcileAt"] = req
    status.update(extra_status or {})
    K.set_status(cl, o, status)
    _mark(o, ok)


# ---------------------------------------------------------------- sources

def artifact_dir(cl, kind, ns, name):
    from .common import state_dir
    return os.path.join(state_dir(), "clusters", cl["name"], "artifacts", kind.lower(), ns, name)


def _store_artifact(cl, o, revision, tgz, metadata=None):
    kind = o["kind"]
    ns, name = o["metadata"]["namespace"], o["metadata"]["name"]
    d = artifact_dir(cl, kind, ns, name)
    os.makedirs(d, exist_ok=True)
    dig = "sha256:" + sha_hex(tgz)
    fn = dig.split(":")[1] + ".tar.gz"
    path = os.path.join(d, fn)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(tgz)
    rel = "%s/%s/%s/%s" % (kind.lower(), ns, name, fn)
    art = {"digest": dig, "lastUpdateTime": now_iso(), "path": rel, "revision": revision, "size": len(tgz),
           "url": "http://source-controller.flux-system.svc.cluster.local./" + rel}
    old = (o.get("status") or {}).get("artifact")
    if old and old.get("digest") == dig and old.get("revision") == revision:
        art["lastUpdateTime"] = old.get("lastUpdateTime", art["lastUpdateTime"])
    if metadata:
        art["metadata"] = metadata
    return art


def artifact_file(cl, o):
    art = (o.get("status") or {}).get("artifact")
    if not art:
        return None
    from .common import state_dir
    p = os.path.join(state_dir(), "clusters", cl["name"], "artifacts", art["path"])
    return p if os.path.exists(p) else None


def _semver_key(t):
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", t)
    return tuple(int(x) for x in m.groups()) if m else None


def reconcile_oci(st, cl, o):
    spec = o["spec"]
    url = spec.get("url", "")
    ref = spec.get("ref") or {}
    m = re.fullmatch(r"oci://([^/]+)/(.+)", url)
    if not m:
        return _set_ready(cl, o, False, "URLInvalid", "URL must be in format 'oci://<domain>/<org>/<repo>'")
    host, repo = m.group(1), m.group(2)
    scheme = "http" if spec.get("insecure") else "https"
    hname = host.split(":")[0]
    local_names = {c["name"] for c in st.data["docker"]["containers"].values()}
    if hname in ("localhost", "127.0.0.1"):
        port = host.partition(":")[2] or "443"
        return _set_ready(cl, o, False, "OCIArtifactPullFailed",
                          "failed to determine artifact digest: Get \"%s://%s/v2/\": dial tcp [::1]:%s: connect: "
                          "connection refused" % (scheme, host, port))
    is_local = ("." not in hname) or hname in local_names
    if not is_local:
        # a public registry: the fake world has internet; synthesize a chart/artifact
        tag = ref.get("tag") or (ref.get("semver") and re.sub(r"[^\d.]", "", ref["semver"]).strip(".")) or "latest"
        digest = ref.get("digest") or "sha256:" + sha_hex(url + ":" + tag)
        rev = "%s@%s" % (tag, digest)
        art = _store_artifact(cl, o, rev, rs.deterministic_tgz(tempfile.mkdtemp(prefix="fake-empty-")))
        return _set_ready(cl, o, True, "Succeeded", "stored artifact for digest '%s'" % rev, {"artifact": art,
                                                                                           "url": url})
    c = dw.registry_on_network(st, hname, "kind")
    if c is None or int(host.partition(":")[2] or (443 if scheme == "https" else 80)) != dw.REGISTRY_CONTAINER_PORT:
        return _set_ready(cl, o, False, "OCIArtifactPullFailed",
                          "failed to determine artifact digest: Get \"%s://%s/v2/\": dial tcp: lookup %s on "
                          "10.96.0.10:53: no such host" % (scheme, host, hname))
    if scheme == "https":
        return _set_ready(cl, o, False, "OCIArtifactPullFailed",
                          "failed to determine artifact digest: Get \"https://%s/v2/\": http: server gave HTTP "
                          "response to HTTPS client" % host)
    root = dw.registry_root(st, c)
    if ref.get("digest"):
        tag = ref["digest"]
    elif ref.get("semver"):
        tags = [t for t in (rs.list_tags(root, repo) or []) if _semver_key(t)]
        if not tags:
            return _set_ready(cl, o, False, "OCIArtifactPullFailed",
                              "failed to determine artifact digest: no match found for semver: %s" % ref["semver"])
        tag = max(tags, key=_semver_key)
    else:
        tag = ref.get("tag") or "latest"
    r = rs.resolve(root, repo, tag)
    if r is None and any(e.startswith("REGISTRY_PROXY_REMOTEURL=") for e in c.get("env", [])) \
            and not tag.startswith("sha256:"):
        # a pull-through cache fetches what it lacks from its upstream (the fake world has internet)
        # and keeps it
        rs.put_chart(root, repo, tag)
        r = rs.resolve(root, repo, tag)
    if r is None:
        return _set_ready(cl, o, False, "OCIArtifactPullFailed",
                          "failed to determine artifact digest: GET %s://%s/v2/%s/manifests/%s: MANIFEST_UNKNOWN: "
                          "manifest unknown; map[Tag:%s]" % (scheme, host, repo, tag, tag))
    digest, data = r
    man = json.loads(data)
    layers = man.get("layers") or []
    sel = (spec.get("layerSelector") or {}).get("mediaType")
    layer = next((l for l in layers if not sel or l.get("mediaType") == sel), None)
    if layer is None:
        return _set_ready(cl, o, False, "OCILayerOperationFailed",
                          "failed to find layer with media type '%s' in artifact" % sel)
    blob = rs.get_blob(root, layer["digest"])
    rev = digest if ref.get("digest") else "%s@%s" % (tag, digest)
    old = (o.get("status") or {}).get("artifact") or {}
    art = _store_artifact(cl, o, rev, blob, man.get("annotations"))
    if old.get("revision") != rev:
        _log(cl, "source-controller", o, "stored artifact with revision '%s' from '%s'" % (rev, url))
    return _set_ready(cl, o, True, "Succeeded", "stored artifact for digest '%s'" % rev, {"artifact": art,
                                                                                       "url": url})


def _git_secret_value(cl, o, key):
    ref = (o["spec"].get("secretRef") or {}).get("name")
    secret = K.find(cl, "Secret", o["metadata"]["namespace"], ref) if ref else None
    data = (secret or {}).get("data") or {}
    if key in data:
        import base64
        return base64.b64decode(data[key]).decode()
    return ((secret or {}).get("stringData") or {}).get(key)


def reconcile_git(st, cl, o):
    spec = o["spec"]
    url = spec.get("url", "")
    path = st.data.get("git_repos", {}).get(url)
    ref = spec.get("ref") or {}
    branch = ref.get("branch") or "master"
    if isinstance(path, dict):  # a private repository: source-controller must authenticate
        want_password, want_identity = path.get("password"), path.get("identity")
        path = path["path"]
        if want_password is not None and _git_secret_value(cl, o, "password") != want_password:
            return _set_ready(cl, o, False, "GitOperationFailed",
                              "failed to checkout and determine revision: unable to clone '%s': authentication "
                              "required: Repository not found." % url)
        if want_identity is not None and (_git_secret_value(cl, o, "identity") != want_identity
                                          or not _git_secret_value(cl, o, "known_hosts")):
            return _set_ready(cl, o, False, "GitOperationFailed",
                              "failed to checkout and determine revision: unable to clone '%s': ssh: handshake "
                              "failed: ssh: unable to authenticate, attempted methods [none publickey], no "
                              "supported methods remain" % url)
    if not path or not os.path.isdir(path):
        return _set_ready(cl, o, False, "GitOperationFailed",
                          "failed to checkout and determine revision: unable to clone '%s': dial tcp: lookup %s: "
                          "no such host" % (url, re.sub(r"^\w+://([^/@]*@)?([^/:]+).*$", r"\2", url)))
    tgz = rs.deterministic_tgz(path, ignore=(".git",))
    import hashlib
    sha1 = hashlib.sha1(tgz).hexdigest()
    rev = "%s@sha1:%s" % (ref.get("tag") or branch, sha1)
    art = _store_artifact(cl, o, rev, tgz)
    return _set_ready(cl, o, True, "Succeeded", "stored artifact for revision '%s'" % rev, {"artifact": art})


def reconcile_helmrepo(st, cl, o):
    spec = o["spec"]
    if spec.get("type") == "oci":
        status = copy.deepcopy(o.get("status") or {})
        status["observedGeneration"] = o["metadata"].get("generation")
        K.set_status(cl, o, status)
        _mark(o, True)
        return
    rev = "sha256:" + sha_hex(spec.get("url", ""))
    art = _store_artifact(cl, o, rev, b"index")
    _set_ready(cl, o, True, "Succeeded", "stored artifact: revision '%s'" % rev, {"artifact": art,
                                                                                 "url": spec.get("url")})


def reconcile_sources(st, cl):
    if not controller_ready(cl, "source-controller"):
        return
    for kind, fn in (("OCIRepository", reconcile_oci), ("GitRepository", reconcile_git),
                     ("HelmRepository", reconcile_helmrepo)):
        for o in K.objs_of_kind(cl, kind, group="source.toolkit.fluxcd.io"):
            if needs_reconcile(o):
                fn(st, cl, o)


# ---------------------------------------------------------------- kustomize

VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
SUBST = re.compile(r"\$(\$)?\{([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[=\-])([^}]*))?\}")


def envsubst(text, vars_):
    def rep(m):
        if m.group(1):  # $${VAR} -> ${VAR}
            return m.group(0)[1:]
        name, op, dflt = m.group(2), m.group(3), m.group(4)
        val = vars_.get(name)
        if op in (":=", ":-"):
            return val if val else dflt
        if op in ("=", "-"):
            return val if val is not None else dflt
        return val if val is not None else ""
    return SUBST.sub(rep, text)


def load_vars(cl, ks):
    import base64
    pb = (ks["spec"].get("postBuild") or {})
    vars_ = {}
    for sf in pb.get("substituteFrom") or []:
        kind, name = sf.get("kind"), sf.get("name")
        o = K.find(cl, kind, ks["metadata"]["namespace"], name)
        if o is None:
            if sf.get("optional"):
                continue
            raise BuildError("SubstituteFailed" if False else "BuildFailed",
                             "%s/%s not found" % (kind, name) if False else
                             "substitute from '%s/%s' error: %s \"%s\" not found"
                             % (kind, name, kind.lower() + "s", name))
        data = o.get("data") or {}
        for k, v in data.items():
            if kind == "Secret":
                v = base64.b64decode(v).decode()
            vars_[k] = v
    for k, v in (pb.get("substitute") or {}).items():
        vars_[k] = str(v)
    for k in vars_:
        if not VAR_NAME.match(k):
            raise BuildError("BuildFailed", "'%s' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
                             % k)
    return vars_


class BuildError(Exception):
    def __init__(self, reason, msg):
        super().__init__(msg)
        self.reason = reason
        self.msg = msg


def generate_kustomization(d):
    """What Flux does when spec.path has no kustomization.yaml."""
    yaml = load_yaml()
    res = []
    for entry in sorted(os.listdir(d)):
        p = os.path.join(d, entry)
        if os.path.isdir(p):
            if any(os.path.exists(os.path.join(p, k)) for k in ("kustomization.yaml", "kustomization.yml",
                                                                "Kustomization")):
                res.append(entry)
            else:
                generate_kustomization(p)
                if any(True for _ in os.scandir(p)):
                    res.append(entry)
        elif entry.endswith((".yaml", ".yml", ".json")):
            try:
                with open(p) as f:
                    docs = [x for x in yaml.safe_load_all(f) if x]
            except Exception:
                continue
            if docs and all(isinstance(x, dict) and "apiVersion" in x and "kind" in x for x in docs):
                res.append(entry)
    with open(os.path.join(d, "kustomization.yaml"), "w") as f:
        yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                        "resources": res}, f)


def _kustomize(art_path, rel, patches=None):
    """`kubectl kustomize` of REL in the artifact: its output. A build depends only on the artifact's
    content, the path, the Kustomization's patches and the kubectl, so a successful one is kept beside
    the artifact and not run again for the same four (the controller builds on every reconcile; the
    result is the same)."""
    with open(art_path, "rb") as f:
        data = f.read()
    key = sha_hex("%s\0%s\0%s\0%s" % (sha_hex(data), rel, real_kubectl(), json.dumps(patches, sort_keys=True)))
    cached = os.path.join(os.path.dirname(art_path), ".builds", key + ".yaml")
    try:
        with open(cached) as f:
            return f.read()
    except OSError:
        pass
    tmp = tempfile.mkdtemp(prefix="kustomization-")
    try:
        rs.extract_tgz(data, tmp)
        d = os.path.normpath(os.path.join(tmp, rel))
        if not d.startswith(tmp) or not os.path.isdir(d):
            raise BuildError("ArtifactFailed", "kustomization path not found: stat %s: no such file or directory"
                             % d)
        if not any(os.path.exists(os.path.join(d, k)) for k in ("kustomization.yaml", "kustomization.yml",
                                                                "Kustomization")):
            generate_kustomization(d)
        if patches:
            # kustomize-controller adds spec.patches to the kustomization it builds: a wrapper here.
            wrap = tempfile.mkdtemp(prefix="patches-", dir=tmp)
            yaml = load_yaml()
            with open(os.path.join(wrap, "kustomization.yaml"), "w") as f:
                yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                "resources": [os.path.relpath(d, wrap)], "patches": patches}, f)
            d = wrap
        p = subprocess.run([real_kubectl(), "kustomize", "--load-restrictor=LoadRestrictionsNone", d],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise BuildError("BuildFailed", "kustomize build failed: %s" % p.stderr.strip().replace(tmp, "")
                             .replace("Error: ", "").replace("error: ", ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    part = "%s.%d" % (cached, os.getpid())
    with open(part, "w") as f:
        f.write(p.stdout)
    os.replace(part, cached)
    return p.stdout


def build(cl, ks, art_path):
    yaml = load_yaml()
    rel = (ks["spec"].get("path") or "./").lstrip("/")
    docs = [x for x in yaml.safe_load_all(_kustomize(art_path, rel, ks["spec"].get("patches"))) if x]
    pb = ks["spec"].get("postBuild")
    if pb is not None:
        vars_ = load_vars(cl, ks)
        if vars_ or pb.get("substituteStrategy") == "Always":
            out = []
            for d in docs:
                md = d.get("metadata") or {}
                if (md.get("labels") or {}).get("kustomize.toolkit.fluxcd.io/substitute") == "disabled" or \
                        (md.get("annotations") or {}).get("kustomize.toolkit.fluxcd.io/substitute") == "disabled":
                    out.append(d)
                    continue
                text = yaml.safe_dump(d, sort_keys=False)
                try:
                    out.append(yaml.safe_load(envsubst(text, vars_)))
                except Exception as e:
                    raise BuildError("BuildFailed", "post build failed for '%s/%s': %s" % (
                        d.get("kind"), md.get("name"), e))
            docs = out
    tns = ks["spec"].get("targetNamespace")
    if tns:
        for d in docs:
            m = K.mapping_for_kind(cl, d.get("apiVersion", ""), d.get("kind", ""))
            if m is None or m["namespaced"]:
                d.setdefault("metadata", {})["namespace"] = tns
    return docs


def kstatus(cl, o):
    """-> 'Current' | 'InProgress' | 'Failed' | 'NotFound'."""
    if o is None:
        return "NotFound"
    k = o["kind"]
    st = o.get("status") or {}
    gen = o["metadata"].get("generation", 1)
    if k == "Deployment":
        want = o["spec"].get("replicas", 1)
        if st.get("observedGeneration", 0) < gen:
            return "InProgress"
        if st.get("updatedReplicas", 0) < want or st.get("availableReplicas", 0) < want or \
                st.get("replicas", 0) > want:
            return "InProgress"
        return "Current"
    if k == "StatefulSet":
        return "Current" if st.get("readyReplicas", 0) >= o["spec"].get("replicas", 1) else "InProgress"
    if k == "DaemonSet":
        return "Current" if st.get("numberReady", 0) >= st.get("desiredNumberScheduled", 0) else "InProgress"
    if k == "Pod":
        c = K.get_condition(o, "Ready")
        return "Current" if c and c["status"] == "True" else "InProgress"
    if k == "CustomResourceDefinition":
        c = K.get_condition(o, "Established")
        return "Current" if c and c["status"] == "True" else "InProgress"
    c = K.get_condition(o, "Ready")
    if c is not None:
        if c["status"] == "True":
            return "Current"
        return "Failed" if c["status"] == "False" else "InProgress"
    return "Current"


STAGE1 = ("CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding")


def _inv_id(m, o):
    return "%s_%s_%s_%s" % (o["metadata"].get("namespace", ""), o["metadata"]["name"], m["group"], m["kind"])


def _ready_expr(expr, ks, dep):
    """-> (result, error): the expression compiled and evaluated as CEL (cel-python), with `self` and
    `dep` as their JSON maps, as kustomize-controller's evalReadyExpr does. A compile error or a
    non-boolean result is the controller's terminal error; an evaluation error (a missing key) is not."""
    import celpy
    from celpy import celtypes
    env = celpy.Environment()
    try:
        ast = env.compile(expr)
    except celpy.CELParseError as e:
        return False, "ERROR: <input>: %s" % str(e).splitlines()[0]
    clean = lambda o: {k: v for k, v in o.items() if k != "_fake"}
    try:
        out = env.program(ast).evaluate({"self": celpy.json_to_cel(clean(ks)), "dep": celpy.json_to_cel(clean(dep))})
    except celpy.CELEvalError:
        return False, None
    if isinstance(out, celpy.CELEvalError):
        return False, None
    if not isinstance(out, celtypes.BoolType):
        return False, "expression did not evaluate to a boolean: %r" % (out,)
    return bool(out), None


def reconcile_ks(st, cl, ks):
    from .controllers import workloads
    spec = ks["spec"]
    ns = ks["metadata"]["namespace"]
    name = ks["metadata"]["name"]
    status = ks.get("status") or {}
    sref = spec.get("sourceRef") or {}
    sns = sref.get("namespace") or ns
    src = K.find(cl, sref.get("kind"), sns, sref.get("name"))
    if src is None:
        return _set_ready(cl, ks, False, "ArtifactFailed", "Source '%s/%s/%s' not found"
                          % (sref.get("kind"), sns, sref.get("name")))
    art_path = artifact_file(cl, src)
    if art_path is None:
        return _set_ready(cl, ks, False, "ArtifactFailed", "Source artifact not found, retrying in 30s")
    revision = src["status"]["artifact"]["revision"]
    for dep in spec.get("dependsOn") or []:
        dns = dep.get("namespace") or ns
        d = K.find(cl, "Kustomization", dns, dep["name"])
        if d is None:
            return _set_ready(cl, ks, False, "DependencyNotReady", "dependency '%s/%s' not found: "
                              "kustomizations.kustomize.toolkit.fluxcd.io \"%s\" not found" % (dns, dep["name"], dep["name"]))
        if dep.get("readyExpr"):
            # kustomize-controller v1.9: the CEL expression, with `self` and `dep` as maps, REPLACES the
            # built-in check (unless the AdditiveCELDependencyCheck feature gate is on: it is off by default)
            ready, err = _ready_expr(dep["readyExpr"], ks, d)
            if err:
                msg = ("Reconciliation failed terminally due to configuration error: failed to evaluate "
                       "dependency %s: %s" % (dep["name"], err))
                _set_ready(cl, ks, False, "InvalidCELExpression", msg)
                status = copy.deepcopy(ks["status"])  # terminal: stalled, observedGeneration moves
                K.set_condition({"status": status}, "Stalled", "True", "InvalidCELExpression", msg,
                                ks["metadata"].get("generation"))
                status["observedGeneration"] = ks["metadata"].get("generation")
                K.set_status(cl, ks, status)
                return None
            if not ready:
                return _set_ready(cl, ks, False, "DependencyNotReady", "dependency '%s/%s' is not ready according "
                                  "to readyExpr eval" % (dns, dep["name"]))
            continue
        c = K.get_condition(d, "Ready") if d else None
        if not c or c["status"] != "True" or (d["status"].get("observedGeneration") != d["metadata"].get(
                "generation")):
            return _set_ready(cl, ks, False, "DependencyNotReady", "dependency '%s/%s' is not ready"
                              % (dns, dep["name"]))
        # kustomize-controller's checkDependencies: a dependency reading the same source must have applied
        # the revision this one is about to apply (until then: requeued after --requeue-dependency, 30 s)
        dref = d["spec"].get("sourceRef") or {}
        if (dref.get("kind"), dref.get("namespace") or dns, dref.get("name")) == (sref.get("kind"), sns,
                                                                                  sref.get("name")) \
                and d["status"].get("lastAppliedRevision") != revision:
            return _set_ready(cl, ks, False, "DependencyNotReady", "dependency '%s/%s' revision is not up to date"
                              % (dns, dep["name"]))
    attempted = {"lastAttemptedRevision": revision}
    try:
        docs = build(cl, ks, art_path)
    except BuildError as e:
        return _set_ready(cl, ks, False, e.reason, e.msg, attempted)
    kl = {"kustomize.toolkit.fluxcd.io/name": name, "kustomize.toolkit.fluxcd.io/namespace": ns}
    for d in docs:
        d.setdefault("metadata", {}).setdefault("labels", {}).update(kl)
    stage1 = [d for d in docs if d.get("kind") in STAGE1]
    stage2 = [d for d in docs if d.get("kind") not in STAGE1]
    applied = []
    changes = []
    for stage in (stage1, stage2):
        plan = []
        errs = []
        for d in stage:
            m = K.mapping_for_kind(cl, d.get("apiVersion", ""), d.get("kind", ""))
            ident = "%s/%s%s" % (d.get("kind"), (d["metadata"].get("namespace") + "/") if d["metadata"].get(
                "namespace") else "", d["metadata"].get("name"))
            if m is None:
                errs.append('%s dry-run failed: no matches for kind "%s" in version "%s"'
                            % (ident, d.get("kind"), d.get("apiVersion")))
                continue
            if m["namespaced"] and not d["metadata"].get("namespace"):
                errs.append("%s namespace not specified: the server could not find the requested resource"
                            % ident)
                continue
            if m["namespaced"] and K.find(cl, "Namespace", "", d["metadata"]["namespace"]) is None and not any(
                    x.get("kind") == "Namespace" and x["metadata"]["name"] == d["metadata"]["namespace"]
                    for x in stage1):
                errs.append('%s dry-run failed (NotFound): namespaces "%s" not found'
                            % (ident, d["metadata"]["namespace"]))
                continue
            try:
                K.validate(cl, m, copy.deepcopy(d))
            except K.ApiError as e:
                errs.append("%s dry-run failed (%s): %s" % (ident, e.code, e.msg))
                continue
            plan.append((m, d))
        if errs:
            return _set_ready(cl, ks, False, "ReconciliationFailed", "\n".join(errs), attempted)
        for m, d in plan:
            try:
                verb, o = K.apply_object(cl, m, d, server_side=True, manager="kustomize-controller")
            except K.ApiError as e:
                return _set_ready(cl, ks, False, "ReconciliationFailed", "%s/%s apply failed: %s" % (
                    d["kind"], d["metadata"]["name"], e.msg), attempted)
            applied.append((m, o))
            if verb != "unchanged":
                changes.append("%s/%s %s" % (d["kind"], d["metadata"]["name"], verb))
        if stage is stage1:
            from .controllers import reconcile_crds
            reconcile_crds(cl)
    if changes:
        _log(cl, "kustomize-controller", ks, "server-side apply completed: %s" % ", ".join(changes))
    # prune
    new_inv = [{"id": _inv_id(m, o), "v": o["apiVersion"].rpartition("/")[2]} for m, o in applied]
    new_ids = {e["id"] for e in new_inv}
    old_inv = ((status.get("inventory") or {}).get("entries") or [])
    if spec.get("prune"):
        for e in old_inv:
            if e["id"] in new_ids:
                continue
            _prune_entry(cl, e)
    cl.setdefault("ks_inventories", {})["%s/%s" % (ns, name)] = {"prune": bool(spec.get("prune")),
                                                                  "entries": new_inv}
    extra = dict(attempted)
    extra["inventory"] = {"entries": sorted(new_inv, key=lambda e: e["id"])}
    # health
    workloads(st, cl)
    checks = []
    if spec.get("wait"):
        checks = [o for m, o in applied]
    else:
        for hc in spec.get("healthChecks") or []:
            checks.append(K.find(cl, hc.get("kind"), hc.get("namespace", ""), hc.get("name")) or
                          {"kind": hc.get("kind"), "metadata": {"name": hc.get("name"),
                                                                 "namespace": hc.get("namespace")},
                           "_missing": True})
    bad = []
    for o in checks:
        cur = K.find(cl, o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) \
            if not o.get("_missing") else None
        s = kstatus(cl, cur)
        if s != "Current":
            bad.append("%s/%s%s status: '%s'" % (o["kind"], (o["metadata"].get("namespace") + "/")
                                                 if o["metadata"].get("namespace") else "", o["metadata"]["name"], s))
    timeout = spec.get("timeout") or spec.get("interval") or "5m"
    try:
        timeout = fmt_duration(parse_duration(timeout))
    except ValueError:
        pass
    if bad:
        h = {"status": copy.deepcopy(ks.get("status") or {})}
        msg = "health check failed after %s: timeout waiting for: [%s]" % (timeout, ", ".join(bad))
        extra_st = dict(extra)
        res = _set_ready(cl, ks, False, "HealthCheckFailed", msg, extra_st)
        hstat = copy.deepcopy(ks["status"])
        K.set_condition({"status": hstat}, "Healthy", "False", "HealthCheckFailed", msg,
                        ks["metadata"].get("generation"))
        K.set_status(cl, ks, hstat)
        _log(cl, "kustomize-controller", ks, msg, "error")
        return res
    extra["lastAppliedRevision"] = revision
    _set_ready(cl, ks, True, "ReconciliationSucceeded", "Applied revision: %s" % revision, extra)
    if checks:
        hstat = copy.deepcopy(ks["status"])
        K.set_condition({"status": hstat}, "Healthy", "True", "Succeeded", "Health check passed in 0s",
                        ks["metadata"].get("generation"))
        K.set_status(cl, ks, hstat)
    ks["_fake"]["src_rev"] = revision
    if (status.get("lastAppliedRevision") != revision) or changes:
        _log(cl, "kustomize-controller", ks, "Reconciliation finished, next run in %s"
             % (spec.get("interval") or "10m"))


def _prune_entry(cl, e):
    ns, name, group, kind = e["id"].split("_", 3)
    for o in list(cl["objects"].values()):
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace", "") == ns \
                and o["apiVersion"].rpartition("/")[0] == group:
            if (o["metadata"].get("annotations") or {}).get("kustomize.toolkit.fluxcd.io/prune") == "disabled":
                continue
            K.delete_object(cl, o)


def _ks_order(cl, kss):
    done, order = set(), []
    byname = {(k["metadata"]["namespace"], k["metadata"]["name"]): k for k in kss}

    def visit(k, stack=()):
        key = (k["metadata"]["namespace"], k["metadata"]["name"])
        if key in done or key in stack:
            return
        for d in k["spec"].get("dependsOn") or []:
            dk = (d.get("namespace") or key[0], d["name"])
            if dk in byname:
                visit(byname[dk], stack + (key,))
        done.add(key)
        order.append(k)
    for k in kss:
        visit(k)
    return order


def reconcile_kustomizations(st, cl):
    if not controller_ready(cl, "kustomize-controller"):
        return
    kss = K.objs_of_kind(cl, "Kustomization", group="kustomize.toolkit.fluxcd.io")
    present = {"%s/%s" % (k["metadata"]["namespace"], k["metadata"]["name"]) for k in kss}
    for key, inv in list(cl.get("ks_inventories", {}).items()):
        if key not in present:
            if inv.get("prune"):
                for e in inv["entries"]:
                    _prune_entry(cl, e)
            del cl["ks_inventories"][key]
    for ks in _ks_order(cl, kss):
        sref = ks["spec"].get("sourceRef") or {}
        src = K.find(cl, sref.get("kind"), sref.get("namespace") or ks["metadata"]["namespace"], sref.get("name"))
        src_rev = ((src or {}).get("status") or {}).get("artifact", {}).get("revision")
        changed = src_rev is not None and src_rev != ks.get("_fake", {}).get("src_rev")
        deps_changed = False
        for dep in ks["spec"].get("dependsOn") or []:
            d = K.find(cl, "Kustomization", dep.get("namespace") or ks["metadata"]["namespace"], dep["name"])
            if d and d.get("_fake", {}).get("last", 0) > ks.get("_fake", {}).get("last", 0) and \
                    not ks.get("_fake", {}).get("ok"):
                deps_changed = True
        if changed and ks.get("_fake", {}).get("busy_next"):  # FakeWorld.busy_kustomization(next_revision=True)
            ks["_fake"]["busy"] = ks["_fake"].pop("busy_next")
        if ks.get("_fake", {}).get("busy"):  # FakeWorld.busy_kustomization: another worker holds it
            status = copy.deepcopy(ks.get("status") or {})
            K.set_condition({"status": status}, "Ready", "Unknown", "Progressing", "Reconciliation in progress",
                            ks["metadata"].get("generation"))
            K.set_condition({"status": status}, "Reconciling", "True", "Progressing", "Reconciliation in progress",
                            ks["metadata"].get("generation"))
            K.set_status(cl, ks, status)
            continue
        if needs_reconcile(ks, changed or deps_changed):
            reconcile_ks(st, cl, ks)


# ---------------------------------------------------------------- helm

def _hr_chart(cl, hr):
    """-> (chart name, version, source obj or None, error)."""
    spec = hr["spec"]
    ns = hr["metadata"]["namespace"]
    if spec.get("chartRef"):
        cr = spec["chartRef"]
        src = K.find(cl, cr.get("kind"), cr.get("namespace") or ns, cr.get("name"))
        if src is None:
            plural = {"OCIRepository": "ocirepositories", "HelmChart": "helmcharts",
                      "ExternalArtifact": "externalartifacts"}.get(cr.get("kind"), cr.get("kind", "").lower() + "s")
            return None, None, None, "could not get Source object: %s.source.toolkit.fluxcd.io \"%s\" not found" % (
                plural, cr.get("name"))
        c = K.get_condition(src, "Ready")
        if not c or c["status"] != "True" or not (src.get("status") or {}).get("artifact"):
            # helm-controller's isReady(): the source's own Ready message, or that it has no artifact
            why = (c or {}).get("message") if c and c["status"] == "False" else (
                "does not have an artifact" if c else "latest generation of object has not been reconciled")
            return None, None, src, "%s '%s/%s' is not ready: %s" % (
                src["kind"], src["metadata"]["namespace"], src["metadata"]["name"], why)
        url = src["spec"].get("url", "")
        chart = url.rstrip("/").rsplit("/", 1)[-1]
        ref = src["spec"].get("ref") or {}
        version = ref.get("tag") or re.sub(r"[^\d.]", "", ref.get("semver", "")).strip(".") or "0.0.0"
        return chart, version, src, None
    cs = ((spec.get("chart") or {}).get("spec") or {})
    sref = cs.get("sourceRef") or {}
    repo = K.find(cl, sref.get("kind", "HelmRepository"), sref.get("namespace") or ns, sref.get("name"))
    if repo is None:
        return None, None, None, "could not get HelmChart: source '%s/%s' not found" % (
            sref.get("kind"), sref.get("name"))
    if repo["spec"].get("type") != "oci":
        c = K.get_condition(repo, "Ready")
        if not c or c["status"] != "True":
            return None, None, repo, "HelmRepository '%s' is not ready" % sref.get("name")
    version = cs.get("version") or "*"
    version = re.sub(r"[^\d.]", "", version).strip(".") or "1.0.0"
    # a HelmChart object like helm-controller creates
    hc_ns = sref.get("namespace") or ns
    hc = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
          "metadata": {"name": "%s-%s" % (ns, hr["metadata"]["name"]), "namespace": hc_ns},
          "spec": {"chart": cs.get("chart"), "version": cs.get("version", "*"), "sourceRef": sref,
                   "interval": cs.get("interval", "1m"), "reconcileStrategy": "ChartVersion"}}
    m = K.mapping_for_kind(cl, "source.toolkit.fluxcd.io/v1", "HelmChart")
    if m:
        _, hco = K.put_object(cl, m, hc, "helm-controller")
        if K.get_condition(hco, "Ready") is None:
            art = _store_artifact(cl, hco, version, b"chart")
            _set_ready(cl, hco, True, "ChartPullSucceeded", "pulled '%s' chart with version '%s'"
                       % (cs.get("chart"), version), {"artifact": art})
    return cs.get("chart"), version, repo, None


def _values(cl, hr):
    import base64
    yaml = load_yaml()
    vals = {}
    for vf in hr["spec"].get("valuesFrom") or []:
        o = K.find(cl, vf.get("kind"), hr["metadata"]["namespace"], vf.get("name"))
        if o is None:
            if vf.get("optional"):
                continue
            raise BuildError("InstallFailed", "could not resolve %s chart values reference '%s/%s' with key '%s': "
                             "%s \"%s\" not found" % (vf.get("kind"), hr["metadata"]["namespace"], vf.get("name"),
                                                      vf.get("valuesKey", "values.yaml"),
                                                      vf.get("kind", "").lower() + "s", vf.get("name")))
        raw = (o.get("data") or {}).get(vf.get("valuesKey", "values.yaml"), "")
        if vf.get("kind") == "Secret":
            raw = base64.b64decode(raw).decode()
        _deep_merge(vals, yaml.safe_load(raw) or {})
    _deep_merge(vals, copy.deepcopy(hr["spec"].get("values") or {}))
    return vals


def _deep_merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _deep_merge(a[k], v)
        else:
            a[k] = v
    return a


def _get(vals, path, default):
    cur = vals
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


def _dep(name, ns, labels, image, port, pname="http", replicas=1, args=None):
    sel = {k: v for k, v in labels.items() if k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app")}
    c = {"name": labels.get("app.kubernetes.io/name", name), "image": image,
         "ports": [{"containerPort": port, "name": pname, "protocol": "TCP"}]}
    if args:
        c["args"] = args
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns,
                                                                        "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [c]}}}}


def _svc(name, ns, labels, port, target, pname="http"):
    sel = {k: v for k, v in labels.items() if k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app")}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
            "spec": {"type": "ClusterIP", "selector": sel,
                     "ports": [{"name": pname, "port": port, "targetPort": target, "protocol": "TCP"}]}}


def chart_objects(chart, version, release, ns, vals):
    """Objects a chart would create (kube-prometheus-stack modelled in kps_chart; other charts: one Deployment)."""
    if chart == "kube-prometheus-stack":
        from . import kps_chart
        return kps_chart.objects(release, version.split("+")[0], ns, vals)
    labels = {"app.kubernetes.io/name": chart, "app.kubernetes.io/instance": release}
    name = release if chart in release else "%s-%s" % (release, chart)
    return [_dep(name[:63], ns, labels, "fake.local/charts/%s:%s" % (chart, version.split("+")[0]), 8080),
            _svc(name[:63], ns, labels, 80, "http")], []


def hook_jobs(chart, release, vals):
    """[(Job name, image)] of the chart's pre-install/pre-upgrade hooks."""
    if chart == "kube-prometheus-stack":
        from . import kps_chart
        return kps_chart.hook_jobs(release, vals)
    return []


def kstatus_message(o):
    """What kstatus (fluxcd/cli-utils, as Helm 4's waiter uses it) says of a workload in progress."""
    st = o.get("status") or {}
    if o["kind"] == "Deployment":
        spec = o["spec"].get("replicas", 1)
        have, updated = st.get("replicas", 0), st.get("updatedReplicas", 0)
        avail, ready = st.get("availableReplicas", 0), st.get("readyReplicas", 0)
        if spec > have:
            return "Replicas: %d/%d" % (have, spec)
        if spec > updated:
            return "Updated: %d/%d" % (updated, spec)
        if have > spec:
            return "Pending termination: %d" % (have - spec)
        if updated > avail:
            return "Available: %d/%d" % (avail, updated)
        return "Ready: %d/%d" % (ready, spec)
    if o["kind"] == "StatefulSet":
        spec = o["spec"].get("replicas", 1)
        if spec > st.get("replicas", 0):
            return "Replicas: %d/%d" % (st.get("replicas", 0), spec)
        return "Ready: %d/%d" % (st.get("readyReplicas", 0), spec)
    if o["kind"] == "DaemonSet":
        want = st.get("desiredNumberScheduled", 0)
        if want > st.get("numberAvailable", st.get("numberReady", 0)):
            return "Available: %d/%d" % (st.get("numberAvailable", st.get("numberReady", 0)), want)
        return "Ready: %d/%d" % (st.get("numberReady", 0), want)
    return "Resource is not ready"


# helm-controller v1.6.3 (Helm 4) status texts: internal/reconcile/{install,upgrade,uninstall}.go,
# internal/reconcile/atomic_release.go, internal/controller/helmrelease_controller.go.
RESET_ANN = "reconcile.fluxcd.io/resetAt"


def _hr_conditions(cl, hr, status, **conds):
    """Set (type=(status, reason, message)) or delete (type=None) conditions, then the status."""
    gen = hr["metadata"].get("generation")
    holder = {"status": status}
    for ctype, val in conds.items():
        if val is None:
            status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != ctype]
        else:
            K.set_condition(holder, ctype, val[0], val[1], val[2], gen)
    order = {"Reconciling": 0, "Stalled": 1, "Ready": 2, "Released": 3, "Remediated": 4}
    status["conditions"] = sorted(status.get("conditions") or [], key=lambda c: order.get(c["type"], 9))
    status["observedGeneration"] = gen
    req = (hr["metadata"].get("annotations") or {}).get(REQ_ANN)
    if req:
        status["lastHandledReconcileAt"] = req
    K.set_status(cl, hr, status)


def _hr_prereq_failed(cl, hr, reason, message):
    status = copy.deepcopy(hr.get("status") or {})
    _hr_conditions(cl, hr, status, Reconciling=("True", "Progressing", "Fulfilling prerequisites"),
                   Ready=("False", reason, message))
    _mark(hr, False)


def _chart_version(src, version):
    """helm-controller appends the OCI artifact's digest (12 hex) to the chart version of a chartRef
    OCIRepository, so a re-pushed tag counts as a new chart (mutateChartWithSourceRevision)."""
    if src is None or src.get("kind") != "OCIRepository":
        return version, ""
    rev = ((src.get("status") or {}).get("artifact") or {}).get("revision", "")
    digest = rev.split("@")[-1]
    if not digest.startswith("sha256:"):
        return version, ""
    return "%s+%s" % (version, digest.split(":", 1)[1][:12]), digest


def _apply_release(cl, hr, objs, release, tns):
    name, ns = hr["metadata"]["name"], hr["metadata"]["namespace"]
    hl = {"app.kubernetes.io/managed-by": "Helm", "helm.toolkit.fluxcd.io/name": name,
          "helm.toolkit.fluxcd.io/namespace": ns}
    inv = []
    for o in objs:
        o["metadata"].setdefault("labels", {}).update(hl)
        o["metadata"].setdefault("annotations", {}).update({"meta.helm.sh/release-name": release,
                                                            "meta.helm.sh/release-namespace": tns})
        m = K.mapping_for_kind(cl, o["apiVersion"], o["kind"])
        if m is None:
            continue
        K.put_object(cl, m, o, "helm")
        inv.append((o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]))
    f = hr["_fake"]
    for old in f.get("inventory", []):
        if tuple(old) not in inv:
            x = K.find(cl, old[0], old[1], old[2])
            if x:
                K.delete_object(cl, x)
    f["inventory"] = [list(x) for x in inv]
    return inv


def _remediate(st, cl, hr, f, action, tns, release):
    if action == "install":
        _apply_release(cl, hr, [], release, tns)
    else:
        prev = f["history"][-1]
        objs, crs = chart_objects(prev["chart"], prev["chartVersion"], release, tns, prev["values"])
        _apply_release(cl, hr, objs + crs, release, tns)
    workloads_light(st, cl)


def reconcile_hr(st, cl, hr):
    spec = hr["spec"]
    ns = hr["metadata"]["namespace"]
    name = hr["metadata"]["name"]
    f = hr.setdefault("_fake", {})
    gen = hr["metadata"].get("generation")
    for dep in spec.get("dependsOn") or []:
        dns = dep.get("namespace") or ns
        d = K.find(cl, "HelmRelease", dns, dep["name"])
        c = K.get_condition(d, "Ready") if d else None
        if not c or c["status"] != "True":
            return _hr_prereq_failed(cl, hr, "DependencyNotReady", "dependency '%s/%s' is not ready"
                                     % (dns, dep["name"]))
    chart, version, src, errmsg = _hr_chart(cl, hr)
    if errmsg:
        return _hr_prereq_failed(cl, hr, "SourceNotReady" if src else "ArtifactFailed", errmsg)
    version, digest = _chart_version(src, version)
    try:
        vals = _values(cl, hr)
    except BuildError as e:
        return _hr_prereq_failed(cl, hr, "ValuesError", e.msg)
    tns = spec.get("targetNamespace") or ns
    release = spec.get("releaseName") or ("%s-%s" % (spec["targetNamespace"], name) if spec.get("targetNamespace")
                                          else name)
    hist = f.setdefault("history", [])
    action = "install" if not hist else "upgrade"
    retries = int(((spec.get(action) or {}).get("remediation") or {}).get("retries", 0))
    counter = "%s_failures" % action
    status = copy.deepcopy(hr.get("status") or {})
    digest_vals = sha_hex(json.dumps([chart, version, vals], sort_keys=True))
    reset = (hr["metadata"].get("annotations") or {}).get(RESET_ANN)
    if f.get("attempted") != [gen, version, digest_vals] or (reset and reset != f.get("reset_handled")):
        # action.MustResetFailures: a new generation, chart version or values (or `flux reconcile hr
        # --reset`) is a new desired state, whose attempts count anew
        f["attempted"], f["reset_handled"] = [gen, version, digest_vals], reset
        f["install_failures"] = f["upgrade_failures"] = 0
        for key in ("installFailures", "upgradeFailures"):
            status.pop(key, None)
        if reset:
            status["lastHandledResetAt"] = reset
    status["lastAttemptedGeneration"] = gen
    if f.get(counter, 0) > retries:
        # atomic_release.go: no retries left; stalled until a new generation, chart, values or a reset
        _hr_conditions(cl, hr, status, Reconciling=None, Stalled=(
            "True", "RetriesExceeded", "Failed to %s after %d attempt(s)" % (action, f[counter])))
        return _mark(hr, True)

    def failed(helm_error):
        f[counter] = f.get(counter, 0) + 1
        status["failures"] = status.get("failures", 0) + 1
        status["%sFailures" % action] = f[counter]
        status["lastAttemptedReleaseAction"] = action
        status["lastAttemptedRevision"] = version
        if digest:
            status["lastAttemptedRevisionDigest"] = digest
        msg = "Helm %s failed for release %s/%s with chart %s@%s: %s" % (action, tns, release, chart, version,
                                                                          helm_error)
        reason = "InstallFailed" if action == "install" else "UpgradeFailed"
        _log(cl, "helm-controller", hr, msg, "error")
        # (every attempt starts without the last one's Remediated condition)
        conds = {"Released": ("False", reason, msg), "Ready": ("False", reason, msg), "Remediated": None}
        if f[counter] <= retries:
            # remediation: an install is uninstalled (its objects deleted), an upgrade rolled back (the
            # previous release's objects applied again); then retried
            _remediate(st, cl, hr, f, action, tns, release)
            if action == "install":
                rem = ("True", "UninstallSucceeded", "Helm uninstall succeeded for release %s/%s.v1 with chart %s@%s"
                       % (tns, release, chart, version))
            else:
                prev = hist[-1]
                rem = ("True", "RollbackSucceeded", "Helm rollback to previous release %s/%s.v%d with chart %s@%s "
                       "succeeded" % (tns, release, prev["version"], chart, prev["chartVersion"]))
            conds.update(Remediated=rem, Ready=("False",) + rem[1:],
                         Reconciling=("True", "ProgressingWithRetry", rem[2]))
        else:
            conds.update(Reconciling=None, Stalled=("True", "RetriesExceeded", "Failed to %s after %d attempt(s)"
                                                    % (action, f[counter])))
        _hr_conditions(cl, hr, status, **conds)
        _mark(hr, False)

    if K.find(cl, "Namespace", "", tns) is None:
        if not ((spec.get("install") or {}).get("createNamespace")):
            return failed("create: failed to create: namespaces \"%s\" not found" % tns)
        K.put_object(cl, K.mapping_for_kind(cl, "v1", "Namespace"), K.new_obj("v1", "Namespace", tns), "helm")
    # pre-install/pre-upgrade hook Jobs run first: Helm waits for each to complete (its pod must pull)
    if not hist or hist[-1]["digest"] != digest_vals:
        from .controllers import image_pull_error
        nodes = [n["metadata"]["name"] for n in K.objs_of_kind(cl, "Node")]
        for job, img in hook_jobs(chart, release, vals):
            if nodes and image_pull_error(st, cl, nodes[-1], img):
                return failed("%s: resource Job/%s/%s not ready. status: InProgress, message: Job in progress\n"
                              "context deadline exceeded" % ("failed pre-install" if action == "install"
                                                             else "pre-upgrade hooks failed", tns, job))
    crd_policy = (spec.get(action) or {}).get("crds", "Create" if action == "install" else "Skip")
    if chart == "kube-prometheus-stack" and crd_policy != "Skip":
        for g, vs, kind, plural, short in MONITORING_CRDS:
            crd = _strip_none(crd_obj(g, vs, kind, plural, short, {}))
            m = K.mapping_for_kind(cl, "apiextensions.k8s.io/v1", "CustomResourceDefinition")
            if K.find(cl, "CustomResourceDefinition", "", crd["metadata"]["name"]) is None or crd_policy == \
                    "CreateReplace":
                K.put_object(cl, m, crd, "helm")
        from .controllers import reconcile_crds
        reconcile_crds(cl)
    objs, crs = chart_objects(chart, version, release, tns, vals)
    inv = _apply_release(cl, hr, objs + crs, release, tns)
    workloads_light(st, cl)
    not_ready = []
    for kind, ons, oname in inv:
        o = K.find(cl, kind, ons, oname)
        if kind in ("Deployment", "StatefulSet", "DaemonSet") and kstatus(cl, o) != "Current":
            not_ready.append("resource %s/%s/%s not ready. status: InProgress, message: %s"
                             % (kind, ons, oname, kstatus_message(o)))
    if not_ready and not (spec.get(action) or {}).get("disableWait"):
        # Helm 4's waiter: one line per resource not ready, then the context's error
        return failed("\n".join(not_ready + ["context deadline exceeded"]))
    verb = action
    released_now = not hist or hist[-1]["digest"] != digest_vals
    if released_now:
        hist.append({"digest": digest_vals, "version": len(hist) + 1, "chartVersion": version, "chart": chart,
                     "values": vals})
        sec = {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
               "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (release, len(hist)), "namespace": tns,
                            "labels": {"name": release, "owner": "helm", "status": "deployed",
                                       "version": str(len(hist))}},
               "data": {"release": "ZmFrZQ=="}}
        K.put_object(cl, K.mapping_for_kind(cl, "v1", "Secret"), sec, "helm")
        _log(cl, "helm-controller", hr, "release %s/%s.v%d %s succeeded" % (tns, release, len(hist), verb))
    n = hist[-1]["version"]
    reason = "InstallSucceeded" if n == 1 else "UpgradeSucceeded"
    msg = "Helm %s succeeded for release %s/%s.v%d with chart %s@%s" % ("install" if n == 1 else "upgrade",
                                                                         tns, release, n, chart,
                                                                         hist[-1]["chartVersion"])
    released = K.get_condition(hr, "Released")
    if released and released["status"] == "True" and not released_now:
        reason, msg = released["reason"], released["message"]  # nothing released: the last release stands
    status.update({"lastAttemptedRevision": version, "lastAttemptedValuesChecksum": digest_vals[:40],
                   "lastAttemptedReleaseAction": "install" if n == 1 else "upgrade",
                   "history": [{"chartName": chart, "chartVersion": h["chartVersion"], "name": release,
                                "namespace": tns, "status": "deployed" if h is hist[-1] else "superseded",
                                "version": h["version"]} for h in reversed(hist)][:5],
                   "storageNamespace": tns})
    if digest:
        status["lastAttemptedRevisionDigest"] = digest
    if src is not None and src.get("kind") != "OCIRepository":
        status["helmChart"] = "%s/%s-%s" % (src["metadata"]["namespace"], ns, name)
    else:
        status.pop("helmChart", None)
    f[counter] = 0
    _hr_conditions(cl, hr, status, Reconciling=None, Stalled=None, Remediated=None,
                   Released=("True", reason, msg), Ready=("True", reason, msg))
    _mark(hr, True)


def workloads_light(st, cl):
    from .controllers import reconcile_deployment, reconcile_statefulset, reconcile_daemonset, reconcile_services
    for d in K.objs_of_kind(cl, "Deployment"):
        reconcile_deployment(st, cl, d)
    for s in K.objs_of_kind(cl, "StatefulSet"):
        reconcile_statefulset(st, cl, s)
    for d in K.objs_of_kind(cl, "DaemonSet"):
        reconcile_daemonset(st, cl, d)
    reconcile_services(cl)


def reconcile_helmreleases(st, cl):
    if not controller_ready(cl, "helm-controller"):
        return
    hrs = K.objs_of_kind(cl, "HelmRelease", group="helm.toolkit.fluxcd.io")
    present = {(h["metadata"]["namespace"], h["metadata"]["name"]) for h in hrs}
    for key, inv in list(cl.get("hr_inventories", {}).items()):
        ns, name = key.split("/", 1)
        if (ns, name) not in present:
            for kind, ons, oname in inv:
                x = K.find(cl, kind, ons, oname)
                if x:
                    K.delete_object(cl, x)
            del cl["hr_inventories"][key]
    for hr in hrs:
        if needs_reconcile(hr):
            reconcile_hr(st, cl, hr)
        inv = hr.get("_fake", {}).get("inventory")
        if inv:
            cl.setdefault("hr_inventories", {})["%s/%s" % (hr["metadata"]["namespace"], hr["metadata"]["name"])] = inv
