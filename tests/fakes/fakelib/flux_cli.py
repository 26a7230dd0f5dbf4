"""Fake `flux` CLI."""

import json
import os
import re
import sys
import time

from . import cluster as K
from . import controllers as C
from . import dockerworld as dw
from . import flux_controllers as FC
from . import kubeconfig as KC
from . import registry_store as rs
from .common import Exit, State, daemon_down, load_yaml, now_iso, out, parse_duration, run_tool
from .pflag import Flag, FlagError, FlagSet, split_command, strip_globals

GLOBAL = [Flag("context"), Flag("namespace", "n", default="flux-system"), Flag("timeout", default="5m0s"),
          Flag("kubeconfig"), Flag("verbose", kind="bool"), Flag("cache-dir"), Flag("token"), Flag("server")]
GLOBAL_FS = FlagSet(GLOBAL)
A = [Flag("all-namespaces", "A", "bool")]
COMMANDS = {
    "version": [Flag("client", kind="bool"), Flag("output", "o", default="yaml")],
    "check": [Flag("pre", kind="bool"), Flag("components", kind="list"), Flag("components-extra", kind="list"),
              Flag("poll-interval")],
    "install": [Flag("version", "v"), Flag("components", kind="list"), Flag("components-extra", kind="list"),
                Flag("network-policy", kind="bool", default=True), Flag("registry", default="ghcr.io/fluxcd"),
                Flag("export", kind="bool"), Flag("watch-all-namespaces", kind="bool", default=True),
                Flag("cluster-domain", default="cluster.local"), Flag("log-level", default="info"),
                Flag("image-pull-secret"), Flag("toleration-keys", kind="list"), Flag("force", kind="bool")],
    "uninstall": [Flag("silent", "s", "bool"), Flag("keep-namespace", kind="bool"), Flag("dry-run", kind="bool")],
    "push artifact": [Flag("path", "f"), Flag("source"), Flag("revision"), Flag("creds"), Flag("provider",
                                                                                              default="generic"),
                      Flag("ignore-paths", kind="list"), Flag("output", "o"), Flag("annotations", "a", "list"),
                      Flag("reproducible", kind="bool"), Flag("debug", kind="bool"), Flag("insecure-registry",
                                                                                           kind="bool")],
    "tag artifact": [Flag("tag", kind="list"), Flag("creds"), Flag("provider", default="generic"),
                     Flag("insecure-registry", kind="bool")],
    "reconcile source oci": [Flag("force", kind="bool")],
    "reconcile source git": [Flag("force", kind="bool")],
    "reconcile source helm": [],
    "reconcile kustomization": [Flag("with-source", kind="bool")],
    "reconcile helmrelease": [Flag("with-source", kind="bool"), Flag("force", kind="bool"), Flag("reset",
                                                                                              kind="bool")],
    "suspend kustomization": [Flag("all", kind="bool")],
    "resume kustomization": [Flag("all", kind="bool"), Flag("wait", kind="bool", default=True)],
    "suspend helmrelease": [Flag("all", kind="bool")],
    "resume helmrelease": [Flag("all", kind="bool"), Flag("wait", kind="bool", default=True)],
    "suspend source oci": [Flag("all", kind="bool")],
    "resume source oci": [Flag("all", kind="bool"), Flag("wait", kind="bool", default=True)],
    "suspend source git": [Flag("all", kind="bool")],
    "resume source git": [Flag("all", kind="bool"), Flag("wait", kind="bool", default=True)],
    "get sources oci": A + [Flag("status-selector"), Flag("no-header", kind="bool")],
    "get sources git": A + [Flag("status-selector"), Flag("no-header", kind="bool")],
    "get sources helm": A + [Flag("status-selector"), Flag("no-header", kind="bool")],
    "get sources all": A + [Flag("status-selector"), Flag("no-header", kind="bool")],
    "get kustomizations": A + [Flag("status-selector"), Flag("no-header", kind="bool")],
    "get helmreleases": A + [Flag("status-selector"), Flag("no-header", kind="bool")],
    "get all": A + [Flag("status-selector")],
    "logs": [Flag("all-namespaces", "A", "bool"), Flag("tail", kind="int", default=-1), Flag("kind"), Flag("name"),
             Flag("level"), Flag("since"), Flag("follow", "f", "bool"), Flag("flux-namespace",
                                                                             default="flux-system")],
    "bootstrap git": [Flag("url"), Flag("branch", default="main"), Flag("path"), Flag("private-key-file"),
                      Flag("silent", "s", "bool"), Flag("username", "u"), Flag("password"),
                      Flag("token-auth", kind="bool"), Flag("components-extra", kind="list"),
                      Flag("author-name"), Flag("author-email"), Flag("interval", default="1m0s"),
                      Flag("allow-insecure-http", kind="bool"), Flag("network-policy", kind="bool", default=True)],
    "create source oci": [Flag("url"), Flag("tag"), Flag("tag-semver"), Flag("digest"), Flag("insecure", kind="bool"),
                          Flag("interval", default="1m0s"), Flag("export", kind="bool"), Flag("secret-ref"),
                          Flag("provider", default="generic"), Flag("ignore-paths", kind="list")],
    "create source git": [Flag("url"), Flag("branch"), Flag("tag"), Flag("interval", default="1m0s"),
                          Flag("export", kind="bool"), Flag("secret-ref")],
    "create kustomization": [Flag("source"), Flag("path", default="./"), Flag("prune", kind="bool"),
                             Flag("wait", kind="bool"), Flag("interval", default="1m0s"),
                             Flag("depends-on", kind="list"), Flag("target-namespace"), Flag("export", kind="bool"),
                             Flag("health-check", kind="list"), Flag("retry-interval")],
}
ALIASES = {"reconcile ks": "reconcile kustomization", "reconcile hr": "reconcile helmrelease",
           "suspend ks": "suspend kustomization", "resume ks": "resume kustomization",
           "suspend hr": "suspend helmrelease", "resume hr": "resume helmrelease",
           "get ks": "get kustomizations", "get kustomization": "get kustomizations",
           "get hr": "get helmreleases", "get helmrelease": "get helmreleases",
           "get source oci": "get sources oci", "get source git": "get sources git",
           "get source all": "get sources all", "get sources helm": "get sources helm",
           "create ks": "create kustomization"}
TREE = {}
for _k in list(COMMANDS) + list(ALIASES):
    node = TREE
    for _w in _k.split():
        node = node.setdefault(_w, {})
READ_ONLY = {"version", "check", "get sources oci", "get sources git", "get sources helm", "get sources all",
             "get kustomizations", "get helmreleases", "get all", "logs"}


def flux_version():
    return os.environ.get("FAKE_FLUX_VERSION", "2.9.4")


def classify(argv):
    path, _, _ = split_command(argv, GLOBAL_FS, TREE)
    key = ALIASES.get(" ".join(path), " ".join(path))
    mut = key not in READ_ONLY and key != ""
    if key.startswith("create ") and "--export" in argv:
        mut = False
    if key == "install" and "--export" in argv:
        mut = False
    if key == "push artifact" or key == "tag artifact":
        mut = True
    return strip_globals(argv, GLOBAL_FS), mut


def entry(argv):
    return run_tool("flux", argv, classify, main)


def log(sym, msg):
    sys.stderr.write("%s %s\n" % (sym, msg))
    sys.stderr.flush()


def fail(msg):
    log("✗", msg)
    raise Exit(1)


def main(argv):
    path, rest, node = split_command(argv, GLOBAL_FS, TREE)
    key = ALIASES.get(" ".join(path), " ".join(path))
    if not path and "--version" in rest:
        out("flux version %s" % flux_version())
        return 0
    if key not in COMMANDS:
        pos = [a for a in rest if not a.startswith("-")]
        if pos:
            fail('unknown command "%s" for "flux%s"' % (pos[0], (" " + " ".join(path)) if path else ""))
        if path:
            fail('please specify a subcommand for "flux %s"' % " ".join(path) if False else
                 'unknown command "" for "flux %s"' % " ".join(path))
        out("Command line utility for assembling Kubernetes CD pipelines the GitOps way.")
        return 0
    fs = FlagSet(GLOBAL + COMMANDS[key])
    try:
        vals, pos, dd = fs.parse(rest)
    except FlagError as e:
        fail(str(e))
    try:
        vals["_timeout"] = parse_duration(vals["timeout"])
    except ValueError as e:
        fail('invalid argument "%s" for "--timeout" flag: %s' % (vals["timeout"], e))
    if key == "version" and vals["client"]:
        return cmd_version(None, vals, pos)
    if key in ("push artifact", "tag artifact"):
        st = State()
        st.acquire()
        try:
            return HANDLERS[key](st, vals, pos)
        finally:
            if st.held:
                st.release()
    if key.startswith("create ") and vals.get("export"):
        return HANDLERS[key](None, vals, pos)
    st = State()
    st.acquire()
    try:
        return HANDLERS[key](st, vals, pos)
    finally:
        if st.held:
            st.release()


class FConn:
    def __init__(self, st, vals, tick=True):
        kc = KC.cfg(st, vals.get("kubeconfig"))
        ctx = vals.get("context") or kc["current"]
        if not ctx:
            fail('Get "http://localhost:8080/api?timeout=32s": dial tcp 127.0.0.1:8080: connect: connection refused')
        e = kc["contexts"].get(ctx)
        if e is None:
            fail('context "%s" does not exist' % ctx)
        self.cname = e["kind_cluster"]
        cp = dw.find_container(st, "%s-control-plane" % self.cname)
        self.cl = st.data["clusters"].get(self.cname)
        if daemon_down() or cp is None or not dw.running(cp) or self.cl is None:
            hp = e["server"].split("://", 1)[1]
            fail('Get "%s/api?timeout=32s": dial tcp %s: connect: connection refused' % (e["server"], hp))
        self.ns = vals.get("namespace") or "flux-system"
        self.st = st
        if tick:
            dw.reap_dead(st)
            C.tick(st, self.cname)


def cmd_version(st, vals, pos):
    if vals["client"]:
        if vals["output"] == "json":
            out(json.dumps({"flux": "v" + flux_version()}, indent=2))
        else:
            out("flux: v%s" % flux_version())
        return 0
    c = FConn(st, vals)
    out("flux: v%s" % flux_version())
    ns = K.find(c.cl, "Namespace", "", "flux-system")
    if ns is None:
        fail("no flux installation found in namespace flux-system" if False else
             'could not find flux installation: namespaces "flux-system" not found')
    out("distribution: flux-%s" % ns["metadata"]["labels"].get("app.kubernetes.io/version", "unknown"))
    for d in K.objs_of_kind(c.cl, "Deployment", "flux-system"):
        out("%s: %s" % (d["metadata"]["name"], d["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":")[-1]))
    return 0


def _ver_tuple(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def cmd_check(st, vals, pos):
    c = FConn(st, vals)
    log("►", "checking prerequisites")
    kv = c.cl["k8s_version"].lstrip("v")
    ok = _ver_tuple(kv) >= (1, 33, 0)
    if ok:
        log("✔", "Kubernetes %s >=1.33.0-0" % kv)
    else:
        log("✗", "Kubernetes version %s does not match >=1.33.0-0" % kv)
    if vals["pre"]:
        if ok:
            log("✔", "prerequisites checks passed")
            return 0
        fail("prerequisites checks failed")
    log("►", "checking version in cluster")
    ns = K.find(c.cl, "Namespace", "", "flux-system")
    if ns is None:
        fail("no controllers found in the 'flux-system' namespace with the label selector "
             "'app.kubernetes.io/part-of=flux'")
    log("✔", "distribution: flux-%s" % ns["metadata"]["labels"].get("app.kubernetes.io/version"))
    log("✔", "bootstrapped: %s" % ("true" if K.find(c.cl, "Kustomization", "flux-system", "flux-system") else
                                    "false"))
    log("►", "checking controllers")
    deps = [d for d in K.objs_of_kind(c.cl, "Deployment", "flux-system")
            if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "flux"]
    if not deps:
        fail("no controllers found in the 'flux-system' namespace with the label selector "
             "'app.kubernetes.io/part-of=flux'")
    bad = False
    for d in deps:
        if FC.kstatus(c.cl, d) == "Current":
            log("✔", "%s: deployment ready" % d["metadata"]["name"])
        else:
            log("✗", "%s: deployment not ready" % d["metadata"]["name"])
            bad = True
        log("►", d["spec"]["template"]["spec"]["containers"][0]["image"])
    log("►", "checking crds")
    for crd in K.objs_of_kind(c.cl, "CustomResourceDefinition"):
        if crd["spec"]["group"].endswith("toolkit.fluxcd.io"):
            log("✔", "%s/%s" % (crd["metadata"]["name"], crd["spec"]["versions"][0]["name"]))
    if bad or not ok:
        fail("check failed")
    log("✔", "all checks passed")
    return 0


DEFAULT_COMPONENTS = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]


def _install(st, c, vals, version, extra, verbose=True):
    comps = vals.get("components") or list(DEFAULT_COMPONENTS)
    comps = [x for c_ in comps for x in c_.split(",")]
    for e in extra or []:
        comps += [x for x in e.split(",") if x]
    valid = set(DEFAULT_COMPONENTS) | {"image-reflector-controller", "image-automation-controller",
                                       "source-watcher"}
    for x in comps:
        if x not in valid:
            fail("component %s is not supported" % x)
    objs = FC.install_objects(version, comps, vals.get("network_policy", True), vals.get("registry") or
                              "ghcr.io/fluxcd")
    if verbose:
        log("►", "installing components in flux-system namespace")
    for o in objs:
        m = K.mapping_for_kind(c.cl, o["apiVersion"], o["kind"])
        verb, _ = K.apply_object(c.cl, m, o, server_side=True, manager="flux-client-side-apply")
        if verbose:
            out("%s/%s %s" % (o["kind"], ("%s/%s" % (o["metadata"]["namespace"], o["metadata"]["name"]))
                              if o["metadata"].get("namespace") else o["metadata"]["name"], verb))
        C.reconcile_crds(c.cl)
    if verbose:
        log("✔", "install completed")
    C.tick(st, c.cname)
    if verbose:
        log("►", "verifying installation")
    bad = False
    for comp in sorted(comps):
        d = K.find(c.cl, "Deployment", "flux-system", comp)
        if FC.kstatus(c.cl, d) == "Current":
            log("✔", "%s: deployment ready" % comp)
        else:
            log("✗", "%s: deployment not ready" % comp)
            bad = True
    if bad:
        fail("install failed: timeout waiting for: [Deployment/flux-system/... status: 'InProgress']")
    log("✔", "install finished")


def cmd_install(st, vals, pos):
    version = vals["version"] or ("v" + flux_version())
    if version != "latest" and not re.fullmatch(r"v\d+\.\d+\.\d+", version):
        fail("targeted version '%s' must be in the format 'vX.Y.Z'" % version if not version.startswith("v")
             else "targeted version '%s' is not a valid semver" % version)
    if version == "latest":
        version = "v" + flux_version()
    if vals["export"]:
        yaml = load_yaml()
        for o in FC.install_objects(version, DEFAULT_COMPONENTS + [x for e in vals["components_extra"] for x in
                                                                   e.split(",") if x], vals["network_policy"]):
            out("---")
            sys.stdout.write(yaml.safe_dump(o, sort_keys=False))
        return 0
    c = FConn(st, vals)
    log("✚", "generating manifests")
    log("✔", "manifests build completed")
    _install(st, c, vals, version, vals["components_extra"])
    return 0


def cmd_uninstall(st, vals, pos):
    c = FConn(st, vals)
    if not vals["silent"]:
        sys.stderr.write("? Are you sure you want to delete Flux and its custom resource definitions [y/N] ")
        sys.stderr.flush()
        ans = sys.stdin.readline().strip().lower()
        if ans not in ("y", "yes"):
            fail("aborting")
    if vals["dry_run"]:
        return 0
    log("►", "deleting components in flux-system namespace")
    for d in K.objs_of_kind(c.cl, "Deployment", "flux-system"):
        K.delete_object(c.cl, d)
        log("✔", "Deployment/flux-system/%s deleted" % d["metadata"]["name"])
    log("►", "deleting toolkit.fluxcd.io finalizers in all namespaces")
    log("►", "deleting toolkit.fluxcd.io custom resource definitions")
    for crd in K.objs_of_kind(c.cl, "CustomResourceDefinition"):
        if crd["spec"]["group"].endswith("toolkit.fluxcd.io"):
            K.delete_object(c.cl, crd)
            log("✔", "CustomResourceDefinition/%s deleted" % crd["metadata"]["name"])
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        for o in K.objs_of_kind(c.cl, kind):
            if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "flux":
                K.delete_object(c.cl, o)
    if not vals["keep_namespace"]:
        ns = K.find(c.cl, "Namespace", "", "flux-system")
        if ns:
            K.delete_object(c.cl, ns)
            log("✔", "Namespace/flux-system deleted")
    c.cl.pop("ks_inventories", None)
    c.cl.pop("hr_inventories", None)
    log("✔", "uninstall finished")
    return 0


# ---------------------------------------------------------------- artifacts

def _parse_oci(url, need_tag=True):
    m = re.fullmatch(r"oci://([^/]+)/([^:@]+)(?::([\w][\w.-]{0,127}))?", url or "")
    if not m:
        fail("invalid OCI URL: %s" % url if not (url or "").startswith("oci://") else
             "URL must be in format 'oci://<domain>/<org>/<repo>'")
    if need_tag and not m.group(3):
        fail("could not parse reference: %s" % url[6:])
    return m.group(1), m.group(2), m.group(3)


def _registry_root(st, host):
    hname, _, port = host.partition(":")
    if hname not in ("localhost", "127.0.0.1"):
        fail('pushing artifact failed: Get "https://%s/v2/": dial tcp: lookup %s: no such host' % (host, hname))
    port = port or "80"
    import urllib.request  # here: ~40 ms of imports that other calls need not pay
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/v2/" % port, timeout=3).read()
    except Exception:
        return None, port
    c = dw.registry_for_host_port(st, port)
    if c is None:
        fail("fake flux: something that is not a fake registry container answers on port %s" % port)
    return dw.registry_root(st, c), port


def cmd_push_artifact(st, vals, pos):
    if not pos:
        fail("artifact URL is required")
    if not vals["source"]:
        fail("--source is required")
    if not vals["revision"]:
        fail("--revision is required")
    if not vals["path"]:
        fail('invalid path ""')
    host, repo, tag = _parse_oci(pos[0])
    path = vals["path"]
    if not os.path.exists(path):
        fail("invalid path '%s', must point to an existing directory or file: stat %s: no such file or directory"
             % (path, path))
    if vals["creds"]:
        log("►", "logging in to registry with credentials")
    if not vals["output"]:
        log("►", "pushing artifact to %s/%s:%s" % (host, repo, tag))
    root, port = _registry_root(st, host)
    if root is None:
        fail('error setting up transport: Get "https://%s/v2/": dial tcp 127.0.0.1:%s: connect: connection refused; '
             'Get "http://%s/v2/": dial tcp 127.0.0.1:%s: connect: connection refused' % (host, port, host, port))
    annotations = list(vals["annotations"] or [])
    if not vals["reproducible"]:  # the real CLI stamps the push time: same content, new digest
        annotations.append("org.opencontainers.image.created=%s" % now_iso())
    digest = rs.push_flux_artifact(root, repo, tag, path, vals["source"], vals["revision"], annotations)
    info = {"url": "oci://%s/%s@%s" % (host, repo, digest), "repository": "%s/%s" % (host, repo), "tag": tag,
            "digest": digest}
    if vals["output"] == "json":
        out(json.dumps(info, indent=2))
    elif vals["output"] == "yaml":
        sys.stdout.write(load_yaml().safe_dump(info, sort_keys=False))
    else:
        log("✔", "artifact successfully pushed to %s/%s@%s" % (host, repo, digest))
    return 0


def cmd_tag_artifact(st, vals, pos):
    if not pos:
        fail("artifact URL is required")
    if not vals["tag"]:
        fail("--tag is required")
    # The source is a tag or a digest: flux passes it to go-containerregistry's crane.Tag, which fetches
    # the manifest by either (oci.ParseArtifactURL and name.ParseReference accept `repo@sha256:<64 hex>`).
    m = re.fullmatch(r"oci://([^/]+)/([^:@]+)@(sha256:[0-9a-f]{64})", pos[0] or "")
    if m:
        host, repo, digest = m.groups()
    elif "@" in (pos[0] or "") and (pos[0] or "").startswith("oci://"):  # name.ParseReference refuses it
        fail("'%s' invalid URL: could not parse reference: %s" % (pos[0], pos[0][6:]))
    else:
        host, repo, tag = _parse_oci(pos[0])
        digest = None
    root, port = _registry_root(st, host)
    if root is None:
        fail('tagging artifact failed: Get "http://%s/v2/": dial tcp 127.0.0.1:%s: connect: connection refused'
             % (host, port))
    log("►", "tagging artifact")
    if digest:
        r = rs.resolve(root, repo, digest)
        if r is None:  # the registry's detail is distribution's ErrManifestUnknownRevision, as for a tag
            fail('tagging artifact failed: fetching "%s/%s@%s": GET http://%s/v2/%s/manifests/%s: '
                 'MANIFEST_UNKNOWN: manifest unknown; unknown manifest name=%s revision=%s'
                 % (host, repo, digest, host, repo, digest, repo, digest))
    else:
        r = rs.resolve(root, repo, tag)
    if r is None:
        fail('tagging artifact failed: fetching "%s/%s:%s": GET http://%s/v2/%s/manifests/%s: MANIFEST_UNKNOWN: '
             'manifest unknown; unknown tag=%s' % (host, repo, tag, host, repo, tag, tag))
    for t in vals["tag"]:
        rs.put_manifest(root, repo, r[1], t)
        log("✔", "artifact tagged as %s/%s:%s" % (host, repo, t))
    return 0


# ---------------------------------------------------------------- reconcile / suspend / resume

KIND_OF = {"source oci": "OCIRepository", "source git": "GitRepository", "source helm": "HelmRepository",
           "kustomization": "Kustomization", "helmrelease": "HelmRelease"}
GROUP_OF = {"OCIRepository": "source.toolkit.fluxcd.io", "GitRepository": "source.toolkit.fluxcd.io",
            "HelmRepository": "source.toolkit.fluxcd.io", "Kustomization": "kustomize.toolkit.fluxcd.io",
            "HelmRelease": "helm.toolkit.fluxcd.io"}


def _need_crd(c, kind):
    if K.mapping_for_kind(c.cl, "%s/%s" % (GROUP_OF[kind], "v2" if kind == "HelmRelease" else "v1"), kind) is None:
        fail('no matches for kind "%s" in version "%s/%s"' % (kind, GROUP_OF[kind],
                                                            "v2" if kind == "HelmRelease" else "v1"))


def _find(c, kind, name):
    _need_crd(c, kind)
    o = K.find(c.cl, kind, c.ns, name)
    if o is None:
        m = K.mapping_for_kind(c.cl, "%s/%s" % (GROUP_OF[kind], "v2" if kind == "HelmRelease" else "v1"), kind)
        fail('%s.%s "%s" not found' % (m["plural"], GROUP_OF[kind], name))
    return o


def _request(c, o):
    o["metadata"].setdefault("annotations", {})[FC.REQ_ANN] = now_iso().replace("Z", ".%09dZ" % (
        int(time.time() * 1e9) % 1000000000))
    K.touch(c.cl, o)


def _reconcile_one(st, c, kind, name, vals):
    o = _find(c, kind, name)
    if (o.get("spec") or {}).get("suspend"):
        fail("resource is suspended")
    log("►", "annotating %s %s in %s namespace" % (kind, name, c.ns))
    _request(c, o)
    log("✔", "%s annotated" % kind)
    log("◎", "waiting for %s reconciliation" % kind)
    C.tick(st, c.cname, forced=[(kind, c.ns, name)])
    o = K.find(c.cl, kind, c.ns, name)
    cond = K.get_condition(o, "Ready")
    if cond is None:
        fail("timeout waiting for %s reconciliation: no Ready condition (is the controller running?)" % kind)
    if cond["status"] != "True":
        fail(cond["message"])
    st_ = o.get("status") or {}
    if kind in ("OCIRepository", "GitRepository", "HelmRepository"):
        log("✔", "fetched revision %s" % st_.get("artifact", {}).get("revision"))
    elif kind == "Kustomization":
        log("✔", "applied revision %s" % st_.get("lastAppliedRevision"))
    else:
        log("✔", "applied revision %s" % st_.get("lastAttemptedRevision"))
    return o


def _reconcile(kind):
    def f(st, vals, pos):
        if len(pos) != 1:
            fail("%s name is required" % kind if not pos else "accepts 1 arg(s), received %d" % len(pos))
        c = FConn(st, vals)
        if vals.get("with_source"):
            o = _find(c, kind, pos[0])
            if (o.get("spec") or {}).get("suspend"):  # read first, as flux does: its source is not touched
                fail("resource is suspended")
            if kind == "Kustomization":
                sref = o["spec"].get("sourceRef") or {}
                skind, sname = sref.get("kind"), sref.get("name")
            else:
                cr = o["spec"].get("chartRef") or ((o["spec"].get("chart") or {}).get("spec") or {}).get("sourceRef",
                                                                                                          {})
                skind, sname = cr.get("kind"), cr.get("name")
            if skind in GROUP_OF:
                sc = FConn.__new__(FConn)
                sc.__dict__.update(c.__dict__)
                sc.ns = sref.get("namespace") or c.ns if kind == "Kustomization" else c.ns
                _reconcile_one(st, sc, skind, sname, vals)
        _reconcile_one(st, c, kind, pos[0], vals)
        return 0
    return f


def _suspend(kind, suspend):
    def f(st, vals, pos):
        c = FConn(st, vals)
        names = pos
        if vals.get("all"):
            names = [o["metadata"]["name"] for o in K.objs_of_kind(c.cl, kind, c.ns)]
        if not names:
            fail("%s name is required" % kind)
        for n in names:
            o = _find(c, kind, n)
            log("►", "%s %s %s in %s namespace" % ("suspending" if suspend else "resuming", kind.lower()
                                                   if kind in ("Kustomization", "HelmRelease") else "source", n, c.ns))
            if suspend:
                o["spec"]["suspend"] = True
            else:
                o["spec"].pop("suspend", None)
            o["metadata"]["generation"] = o["metadata"].get("generation", 1) + 1
            K.touch(c.cl, o)
            log("✔", "%s %s" % (kind.lower() if kind in ("Kustomization", "HelmRelease") else "source",
                                "suspended" if suspend else "resumed"))
            if not suspend and vals.get("wait", True):
                log("◎", "waiting for %s reconciliation" % kind)
                C.tick(st, c.cname, forced=[(kind, c.ns, n)])
                o = K.find(c.cl, kind, c.ns, n)
                cond = K.get_condition(o, "Ready")
                if not cond or cond["status"] != "True":
                    fail((cond or {}).get("message", "reconciliation failed"))
                log("✔", "%s reconciliation completed" % kind)
                rev = (o.get("status") or {}).get("lastAppliedRevision") or \
                    (o.get("status") or {}).get("artifact", {}).get("revision") or \
                    (o.get("status") or {}).get("lastAttemptedRevision")
                log("✔", "applied revision %s" % rev)
        return 0
    return f


# ---------------------------------------------------------------- get

def _table(rows):
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out("\t".join(str(v).ljust(widths[i]) for i, v in enumerate(r)).rstrip() if False else
            "\t".join(str(v).ljust(widths[i]) for i, v in enumerate(r)))


def _rows_for(c, kind, all_ns, status_sel=None):
    objs = K.objs_of_kind(c.cl, kind, None if all_ns else c.ns)
    rows = []
    for o in objs:
        cond = K.get_condition(o, "Ready")
        ready = cond["status"] if cond else "Unknown"
        msg = cond["message"] if cond else "waiting to be reconciled"
        st_ = o.get("status") or {}
        if kind == "Kustomization":
            rev = st_.get("lastAppliedRevision", "")
        elif kind == "HelmRelease":
            rev = st_.get("lastAttemptedRevision", "")
        else:
            rev = (st_.get("artifact") or {}).get("revision", "")
        if status_sel:
            k, _, v = status_sel.partition("=")
            if k.lower() == "ready" and ready.lower() != v.lower():
                continue
        r = [o["metadata"]["name"], rev, str(bool((o.get("spec") or {}).get("suspend"))).capitalize(), ready, msg]
        if all_ns:
            r.insert(0, o["metadata"]["namespace"])
        rows.append(r)
    return rows


def _get(kind, label):
    def f(st, vals, pos):
        c = FConn(st, vals)
        if K.mapping_for_kind(c.cl, "%s/%s" % (GROUP_OF[kind], "v2" if kind == "HelmRelease" else "v1"),
                              kind) is None:
            fail('no matches for kind "%s" in version "%s/%s"' % (kind, GROUP_OF[kind],
                                                                "v2" if kind == "HelmRelease" else "v1"))
        rows = _rows_for(c, kind, vals["all_namespaces"], vals.get("status_selector"))
        if pos:
            rows = [r for r in rows if r[1 if vals["all_namespaces"] else 0] in pos]
        if not rows:
            log("✗", "no %s objects found in %s namespace" % (kind, "any" if vals["all_namespaces"] else c.ns))
            return 0
        hdr = ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
        if vals["all_namespaces"]:
            hdr.insert(0, "NAMESPACE")
        _table(([] if vals.get("no_header") else [hdr]) + rows)
        return 0
    return f


def cmd_get_all_sources(st, vals, pos):
    c = FConn(st, vals)
    first = True
    for kind, label in (("GitRepository", "gitrepository"), ("OCIRepository", "ocirepository"),
                        ("HelmRepository", "helmrepository")):
        rows = _rows_for(c, kind, vals["all_namespaces"])
        if not rows:
            continue
        if not first:
            out("")
        first = False
        hdr = ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
        if vals["all_namespaces"]:
            hdr.insert(0, "NAMESPACE")
        for r in rows:
            r[1 if vals["all_namespaces"] else 0] = "%s/%s" % (label, r[1 if vals["all_namespaces"] else 0])
        _table([hdr] + rows)
    return 0


def cmd_get_all(st, vals, pos):
    cmd_get_all_sources(st, vals, pos)
    c = FConn(st, vals, tick=False)
    for kind, label in (("Kustomization", "kustomization"), ("HelmRelease", "helmrelease")):
        rows = _rows_for(c, kind, vals["all_namespaces"])
        if not rows:
            continue
        out("")
        hdr = ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
        if vals["all_namespaces"]:
            hdr.insert(0, "NAMESPACE")
        for r in rows:
            r[1 if vals["all_namespaces"] else 0] = "%s/%s" % (label, r[1 if vals["all_namespaces"] else 0])
        _table([hdr] + rows)
    return 0


def cmd_logs(st, vals, pos):
    if vals["follow"]:
        fail("fake flux: logs --follow is not supported by the fake")
    c = FConn(st, vals)
    lines = c.cl.get("flux_logs", [])
    if not vals["all_namespaces"]:
        lines = [x for x in lines if x["namespace"] == c.ns]
    if vals["kind"]:
        lines = [x for x in lines if x["kind"].lower() == vals["kind"].lower()]
    if vals["name"]:
        lines = [x for x in lines if x["name"] == vals["name"]]
    if vals["level"]:
        lines = [x for x in lines if x["level"] == vals["level"]]
    if vals["tail"] >= 0:
        lines = lines[-vals["tail"]:] if vals["tail"] else []
    for x in lines:
        out("%s %s %s/%s.%s - %s" % (x["ts"], x["level"], x["kind"], x["name"], x["namespace"], x["msg"]))
    return 0


# ---------------------------------------------------------------- create / bootstrap

def _emit_or_apply(st, vals, obj):
    yaml = load_yaml()
    if vals.get("export"):
        out("---")
        sys.stdout.write(yaml.safe_dump(obj, sort_keys=True))
        return 0
    c = FConn(st, vals)
    _need_crd(c, obj["kind"])
    log("►", "generating %s" % obj["kind"])
    log("►", "applying %s" % obj["kind"])
    m = K.mapping_for_kind(c.cl, obj["apiVersion"], obj["kind"])
    try:
        K.apply_object(c.cl, m, obj, server_side=True, manager="flux")
    except K.ApiError as e:
        fail(e.msg)
    log("✔", "%s created" % obj["kind"])
    log("◎", "waiting for %s reconciliation" % obj["kind"])
    C.tick(st, c.cname, forced=[(obj["kind"], c.ns, obj["metadata"]["name"])])
    o = K.find(c.cl, obj["kind"], c.ns, obj["metadata"]["name"])
    cond = K.get_condition(o, "Ready")
    if not cond or cond["status"] != "True":
        fail((cond or {}).get("message", "not reconciled"))
    log("✔", "%s reconciliation completed" % obj["kind"])
    return 0


def _dur(v):
    try:
        from .common import fmt_duration
        return fmt_duration(parse_duration(v))
    except ValueError:
        fail('invalid argument "%s" for "--interval" flag: time: invalid duration "%s"' % (v, v))


def cmd_create_source_oci(st, vals, pos):
    if len(pos) != 1:
        fail("name is required")
    if not vals["url"]:
        fail("url is required")
    if not vals["url"].startswith("oci://"):
        fail("url must start with oci://")
    ref = {}
    if vals["tag"]:
        ref["tag"] = vals["tag"]
    if vals["tag_semver"]:
        ref["semver"] = vals["tag_semver"]
    if vals["digest"]:
        ref["digest"] = vals["digest"]
    if not ref:
        fail("one of --tag, --tag-semver or --digest is required")
    spec = {"interval": _dur(vals["interval"]), "url": vals["url"], "ref": ref}
    if vals["insecure"]:
        spec["insecure"] = True
    if vals["secret_ref"]:
        spec["secretRef"] = {"name": vals["secret_ref"]}
    if vals["provider"] != "generic":
        spec["provider"] = vals["provider"]
    return _emit_or_apply(st, vals, {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                                     "metadata": {"name": pos[0], "namespace": vals["namespace"]}, "spec": spec})


def cmd_create_source_git(st, vals, pos):
    if len(pos) != 1:
        fail("name is required")
    if not vals["url"]:
        fail("url is required")
    ref = {"tag": vals["tag"]} if vals["tag"] else {"branch": vals["branch"] or "master"}
    return _emit_or_apply(st, vals, {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                                     "metadata": {"name": pos[0], "namespace": vals["namespace"]},
                                     "spec": {"interval": _dur(vals["interval"]), "url": vals["url"], "ref": ref}})


def cmd_create_kustomization(st, vals, pos):
    if len(pos) != 1:
        fail("Kustomization name is required")
    if not vals["source"]:
        fail("source is required")
    kind, _, name = vals["source"].rpartition("/")
    kind = kind or "GitRepository"
    sref = {"kind": kind, "name": name}
    if "." in name:
        sref["name"], sref["namespace"] = name.split(".", 1)
    spec = {"interval": _dur(vals["interval"]), "path": vals["path"], "prune": vals["prune"], "sourceRef": sref}
    if vals["wait"]:
        spec["wait"] = True
    if vals["depends_on"]:
        spec["dependsOn"] = [{"name": d} for x in vals["depends_on"] for d in x.split(",")]
    if vals["target_namespace"]:
        spec["targetNamespace"] = vals["target_namespace"]
    return _emit_or_apply(st, vals, {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                                     "metadata": {"name": pos[0], "namespace": vals["namespace"]}, "spec": spec})


def cmd_bootstrap_git(st, vals, pos):
    if not vals["url"]:
        fail("url is required")
    if not re.match(r"^(ssh|https?)://", vals["url"]):
        fail("git URL scheme '%s' not supported, can be: ssh, http and https" % vals["url"].split(":", 1)[0])
    if vals["url"].startswith("http://") and not vals["allow_insecure_http"]:
        fail("scheme http is insecure, pass --allow-insecure-http=true to allow it")
    if vals["private_key_file"] and not os.path.exists(vals["private_key_file"]):
        fail("unable to read private key file: open %s: no such file or directory" % vals["private_key_file"])
    if not vals["silent"]:
        fail("fake flux: bootstrap git needs --silent in the fake (no interactive confirmation)")
    c = FConn(st, vals)
    path = (vals["path"] or ".").strip("./") or "."
    log("►", "cloning branch \"%s\" from Git repository \"%s\"" % (vals["branch"], vals["url"]))
    log("✔", "cloned repository")
    log("►", "generating component manifests")
    log("✔", "generated component manifests")
    if K.find(c.cl, "Namespace", "", "flux-system") is None or not FC.controller_ready(c.cl, "source-controller"):
        _install(st, c, vals, "v" + flux_version(), vals["components_extra"], verbose=False)
    else:
        log("►", "installing components in \"flux-system\" namespace")
        log("✔", "reconciled components")
    st.data.setdefault("bootstraps", []).append({"cluster": c.cname, "url": vals["url"], "branch": vals["branch"],
                                                 "path": vals["path"]})
    log("►", "reconciling sync configuration")
    for obj in ({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                 "metadata": {"name": "flux-system", "namespace": "flux-system"},
                 "spec": {"interval": vals["interval"], "ref": {"branch": vals["branch"]},
                          "secretRef": {"name": "flux-system"}, "url": vals["url"]}},
                {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                 "metadata": {"name": "flux-system", "namespace": "flux-system"},
                 "spec": {"interval": "10m0s", "path": "./" + (path if path != "." else ""), "prune": True,
                          "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}):
        m = K.mapping_for_kind(c.cl, obj["apiVersion"], obj["kind"])
        K.apply_object(c.cl, m, obj, server_side=True, manager="flux")
    C.tick(st, c.cname, forced=[("GitRepository", "flux-system", "flux-system"),
                                ("Kustomization", "flux-system", "flux-system")])
    ks = K.find(c.cl, "Kustomization", "flux-system", "flux-system")
    cond = K.get_condition(ks, "Ready")
    log("◎", "waiting for GitRepository \"flux-system/flux-system\" to be reconciled")
    if not cond or cond["status"] != "True":
        fail("bootstrap failed: %s" % (cond or {}).get("message", "Kustomization not reconciled"))
    log("✔", "reconciled sync configuration")
    log("✔", "bootstrap finished")
    return 0


HANDLERS = {
    "version": cmd_version, "check": cmd_check, "install": cmd_install, "uninstall": cmd_uninstall,
    "push artifact": cmd_push_artifact, "tag artifact": cmd_tag_artifact,
    "reconcile source oci": _reconcile("OCIRepository"), "reconcile source git": _reconcile("GitRepository"),
    "reconcile source helm": _reconcile("HelmRepository"),
    "reconcile kustomization": _reconcile("Kustomization"), "reconcile helmrelease": _reconcile("HelmRelease"),
    "suspend kustomization": _suspend("Kustomization", True), "resume kustomization": _suspend("Kustomization", False),
    "suspend helmrelease": _suspend("HelmRelease", True), "resume helmrelease": _suspend("HelmRelease", False),
    "suspend source oci": _suspend("OCIRepository", True), "resume source oci": _suspend("OCIRepository", False),
    "suspend source git": _suspend("GitRepository", True), "resume source git": _suspend("GitRepository", False),
    "get sources oci": _get("OCIRepository", "ocirepository"), "get sources git": _get("GitRepository",
                                                                                       "gitrepository"),
    "get sources helm": _get("HelmRepository", "helmrepository"), "get sources all": cmd_get_all_sources,
    "get kustomizations": _get("Kustomization", "kustomization"), "get helmreleases": _get("HelmRelease",
                                                                                          "helmrelease"),
    "get all": cmd_get_all, "logs": cmd_logs, "bootstrap git": cmd_bootstrap_git,
    "create source oci": cmd_create_source_oci, "create source git": cmd_create_source_git,
    "create kustomization": cmd_create_kustomization,
}
