"""Fake `kubectl` CLI (cluster side; `kubectl kustomize` execs the real one)."""

import base64
import copy
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from . import appnet
from . import cluster as K
from . import controllers as C
from . import dockerworld as dw
from . import jsonpath
from . import kubeconfig as KC
from . import printers
from .common import (Exit, State, daemon_down, err, load_yaml, now_iso, out, parse_duration, real_kubectl, run_tool,
                     spawn, wait_port, free_port, register_bg, kill_children)
from .pflag import Flag, FlagError, FlagSet, split_command, strip_globals

GLOBAL = [Flag("context"), Flag("namespace", "n"), Flag("kubeconfig"), Flag("request-timeout"),
          Flag("v", "v", "str"), Flag("cluster"), Flag("user"), Flag("warnings-as-errors", kind="bool"),
          Flag("match-server-version", kind="bool")]
GLOBAL_FS = FlagSet(GLOBAL)
OUT = [Flag("output", "o")]
FILE = [Flag("filename", "f", "list"), Flag("kustomize", "k"), Flag("recursive", "R", "bool")]
SEL = [Flag("selector", "l")]
DRY = [Flag("dry-run", default="none")]

COMMANDS = {
    "version": [Flag("client", kind="bool"), Flag("output", "o")],
    "kustomize": None,
    "cluster-info": [],
    "config use-context": [],
    "config current-context": [],
    "config get-contexts": OUT + [Flag("no-headers", kind="bool")],
    "config view": OUT + [Flag("minify", kind="bool"), Flag("raw", kind="bool"), Flag("flatten", kind="bool")],
    "config set-context": [Flag("current", kind="bool"), Flag("namespace")],
    "apply": FILE + OUT + SEL + DRY + [Flag("server-side", kind="bool"), Flag("force-conflicts", kind="bool"),
                                       Flag("field-manager"), Flag("prune", kind="bool"), Flag("validate"),
                                       Flag("wait", kind="bool"), Flag("all", kind="bool"), Flag("force", kind="bool")],
    "create": FILE + OUT + DRY + [Flag("save-config", kind="bool"), Flag("validate")],
    "create namespace": OUT + DRY,
    "create configmap": OUT + DRY + [Flag("from-literal", kind="list"), Flag("from-file", kind="list")],
    "create secret generic": OUT + DRY + [Flag("from-literal", kind="list"), Flag("from-file", kind="list"),
                                          Flag("type")],
    "get": OUT + SEL + [Flag("all-namespaces", "A", "bool"), Flag("ignore-not-found", kind="bool"),
                        Flag("field-selector"), Flag("show-labels", kind="bool"), Flag("no-headers", kind="bool"),
                        Flag("sort-by"), Flag("raw"), Flag("watch", "w", "bool"), Flag("chunk-size", kind="int"),
                        Flag("show-kind", kind="bool")] + FILE,
    "describe": SEL + [Flag("all-namespaces", "A", "bool")],
    "delete": FILE + SEL + [Flag("ignore-not-found", kind="bool"), Flag("wait", kind="bool", default=True),
                            Flag("all", kind="bool"), Flag("now", kind="bool"), Flag("force", kind="bool"),
                            Flag("grace-period", kind="int"), Flag("timeout"), Flag("all-namespaces", "A", "bool"),
                            Flag("cascade")] + OUT,
    "wait": SEL + FILE + OUT + [Flag("for", kind="list"), Flag("timeout", default="30s"), Flag("all", kind="bool"),
                                Flag("all-namespaces", "A", "bool")],
    "rollout status": [Flag("timeout", default="0s"), Flag("watch", "w", "bool", True), Flag("revision", kind="int")],
    "rollout restart": [],
    "rollout history": [],
    "scale": SEL + [Flag("replicas", kind="int", default=-1), Flag("current-replicas", kind="int"),
                    Flag("timeout")] + FILE,
    "label": SEL + [Flag("overwrite", kind="bool"), Flag("all", kind="bool"), Flag("list", kind="bool")] + OUT + FILE,
    "annotate": SEL + [Flag("overwrite", kind="bool"), Flag("all", kind="bool")] + OUT + FILE,
    "patch": [Flag("type"), Flag("patch", "p"), Flag("patch-file")] + OUT + FILE + DRY,
    "logs": SEL + [Flag("tail", kind="int", default=-1), Flag("follow", "f", "bool"), Flag("container", "c"),
                   Flag("previous", "p", "bool"), Flag("all-containers", kind="bool"), Flag("timestamps", kind="bool"),
                   Flag("since"), Flag("prefix", kind="bool")],
    "run": [Flag("image"), Flag("restart", default="Always"), Flag("labels", "l"), Flag("overrides"),
            Flag("command", kind="bool"), Flag("rm", kind="bool"), Flag("stdin", "i", "bool"), Flag("tty", "t", "bool"),
            Flag("attach", kind="bool"), Flag("env", kind="list"), Flag("port"), Flag("quiet", "q", "bool"),
            Flag("image-pull-policy"), Flag("pod-running-timeout")] + OUT + DRY,
    "exec": [Flag("stdin", "i", "bool"), Flag("tty", "t", "bool"), Flag("container", "c"), Flag("quiet", "q", "bool")],
    "port-forward": [Flag("address", kind="list"), Flag("pod-running-timeout")],
    "top pod": [Flag("all-namespaces", "A", "bool"), Flag("containers", kind="bool"), Flag("no-headers", kind="bool")]
    + SEL,
    "top node": [Flag("no-headers", kind="bool")] + SEL,
    "api-resources": OUT + [Flag("api-group"), Flag("namespaced", kind="bool", default=True)],
}
ALIASES = {"top pods": "top pod", "top nodes": "top node", "top po": "top pod", "top no": "top node",
           "create ns": "create namespace", "create cm": "create configmap"}
TREE = {}
for _k in list(COMMANDS) + list(ALIASES):
    node = TREE
    for _w in _k.split():
        node = node.setdefault(_w, {})
READ_ONLY = {"version", "kustomize", "cluster-info", "config current-context", "config get-contexts", "config view",
             "get", "describe", "wait", "rollout status", "rollout history", "logs", "port-forward", "top pod",
             "top node", "api-resources"}


def classify(argv):
    path, rest, _ = split_command(argv, GLOBAL_FS, TREE)
    key = ALIASES.get(" ".join(path), " ".join(path))
    mut = key not in READ_ONLY and key != ""
    if key in ("apply", "create", "patch", "delete", "scale", "label", "annotate", "run") and any(
            a in ("--dry-run=client", "--dry-run=server") for a in argv):
        mut = False
    return strip_globals(argv, GLOBAL_FS), mut


def entry(argv):
    return run_tool("kubectl", argv, classify, main)


def fail(msg, rc=1):
    err(msg)
    raise Exit(rc)


def flag_error(key, e):
    err("error: %s\nSee 'kubectl %s --help' for usage." % (e, key))
    raise Exit(1)


# ---------------------------------------------------------------- connection

class Conn:
    def __init__(self, st, vals):
        self.st = st
        self.vals = vals
        kc = KC.cfg(st, vals.get("kubeconfig"))
        ctx = vals.get("context") or kc["current"]
        self.ctx = ctx
        if not ctx:
            err('E%s    1 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group list: Get '
                '\\"http://localhost:8080/api?timeout=32s\\": dial tcp 127.0.0.1:8080: connect: connection refused"'
                % time.strftime("%m%d %H:%M:%S.000000"))
            fail("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
        entry = kc["contexts"].get(ctx)
        if entry is None:
            fail('error: context "%s" does not exist' % ctx)
        self.entry = entry
        self.cname = entry["kind_cluster"]
        server = entry["server"]
        cp = dw.find_container(st, "%s-control-plane" % self.cname)
        cl = st.data["clusters"].get(self.cname)
        if daemon_down() or cp is None or not dw.running(cp) or cl is None:
            hostport = server.split("://", 1)[1]
            err('E%s    1 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group list: Get '
                '\\"%s/api?timeout=32s\\": dial tcp %s: connect: connection refused"'
                % (time.strftime("%m%d %H:%M:%S.000000"), server, hostport))
            fail("The connection to the server %s was refused - did you specify the right host or port?" % hostport)
        self.cl = cl
        self.ns = vals.get("namespace") or entry.get("namespace") or "default"
        self.ns_given = bool(vals.get("namespace"))


def connect(st, vals, tick=True):
    c = Conn(st, vals)
    if tick:
        dw.reap_dead(st)
        C.tick(st, c.cname)
    return c


# ---------------------------------------------------------------- main

def main(argv):
    path, rest, node = split_command(argv, GLOBAL_FS, TREE)
    key = ALIASES.get(" ".join(path), " ".join(path))
    if key == "kustomize":
        return exec_real_kustomize(rest)
    if key not in COMMANDS:
        pos = [a for a in rest if not a.startswith("-")]
        if not path:
            if pos:
                fail('error: unknown command "%s" for "kubectl"' % pos[0])
            out("kubectl controls the Kubernetes cluster manager.")
            return 0
        if pos:
            fail('error: unknown command "%s" for "kubectl %s"' % (pos[0], key))
        fail("error: Required resource not specified." if key in ("top",) else
             "error: unknown command \"%s\" for \"kubectl\"" % key)
    fs = FlagSet(GLOBAL + COMMANDS[key], interspersed=True)
    try:
        vals, pos, dd = fs.parse(rest)
    except FlagError as e:
        flag_error(key, e)
    if key == "version":
        return cmd_version(vals, pos)
    st = State()
    st.acquire()
    try:
        return HANDLERS[key](st, vals, pos, dd)
    finally:
        if st.held:
            st.release()


def exec_real_kustomize(rest):
    try:
        p = subprocess.run([real_kubectl(), "kustomize"] + rest)
    except FileNotFoundError:
        fail("fake kubectl: real kubectl not found at %s (set FAKE_REAL_KUBECTL)" % real_kubectl(), 2)
    return p.returncode


def client_version():
    v = os.environ.get("FAKE_KUBECTL_VERSION", "1.36.1")
    major, minor, patch = v.split(".")
    return {"major": major, "minor": minor, "gitVersion": "v" + v, "gitCommit": "fake", "gitTreeState": "clean",
            "buildDate": "2026-05-12T00:00:00Z", "goVersion": "go1.25.1", "compiler": "gc", "platform": "linux/amd64"}


def cmd_version(vals, pos):
    if pos:
        fail("error: unknown command \"%s\" for \"kubectl version\"" % pos[0])
    doc = {"clientVersion": client_version(), "kustomizeVersion": "v5.7.1"}
    rc = 0
    if not vals["client"]:
        st = State()
        st.acquire()
        try:
            try:
                c = Conn(st, vals)
                v = c.cl["k8s_version"]
                major, minor, _ = v.lstrip("v").split(".")
                doc["serverVersion"] = {"major": major, "minor": minor, "gitVersion": v, "gitCommit": "fake",
                                        "gitTreeState": "clean", "buildDate": "2026-05-12T00:00:00Z",
                                        "goVersion": "go1.25.1", "compiler": "gc", "platform": "linux/amd64",
                                        "emulationMajor": major, "emulationMinor": minor,
                                        "minCompatibilityMajor": major, "minCompatibilityMinor": str(int(minor) - 1)}
            except Exit as e:
                rc = e.rc
        finally:
            st.release()
    o = vals["output"]
    if o == "json":
        out(json.dumps(doc, indent=2))
    elif o == "yaml":
        out(load_yaml().safe_dump(doc, sort_keys=False).rstrip())
    elif o:
        fail("error: --output must be 'yaml' or 'json'")
    else:
        out("Client Version: %s\nKustomize Version: v5.7.1" % doc["clientVersion"]["gitVersion"])
        if "serverVersion" in doc:
            out("Server Version: %s" % doc["serverVersion"]["gitVersion"])
    return rc


def cmd_cluster_info(st, vals, pos, dd):
    c = connect(st, vals)
    out("Kubernetes control plane is running at %s" % c.entry["server"])
    out("CoreDNS is running at %s/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy" % c.entry["server"])
    out("\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.")
    return 0


# ---------------------------------------------------------------- config

def cmd_use_context(st, vals, pos, dd):
    if len(pos) != 1:
        fail("error: Unexpected args: %s" % pos if pos else "error: Unexpected args: []")
    kc = KC.cfg(st, vals["kubeconfig"])
    if pos[0] not in kc["contexts"]:
        fail('error: no context exists with the name: "%s"' % pos[0])
    kc["current"] = pos[0]
    KC.mirror(st, vals["kubeconfig"])
    out('Switched to context "%s".' % pos[0])
    return 0


def cmd_current_context(st, vals, pos, dd):
    kc = KC.cfg(st, vals["kubeconfig"])
    if not kc["current"]:
        fail("error: current-context is not set")
    out(kc["current"])
    return 0


def cmd_get_contexts(st, vals, pos, dd):
    kc = KC.cfg(st, vals["kubeconfig"])
    names = sorted(kc["contexts"])
    if pos:
        missing = [p for p in pos if p not in kc["contexts"]]
        if missing:
            fail('error: context %s not found' % missing[0])
        names = [n for n in names if n in pos]
    if vals["output"] == "name":
        for n in names:
            out(n)
        return 0
    if vals["output"]:
        fail("error: output must be one of '' or 'name'")
    rows = [] if vals["no_headers"] else [["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]]
    for n in names:
        e = kc["contexts"][n]
        rows.append(["*" if n == kc["current"] else "", n, e["cluster"], e["user"], e.get("namespace", "")])
    sys.stdout.write(printers.tabwrite(rows))
    return 0


def cmd_config_view(st, vals, pos, dd):
    kc = KC.cfg(st, vals["kubeconfig"])
    ctxs = kc["contexts"]
    if vals["minify"]:
        cur = vals["context"] or kc["current"]
        ctxs = {cur: ctxs[cur]} if cur in ctxs else {}
    text = KC.render_kubeconfig(ctxs, kc["current"])
    if not vals["raw"]:
        text = text.replace("RkFLRQ==", "DATA+OMITTED")
    o = vals["output"]
    if o and o.startswith("jsonpath="):
        out(jsonpath.evaluate(o.split("=", 1)[1], load_yaml().safe_load(text)), end="")
    elif o == "json":
        out(json.dumps(load_yaml().safe_load(text), indent=4))
    else:
        sys.stdout.write(text)
    return 0


def cmd_set_context(st, vals, pos, dd):
    kc = KC.cfg(st, vals["kubeconfig"])
    name = kc["current"] if vals["current"] else (pos[0] if pos else None)
    if not name or name not in kc["contexts"]:
        fail("error: you must specify a non-empty context name or --current")
    if vals["namespace"] is not None:
        kc["contexts"][name]["namespace"] = vals["namespace"]
    KC.mirror(st, vals["kubeconfig"])
    out('Context "%s" modified.' % name)
    return 0


# ---------------------------------------------------------------- manifests

def read_manifests(vals, pos=None):
    """-> list of (source, doc)."""
    yaml = load_yaml()
    srcs = []
    if vals.get("kustomize"):
        if vals.get("filename"):
            fail("error: only one of -f or -k can be specified")
        p = subprocess.run([real_kubectl(), "kustomize", vals["kustomize"]], capture_output=True, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            raise Exit(1)
        srcs.append((vals["kustomize"], p.stdout))
    for f in vals.get("filename") or []:
        if f == "-":
            srcs.append(("STDIN", sys.stdin.read()))
        elif os.path.isdir(f):
            for fn in sorted(os.listdir(f)):
                if fn.endswith((".yaml", ".yml", ".json")):
                    with open(os.path.join(f, fn)) as fh:
                        srcs.append((os.path.join(f, fn), fh.read()))
        elif re.match(r"https?://", f):
            fail('error: unable to read URL "%s", server reported 404 Not Found, status code=404 (fake: no network)'
                 % f)
        else:
            try:
                with open(f) as fh:
                    srcs.append((f, fh.read()))
            except OSError:
                fail('error: the path "%s" does not exist' % f)
    if not srcs:
        fail("error: must specify one of -f and -k")
    docs = []
    for src, text in srcs:
        try:
            for d in yaml.safe_load_all(text):
                if not d:
                    continue
                if d.get("kind", "").endswith("List") and "items" in d:
                    docs.extend((src, x) for x in d["items"])
                else:
                    docs.append((src, d))
        except yaml.YAMLError as e:
            fail('error: error parsing %s: error converting YAML to JSON: %s' % (src, str(e).replace("\n", " ")))
    if not docs:
        fail("error: no objects passed to %s" % ("apply" if True else ""))
    for src, d in docs:
        if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d:
            fail("error: error validating \"%s\": error validating data: [apiVersion not set, kind not set]; if you "
                 "choose to ignore these errors, turn validation off with --validate=false" % src)
    return docs


def map_docs(c, docs, verb="creating"):
    """-> (list of (src, m, doc), errors)."""
    res, errs = [], []
    for src, d in docs:
        m = K.mapping_for_kind(c.cl, d["apiVersion"], d["kind"])
        md = d.setdefault("metadata", {})
        if m is None:
            errs.append('error: resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for '
                        'kind "%s" in version "%s"\nensure CRDs are installed first'
                        % (md.get("name", ""), md.get("namespace", ""), src, d["kind"], d["apiVersion"]))
            continue
        if m["namespaced"]:
            ns = md.get("namespace")
            if ns and c.ns_given and ns != c.ns:
                fail('error: the namespace from the provided object "%s" does not match the namespace "%s". You must '
                     'pass \'--namespace=%s\' to perform this operation.' % (ns, c.ns, ns))
            md["namespace"] = ns or c.ns
        res.append((src, m, d))
    return res, errs


def cmd_apply(st, vals, pos, dd):
    if pos:
        fail("error: Unexpected args: %s\nSee 'kubectl apply -h' for help and examples" % json.dumps(pos)
             .replace('"', "").replace(",", " "))
    docs = read_manifests(vals)
    c = connect(st, vals)
    mapped, errs = map_docs(c, docs)
    dry = vals["dry_run"] not in ("none", None)
    ssa = vals["server_side"]
    rc = 0
    outputs = []
    work = copy.deepcopy(c.cl) if dry else c.cl
    for src, m, d in mapped:
        try:
            verb, o = K.apply_object(work, m, copy.deepcopy(d), server_side=ssa,
                                     manager=vals["field_manager"] or None)
        except K.ApiError as e:
            if e.code == "NotFound" and "namespaces" in e.msg:
                errs.append('Error from server (NotFound): error when %s "%s": %s' % (
                    "creating", src, e.msg))
            else:
                errs.append('Error from server (%s): error when %s "%s": %s' % (
                    e.code, "applying patch" if K.get_obj(work, m, d["metadata"].get("namespace", ""),
                                                          d["metadata"]["name"]) else "creating", src, e.msg))
            continue
        if ssa:
            verb = "serverside-applied"
        outputs.append((m, o, verb))
    for m, o, verb in outputs:
        if vals["output"] == "name":
            out("%s/%s" % (K.kind_group(m), o["metadata"]["name"]))
        elif vals["output"] in ("json", "yaml"):
            pass
        else:
            out("%s/%s %s%s" % (K.kind_group(m), o["metadata"]["name"], verb,
                                {"client": " (dry run)", "server": " (server dry run)"}.get(vals["dry_run"], "")))
    if vals["output"] in ("json", "yaml"):
        print_objects([K.public(o) for m, o, v in outputs], vals["output"], single=len(outputs) == 1)
    if not dry:
        C.tick(st, c.cname)
    for e in errs:
        err(e)
        rc = 1
    return rc


def cmd_create(st, vals, pos, dd):
    docs = read_manifests(vals)
    c = connect(st, vals)
    mapped, errs = map_docs(c, docs)
    for src, m, d in mapped:
        ns = d["metadata"].get("namespace", "")
        if K.get_obj(c.cl, m, ns if m["namespaced"] else "", d["metadata"]["name"]) is not None:
            errs.append('Error from server (AlreadyExists): error when creating "%s": %s "%s" already exists'
                        % (src, K.gr(m), d["metadata"]["name"]))
            continue
        try:
            K.validate(c.cl, m, d)
            if m["namespaced"] and K.find(c.cl, "Namespace", "", ns) is None:
                raise K.ApiError('namespaces "%s" not found' % ns, "NotFound")
        except K.ApiError as e:
            errs.append('Error from server (%s): error when creating "%s": %s' % (e.code, src, e.msg))
            continue
        K.put_object(c.cl, m, d, "kubectl-create")
        out("%s/%s created" % (K.kind_group(m), d["metadata"]["name"]))
    C.tick(st, c.cname)
    for e in errs:
        err(e)
    return 1 if errs else 0


def _create_simple(st, vals, pos, obj, m_api, m_kind):
    c = connect(st, vals)
    m = K.mapping_for_kind(c.cl, m_api, m_kind)
    if m["namespaced"]:
        obj["metadata"]["namespace"] = c.ns
    if vals["dry_run"] not in ("none", None):
        if vals["output"] in ("yaml", "json"):
            print_objects([obj], vals["output"], single=True)
        else:
            out("%s/%s created (dry run)" % (K.kind_group(m), obj["metadata"]["name"]))
        return 0
    if K.get_obj(c.cl, m, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]):
        fail('error: failed to create %s: %s "%s" already exists' % (m["singular"], K.gr(m), obj["metadata"]["name"]))
    if m["namespaced"] and K.find(c.cl, "Namespace", "", c.ns) is None:
        fail('error: failed to create %s: namespaces "%s" not found' % (m["singular"], c.ns))
    K.put_object(c.cl, m, obj, "kubectl-create")
    C.tick(st, c.cname)
    out("%s/%s created" % (K.kind_group(m), obj["metadata"]["name"]))
    return 0


def cmd_create_namespace(st, vals, pos, dd):
    if len(pos) != 1:
        fail("error: exactly one NAME is required, got %d" % len(pos))
    return _create_simple(st, vals, pos, K.new_obj("v1", "Namespace", pos[0]), "v1", "Namespace")


def _literals(vals):
    data = {}
    for lit in vals["from_literal"]:
        k, _, v = lit.partition("=")
        data[k] = v
    for f in vals["from_file"]:
        k, _, p = f.partition("=")
        if not p:
            p, k = k, os.path.basename(k)
        with open(p) as fh:
            data[k] = fh.read()
    return data


def cmd_create_configmap(st, vals, pos, dd):
    if len(pos) != 1:
        fail("error: exactly one NAME is required, got %d" % len(pos))
    return _create_simple(st, vals, pos, K.new_obj("v1", "ConfigMap", pos[0], data=_literals(vals)), "v1",
                          "ConfigMap")


def cmd_create_secret(st, vals, pos, dd):
    if len(pos) != 1:
        fail("error: exactly one NAME is required, got %d" % len(pos))
    data = {k: base64.b64encode(v.encode()).decode() for k, v in _literals(vals).items()}
    return _create_simple(st, vals, pos, K.new_obj("v1", "Secret", pos[0], data=data,
                                                   type=vals["type"] or "Opaque"), "v1", "Secret")


# ---------------------------------------------------------------- get

def parse_targets(c, pos, allow_all=False):
    """-> list of (mapping, [names] or None)."""
    if not pos:
        fail("You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of "
             "supported resources.\n\nerror: Required resource not specified.\nUse \"kubectl explain <resource>\" "
             "for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for "
             "help and examples")
    if "/" in pos[0]:
        res = []
        for p in pos:
            if "/" not in p:
                fail("error: there is no need to specify a resource type as a separate argument when passing "
                     "arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of "
                     "'kubectl get resource resource/<resource_name>'")
            t, n = p.split("/", 1)
            m = resolve(c, t)
            res.append((m, [n]))
        return res
    types = pos[0].split(",")
    names = pos[1:] or None
    res = []
    for t in types:
        if t == "all" and allow_all:
            for tt in ("pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets",
                       "horizontalpodautoscalers", "jobs", "cronjobs"):
                res.append((resolve(c, tt), names))
            continue
        res.append((resolve(c, t), names))
    return res


def resolve(c, t):
    m = K.resolve_resource(c.cl, t)
    if m is None:
        fail('error: the server doesn\'t have a resource type "%s"' % t)
    return m


def field_match(o, fs):
    if not fs:
        return True
    for part in fs.split(","):
        neg = "!=" in part
        k, v = re.split(r"!=|==|=", part, 1)
        cur = jsonpath.evaluate("{.%s}" % k, o)
        if (cur == v) == neg:
            return False
    return True


def print_objects(objs, fmt, single=False):
    if single and len(objs) == 1:
        doc = objs[0]
    else:
        doc = {"apiVersion": "v1", "items": objs, "kind": "List", "metadata": {"resourceVersion": ""}}
    if fmt == "json":
        out(json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=False))
    elif fmt == "yaml":
        sys.stdout.write(load_yaml().safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True))
    return doc


def output_format(o):
    if not o:
        return None, None
    if o.startswith("jsonpath="):
        return "jsonpath", o.split("=", 1)[1]
    if o.startswith("jsonpath-as-json="):
        return "jsonpath-as-json", o.split("=", 1)[1]
    if o.startswith("custom-columns="):
        return "custom-columns", o.split("=", 1)[1]
    if o in ("json", "yaml", "name", "wide"):
        return o, None
    fail('error: unable to match a printer suitable for the output format "%s", allowed formats are: '
         'custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,'
         'jsonpath-file,name,template,templatefile,wide,yaml' % o)


def cmd_get(st, vals, pos, dd):
    if vals["watch"]:
        fail("fake kubectl: --watch is not supported by the fake", 2)
    c = connect(st, vals)
    if vals["raw"]:
        return get_raw(st, c, vals["raw"])
    fmt, arg = output_format(vals["output"])
    if vals["filename"] or vals["kustomize"]:
        docs = read_manifests(vals)
        targets = []
        for src, d in docs:
            m = K.mapping_for_kind(c.cl, d["apiVersion"], d["kind"])
            if m is None:
                fail('error: resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for kind '
                     '"%s" in version "%s"\nensure CRDs are installed first' % (
                         d["metadata"].get("name"), d["metadata"].get("namespace", ""), src, d["kind"],
                         d["apiVersion"]))
            targets.append((m, [d["metadata"]["name"]], d["metadata"].get("namespace")))
    else:
        targets = [(m, n, None) for m, n in parse_targets(c, pos, allow_all=True)]
    all_ns = vals["all_namespaces"]
    try:
        reqs = K.parse_selector(vals["selector"])
    except K.ApiError as e:
        fail(e.msg)
    results = []
    errs = []
    for m, names, ns_override in targets:
        ns = ns_override or c.ns
        if names:
            for n in names:
                o = K.get_obj(c.cl, m, ns if m["namespaced"] else "", n)
                if o is None:
                    if not vals["ignore_not_found"]:
                        errs.append('Error from server (NotFound): %s "%s" not found' % (K.gr(m), n))
                    continue
                results.append((m, o))
        else:
            objs = K.list_objs(c.cl, m, None if all_ns else ns)
            objs = [o for o in objs if K.match_selector_reqs(o["metadata"].get("labels"), reqs)
                    and field_match(o, vals["field_selector"])]
            results.extend((m, o) for o in objs)
    if vals["sort_by"]:
        results.sort(key=lambda mo: jsonpath.evaluate("{%s}" % vals["sort_by"].strip("{}"), mo[1]))
    single = bool(len(targets) == 1 and targets[0][1] and len(targets[0][1]) == 1)
    pubs = [K.public(o) for m, o in results]
    if fmt and fmt != "wide" and not results and vals["ignore_not_found"]:
        # kubectl's generic printers (json, yaml, name, jsonpath, custom-columns) print nothing at all
        # when --ignore-not-found leaves no object, not even an empty List (get.go, printGeneric).
        return 0
    if fmt in ("json", "yaml"):
        if results or not errs:
            print_objects(pubs, fmt, single=single and len(pubs) == 1)
    elif fmt == "name":
        for m, o in results:
            out("%s/%s" % (K.kind_group(m), o["metadata"]["name"]))
    elif fmt in ("jsonpath", "jsonpath-as-json"):
        doc = pubs[0] if single and len(pubs) == 1 else {"apiVersion": "v1", "items": pubs, "kind": "List",
                                                         "metadata": {"resourceVersion": ""}}
        try:
            out(jsonpath.evaluate(arg, doc), end="")
        except jsonpath.JPError as e:
            fail("error: error parsing jsonpath %s, %s" % (arg, e))
    elif fmt == "custom-columns":
        cols = [x.split(":", 1) for x in arg.split(",")]
        rows = [] if vals["no_headers"] else [[h for h, _ in cols]]
        for p in pubs:
            rows.append([jsonpath.evaluate("{%s}" % e, p) or "<none>" for _, e in cols])
        sys.stdout.write(printers.tabwrite(rows))
    else:
        by_m = []
        for m, o in results:
            if not by_m or by_m[-1][0] is not m:
                by_m.append((m, []))
            by_m[-1][1].append(o)
        show_kind = len(targets) > 1 or vals["show_kind"]
        first = True
        for m, objs in by_m:
            if not first:
                out("")
            first = False
            sys.stdout.write(printers.table(c.cl, m, objs, wide=(fmt == "wide"), all_ns=all_ns, show_kind=show_kind,
                                            no_headers=vals["no_headers"], show_labels=vals["show_labels"]))
        if not results and not errs and not vals["ignore_not_found"]:
            if all_ns or not targets[0][0]["namespaced"]:
                err("No resources found")
            else:
                err("No resources found in %s namespace." % c.ns)
    for e in errs:
        err(e)
    return 1 if errs else 0


def get_raw(st, c, path):
    path = path.split("?")[0]
    if path in ("/readyz", "/healthz", "/livez"):
        out("ok", end="")
        return 0
    if path == "/version":
        v = c.cl["k8s_version"]
        out(json.dumps({"major": v[1:].split(".")[0], "minor": v.split(".")[1], "gitVersion": v}, indent=2))
        return 0
    m = re.fullmatch(r"/apis/metrics\.k8s\.io/v1beta1(/namespaces/([^/]+))?/(pods|nodes)(/([^/]+))?", path)
    if m:
        if not C.metrics_available(c.cl):
            fail("Error from server (NotFound): the server could not find the requested resource")
        ns, kind, name = m.group(2), m.group(3), m.group(5)
        ts = now_iso()
        items = []
        if kind == "nodes":
            for n in K.objs_of_kind(c.cl, "Node"):
                if name and n["metadata"]["name"] != name:
                    continue
                pods = [p for p in K.objs_of_kind(c.cl, "Pod") if p["spec"].get("nodeName") == n["metadata"]["name"]]
                items.append({"metadata": {"name": n["metadata"]["name"], "creationTimestamp": ts,
                                           "labels": n["metadata"].get("labels")},
                              "timestamp": ts, "window": "20.05s",
                              "usage": {"cpu": "%dm" % (120 + 15 * len(pods)),
                                        "memory": "%dKi" % (600000 + 30000 * len(pods))}})
            kindname = "NodeMetrics"
        else:
            for p in K.objs_of_kind(c.cl, "Pod", ns):
                if name and p["metadata"]["name"] != name:
                    continue
                if (p.get("status") or {}).get("phase") != "Running":
                    continue
                load = C.load_of(st, c.cl, p["metadata"]["namespace"])
                conts = []
                for ct in p["spec"].get("containers") or []:
                    req = ((ct.get("resources") or {}).get("requests") or {}).get("cpu", "100m")
                    reqm = int(req[:-1]) if str(req).endswith("m") else int(float(req) * 1000)
                    cpu = max(1, int(reqm * (load if load is not None else 1) / 100))
                    conts.append({"name": ct["name"], "usage": {"cpu": "%dm" % cpu, "memory": "24576Ki"}})
                items.append({"metadata": {"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"],
                                           "creationTimestamp": ts, "labels": p["metadata"].get("labels")},
                              "timestamp": ts, "window": "20.05s", "containers": conts})
            kindname = "PodMetrics"
        if name:
            if not items:
                fail('Error from server (NotFound): %s.metrics.k8s.io "%s" not found' % (kind, name))
            doc = dict(items[0], kind=kindname, apiVersion="metrics.k8s.io/v1beta1")
        else:
            doc = {"kind": kindname + "List", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                   "items": items}
        out(json.dumps(doc, separators=(",", ":")))
        return 0
    m = re.fullmatch(r"/apis/([^/]+)/([^/]+)", path)
    if m and any(x["group"] == m.group(1) and m.group(2) in x["versions"] for x in K.all_mappings(c.cl)):
        res = [{"name": x["plural"], "kind": x["kind"], "namespaced": x["namespaced"]}
               for x in K.all_mappings(c.cl) if x["group"] == m.group(1)]
        out(json.dumps({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % m.groups(),
                        "resources": res}, separators=(",", ":")))
        return 0
    fail("Error from server (NotFound): the server could not find the requested resource")


def cmd_top(st, vals, pos, dd, nodes=False):
    c = connect(st, vals)
    if not C.metrics_available(c.cl):
        fail("error: Metrics API not available")
    if nodes:
        rows = [["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]]
        for n in K.objs_of_kind(c.cl, "Node"):
            pods = [p for p in K.objs_of_kind(c.cl, "Pod") if p["spec"].get("nodeName") == n["metadata"]["name"]]
            cpu = 120 + 15 * len(pods)
            rows.append([n["metadata"]["name"], "%dm" % cpu, "%d%%" % (cpu // 80), "%dMi" % (600 + 30 * len(pods)),
                         "4%"])
    else:
        rows = [["NAME", "CPU(cores)", "MEMORY(bytes)"]]
        if vals["all_namespaces"]:
            rows[0].insert(0, "NAMESPACE")
        for p in K.objs_of_kind(c.cl, "Pod", None if vals["all_namespaces"] else c.ns):
            load = C.load_of(st, c.cl, p["metadata"]["namespace"])
            r = [p["metadata"]["name"], "%dm" % max(1, int(load or 1)), "24Mi"]
            if vals["all_namespaces"]:
                r.insert(0, p["metadata"]["namespace"])
            rows.append(r)
    if vals["no_headers"]:
        rows = rows[1:]
    sys.stdout.write(printers.tabwrite(rows))
    return 0


def cmd_describe(st, vals, pos, dd):
    c = connect(st, vals)
    targets = parse_targets(c, pos)
    yaml = load_yaml()
    rc = 0
    for m, names in targets:
        objs = [K.get_obj(c.cl, m, c.ns if m["namespaced"] else "", n) for n in names] if names else \
            K.list_objs(c.cl, m, c.ns)
        for n, o in zip(names or [None] * len(objs), objs):
            if o is None:
                err('Error from server (NotFound): %s "%s" not found' % (K.gr(m), n))
                rc = 1
                continue
            out("Name:         %s" % o["metadata"]["name"])
            if m["namespaced"]:
                out("Namespace:    %s" % o["metadata"]["namespace"])
            out("Labels:       %s" % (",".join("%s=%s" % kv for kv in (o["metadata"].get("labels") or {}).items())
                                      or "<none>"))
            out("(fake kubectl describe: object dump follows)")
            sys.stdout.write(yaml.safe_dump(K.public(o), sort_keys=True))
            evs = [e for e in K.objs_of_kind(c.cl, "Event", o["metadata"].get("namespace"))
                   if e["involvedObject"].get("uid") == o["metadata"].get("uid")]
            out("Events:%s" % ("  <none>" if not evs else ""))
            for e in evs:
                out("  %s  %s  %s" % (e["type"], e["reason"], e["message"]))
            out("")
    return rc


# ---------------------------------------------------------------- delete / scale / label / patch

def _targets_from_files_or_args(c, vals, pos):
    res = []
    if vals.get("filename") or vals.get("kustomize"):
        docs = read_manifests(vals)
        for src, d in docs:
            m = K.mapping_for_kind(c.cl, d["apiVersion"], d["kind"])
            if m is None:
                err('error: resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for kind '
                    '"%s" in version "%s"\nensure CRDs are installed first' % (
                        d["metadata"].get("name"), d["metadata"].get("namespace", ""), src, d["kind"],
                        d["apiVersion"]))
                continue
            res.append((m, d["metadata"]["name"], d["metadata"].get("namespace") or c.ns))
        return res
    targets = parse_targets(c, pos)
    reqs = K.parse_selector(vals.get("selector"))
    for m, names in targets:
        if names:
            res.extend((m, n, c.ns) for n in names)
        elif vals.get("selector") or vals.get("all"):
            for o in K.list_objs(c.cl, m, None if vals.get("all_namespaces") else c.ns):
                if K.match_selector_reqs(o["metadata"].get("labels"), reqs):
                    res.append((m, o["metadata"]["name"], o["metadata"].get("namespace", "")))
        else:
            fail("error: resource(s) were provided, but no name was specified")
    return res


def cmd_delete(st, vals, pos, dd):
    c = connect(st, vals)
    rc = 0
    targets = _targets_from_files_or_args(c, vals, pos)
    if not targets and (vals["selector"] or vals["all"]):
        err("No resources found")
    for m, name, ns in targets:
        o = K.get_obj(c.cl, m, ns if m["namespaced"] else "", name)
        if o is None:
            if not vals["ignore_not_found"]:
                err('Error from server (NotFound): %s "%s" not found' % (K.gr(m), name))
                rc = 1
            continue
        K.delete_object(c.cl, o)
        if m["kind"] == "Namespace":
            appnet.stop_apps(st, "%s/%s/" % (c.cname, name))
        out('%s "%s" deleted%s' % (K.kind_group(m), name,
                                   (" from %s namespace" % ns) if m["namespaced"] else ""))
    C.tick(st, c.cname)
    return rc


def cmd_scale(st, vals, pos, dd):
    if vals["replicas"] < 0:
        fail("error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    c = connect(st, vals)
    rc = 0
    for m, name, ns in _targets_from_files_or_args(c, vals, pos):
        if m["kind"] not in ("Deployment", "StatefulSet", "ReplicaSet"):
            fail('error: no objects passed to scale %s "%s" is not scalable' % (K.gr(m), name))
        o = K.get_obj(c.cl, m, ns, name)
        if o is None:
            err('Error from server (NotFound): %s "%s" not found' % (K.gr(m), name))
            rc = 1
            continue
        if o["spec"].get("replicas") != vals["replicas"]:
            o["spec"]["replicas"] = vals["replicas"]
            o["metadata"]["generation"] = o["metadata"].get("generation", 1) + 1
            K.touch(c.cl, o)
        out("%s/%s scaled" % (K.kind_group(m), name))
    C.tick(st, c.cname)
    return rc


def _kv_args(args, what):
    sets, removes = {}, []
    for a in args:
        if a.endswith("-") and "=" not in a:
            removes.append(a[:-1])
        elif "=" in a:
            k, v = a.split("=", 1)
            sets[k] = v
        else:
            fail("error: all resources must be specified before %s changes: %s" % (what, a))
    return sets, removes


def cmd_label(st, vals, pos, dd, field="labels", verb="labeled"):
    c = connect(st, vals)
    # split resource args from key=value args
    i = 0
    res_args = []
    while i < len(pos) and ("=" not in pos[i] and not pos[i].endswith("-") or (i == 0)):
        res_args.append(pos[i])
        i += 1
    kv = pos[i:]
    if not kv:
        fail("error: at least one %s update is required" % ("label" if field == "labels" else "annotation"))
    sets, removes = _kv_args(kv, "label" if field == "labels" else "annotation")
    rc = 0
    for m, name, ns in _targets_from_files_or_args(c, vals, res_args):
        o = K.get_obj(c.cl, m, ns if m["namespaced"] else "", name)
        if o is None:
            err('Error from server (NotFound): %s "%s" not found' % (K.gr(m), name))
            rc = 1
            continue
        cur = o["metadata"].setdefault(field, {})
        for k, v in sets.items():
            if k in cur and cur[k] != v and not vals["overwrite"]:
                fail("error: '%s' already has a value (%s), and --overwrite is false" % (k, cur[k]))
        changed = any(cur.get(k) != v for k, v in sets.items()) or any(k in cur for k in removes)
        cur.update(sets)
        for k in removes:
            cur.pop(k, None)
        if changed:
            K.touch(c.cl, o)
        fmt = vals.get("output")
        if fmt in ("json", "yaml"):  # the object as the PATCH returned it, one document per object
            print_objects([K.public(o)], fmt, single=True)
        elif fmt == "name":
            out("%s/%s" % (K.kind_group(m), name))
        elif fmt:
            output_format(fmt)
            fail("fake kubectl: %s -o %s is not supported by the fake" % ("label" if field == "labels" else "annotate",
                                                                       fmt), 2)
        else:
            out("%s/%s %s%s" % (K.kind_group(m), name, "" if changed else "not ", verb))
    C.tick(st, c.cname)
    return rc


def cmd_annotate(st, vals, pos, dd):
    return cmd_label(st, vals, pos, dd, field="annotations", verb="annotated")


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out_ = copy.deepcopy(target)
    for k, v in patch.items():
        if v is None:
            out_.pop(k, None)
        else:
            out_[k] = merge_patch(out_.get(k), v)
    return out_


def cmd_patch(st, vals, pos, dd):
    c = connect(st, vals)
    ptype = vals["type"] or "strategic"
    if ptype not in ("merge", "strategic", "json"):
        fail('error: --type must be one of [json merge strategic], not "%s"' % ptype)
    raw = vals["patch"]
    if vals["patch_file"]:
        with open(vals["patch_file"]) as f:
            raw = f.read()
    if raw is None:
        fail("error: must specify --patch or --patch-file containing the contents of the patch")
    try:
        patch = load_yaml().safe_load(raw)
    except Exception as e:
        fail("error: unable to parse \"%s\": %s" % (raw, e))
    rc = 0
    for m, name, ns in _targets_from_files_or_args(c, vals, pos):
        o = K.get_obj(c.cl, m, ns if m["namespaced"] else "", name)
        if o is None:
            err('Error from server (NotFound): %s "%s" not found' % (K.gr(m), name))
            rc = 1
            continue
        if ptype == "json":
            new = K.public(o)
            for op in patch:
                parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].strip("/").split("/")]
                cur = new
                for p in parts[:-1]:
                    cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
                last = parts[-1]
                if op["op"] in ("add", "replace"):
                    if isinstance(cur, list):
                        if last == "-":
                            cur.append(op["value"])
                        elif op["op"] == "add":
                            cur.insert(int(last), op["value"])
                        else:
                            cur[int(last)] = op["value"]
                    else:
                        cur[last] = op["value"]
                elif op["op"] == "remove":
                    if isinstance(cur, list):
                        cur.pop(int(last))
                    else:
                        cur.pop(last, None)
        else:
            new = merge_patch(K.public(o), patch)
        if "status" in o:
            new["status"] = o["status"]
        new["_fake"] = o.get("_fake", {})
        try:
            K.validate(c.cl, m, new)
        except K.ApiError as e:
            err("Error from server (%s): %s" % (e.code, e.msg))
            rc = 1
            continue
        verb, _ = K.put_object(c.cl, m, new, "kubectl-patch")
        out("%s/%s %s" % (K.kind_group(m), name, "patched" if verb != "unchanged" else "patched (no change)"))
    C.tick(st, c.cname)
    return rc


# ---------------------------------------------------------------- wait / rollout

def _cond_check(o, spec):
    """--for=... -> (met, description)."""
    if spec == "delete":
        return o is None
    if o is None:
        return False
    if spec.startswith("condition="):
        body = spec[len("condition="):]
        ctype, _, want = body.partition("=")
        want = want or "True"
        c = K.get_condition(o, ctype)
        if c is None:
            for x in (o.get("status") or {}).get("conditions") or []:
                if x["type"].lower() == ctype.lower():
                    c = x
        return bool(c and str(c.get("status")).lower() == want.lower())
    if spec.startswith("jsonpath="):
        body = spec[len("jsonpath="):]
        m = re.match(r"^(\{.*\}|[^=]+)(?:=(.*))?$", body)
        expr, want = m.group(1), m.group(2)
        if not expr.startswith("{"):
            expr = "{%s}" % expr
        val = jsonpath.evaluate(expr, K.public(o))
        if want is None:
            return val != ""
        return val == want
    if spec == "create":
        return True
    fail('error: unrecognized condition: "%s"' % spec)


def cmd_wait(st, vals, pos, dd):
    if not vals["for"]:
        fail("error: --for must be specified")
    try:
        timeout = parse_duration(vals["timeout"])
    except ValueError as e:
        fail('error: invalid argument "%s" for "--timeout" flag: %s' % (vals["timeout"], e))
    c = connect(st, vals)
    fmt = vals["output"]
    if fmt not in (None, "", "json", "yaml", "name"):
        output_format(fmt)  # its error for an unknown format
        fail("fake kubectl: wait -o %s is not supported by the fake" % fmt, 2)
    for f in vals["for"]:
        if not (f in ("delete", "create") or f.startswith("condition=") or f.startswith("jsonpath=")):
            fail('error: unrecognized condition: "%s"' % f)
    # resolve targets once
    targets = []
    if vals["filename"] or vals["kustomize"]:
        targets = [(m, n, ns) for m, n, ns in _targets_from_files_or_args(c, vals, pos)]
    else:
        for m, names in parse_targets(c, pos):
            if names:
                targets.extend((m, n, c.ns if m["namespaced"] else "") for n in names)
            elif vals["all"] or vals["selector"]:
                reqs = K.parse_selector(vals["selector"])
                objs = [o for o in K.list_objs(c.cl, m, None if vals["all_namespaces"] else c.ns)
                        if K.match_selector_reqs(o["metadata"].get("labels"), reqs)]
                if not objs:
                    fail("error: no matching resources found")
                targets.extend((m, o["metadata"]["name"], o["metadata"].get("namespace", "")) for o in objs)
            else:
                fail("error: resource name may not be empty")
    for m, n, ns in targets:
        if "delete" not in vals["for"] and K.get_obj(c.cl, m, ns, n) is None:
            fail('Error from server (NotFound): %s "%s" not found' % (K.gr(m), n))
    deadline = time.time() + min(timeout, 1.0)
    pending = list(targets)
    while True:
        still = []
        for m, n, ns in pending:
            o = K.get_obj(c.cl, m, ns, n)
            if all(_cond_check(o, f) for f in vals["for"]):
                verb = "deleted" if vals["for"] == ["delete"] else "condition met"
                if fmt in ("json", "yaml") and o is not None:  # kubectl prints the object it waited for
                    print_objects([K.public(o)], fmt, single=True)
                elif fmt == "name":
                    out("%s/%s" % (K.kind_group(m), n))
                else:
                    out("%s/%s %s" % (K.kind_group(m), n, verb))
            else:
                still.append((m, n, ns))
        pending = still
        if not pending or time.time() >= deadline:
            break
        st.release()
        time.sleep(0.25)
        st.acquire()
        c = connect(st, vals)
    if pending:
        for m, n, ns in pending:
            err("error: timed out waiting for the condition on %s/%s" % (m["plural"], n))
        raise Exit(1)
    return 0


def _rollout_target(c, pos):
    if not pos:
        fail("error: required resource not specified")
    if "/" in pos[0]:
        t, n = pos[0].split("/", 1)
    elif len(pos) >= 2:
        t, n = pos[0], pos[1]
    else:
        fail("error: required resource not specified")
    m = resolve(c, t)
    if m["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
        fail("error: no status viewer has been implemented for %s" % m["kind"])
    return m, n


def _rollout_state(o):
    k = o["kind"]
    s = o.get("status") or {}
    if k == "Deployment":
        want = o["spec"].get("replicas", 1)
        if s.get("observedGeneration", 0) < o["metadata"].get("generation", 1):
            return False, "Waiting for deployment spec update to be observed..."
        if s.get("updatedReplicas", 0) < want:
            return False, 'Waiting for deployment "%s" rollout to finish: %d out of %d new replicas have been ' \
                          'updated...' % (o["metadata"]["name"], s.get("updatedReplicas", 0), want)
        if s.get("replicas", 0) > s.get("updatedReplicas", 0):
            return False, 'Waiting for deployment "%s" rollout to finish: %d old replicas are pending termination...' \
                % (o["metadata"]["name"], s.get("replicas", 0) - s.get("updatedReplicas", 0))
        if s.get("availableReplicas", 0) < s.get("updatedReplicas", 0):
            return False, 'Waiting for deployment "%s" rollout to finish: %d of %d updated replicas are available...' \
                % (o["metadata"]["name"], s.get("availableReplicas", 0), s.get("updatedReplicas", 0))
        return True, 'deployment "%s" successfully rolled out' % o["metadata"]["name"]
    if k == "StatefulSet":
        want = o["spec"].get("replicas", 1)
        if s.get("readyReplicas", 0) < want:
            return False, "Waiting for %d pods to be ready..." % (want - s.get("readyReplicas", 0))
        return True, "partitioned roll out complete: %d new pods have been updated..." % want
    if s.get("numberReady", 0) < s.get("desiredNumberScheduled", 0):
        return False, 'Waiting for daemon set "%s" rollout to finish: %d of %d updated pods are available...' % (
            o["metadata"]["name"], s.get("numberReady", 0), s.get("desiredNumberScheduled", 0))
    return True, 'daemon set "%s" successfully rolled out' % o["metadata"]["name"]


def cmd_rollout_status(st, vals, pos, dd):
    c = connect(st, vals)
    m, n = _rollout_target(c, pos)
    o = K.get_obj(c.cl, m, c.ns, n)
    if o is None:
        fail('Error from server (NotFound): %s "%s" not found' % (K.gr(m), n))
    ok, msg = _rollout_state(o)
    if ok:
        out(msg)
        return 0
    out(msg)
    if not vals["watch"]:
        return 0
    st.release()
    time.sleep(0.3)
    st.acquire()
    c = connect(st, vals)
    o = K.get_obj(c.cl, m, c.ns, n)
    ok, msg2 = _rollout_state(o) if o else (False, msg)
    if ok:
        out(msg2)
        return 0
    fail("error: timed out waiting for the condition")


def cmd_rollout_restart(st, vals, pos, dd):
    c = connect(st, vals)
    m, n = _rollout_target(c, pos)
    o = K.get_obj(c.cl, m, c.ns, n)
    if o is None:
        fail('Error from server (NotFound): %s "%s" not found' % (K.gr(m), n))
    o["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {})[
        "kubectl.kubernetes.io/restartedAt"] = now_iso()
    o["metadata"]["generation"] = o["metadata"].get("generation", 1) + 1
    K.touch(c.cl, o)
    C.tick(st, c.cname)
    out("%s/%s restarted" % (K.kind_group(m), n))
    return 0


def cmd_rollout_history(st, vals, pos, dd):
    c = connect(st, vals)
    m, n = _rollout_target(c, pos)
    o = K.get_obj(c.cl, m, c.ns, n)
    if o is None:
        fail('Error from server (NotFound): %s "%s" not found' % (K.gr(m), n))
    out("%s/%s \nREVISION  CHANGE-CAUSE" % (K.kind_group(m), n))
    revs = sorted(int((r["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))
                  for r in C.owned_by(c.cl, "ReplicaSet", o))
    for r in revs:
        out("%-9d <none>" % r)
    out("")
    return 0


# ---------------------------------------------------------------- logs

def _pod_for(c, target, need_running=False):
    """deploy/X, svc/X, pod/X, X -> pod."""
    if "/" in target:
        t, n = target.split("/", 1)
        m = resolve(c, t)
    else:
        m, n = K.resolve_resource(c.cl, "pods"), target
    o = K.get_obj(c.cl, m, c.ns, n)
    if o is None:
        fail('Error from server (NotFound): %s "%s" not found' % (K.gr(m), n))
    if m["kind"] == "Pod":
        return o, [o]
    if m["kind"] == "Service":
        sel = o["spec"].get("selector") or {}
        pods = [p for p in K.objs_of_kind(c.cl, "Pod", c.ns)
                if sel and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
    elif m["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        sel = o["spec"].get("selector") or {}
        pods = [p for p in K.objs_of_kind(c.cl, "Pod", c.ns)
                if K.match_label_selector(p["metadata"].get("labels"), sel)]
    else:
        fail("error: cannot attach to %s: selector for %s not implemented" % (m["kind"], m["kind"]))
    pods.sort(key=lambda p: (not C.pod_ready(p), p["metadata"]["name"]))
    if not pods:
        fail("error: timed out waiting for the condition")
    return pods[0], pods


def cmd_logs(st, vals, pos, dd):
    if vals["follow"]:
        fail("fake kubectl: logs -f is not supported by the fake", 2)
    c = connect(st, vals)
    if not pos and not vals["selector"]:
        fail("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required "
             "argument for the logs command\nSee 'kubectl logs -h' for help and examples")
    if vals["selector"]:
        reqs = K.parse_selector(vals["selector"])
        pods = [p for p in K.objs_of_kind(c.cl, "Pod", c.ns) if K.match_selector_reqs(p["metadata"].get("labels"),
                                                                                         reqs)]
        if not pods:
            err("No resources found in %s namespace." % c.ns)
            return 0
        chosen = pods
    else:
        pod, pods = _pod_for(c, pos[0])
        if len(pods) > 1 and "/" in pos[0] and not pos[0].startswith(("pod/", "pods/", "po/")):
            err("Found %d pods, using pod/%s" % (len(pods), pod["metadata"]["name"]))
        chosen = [pod]
    for pod in chosen:
        cs = (pod.get("status") or {}).get("containerStatuses") or []
        if cs and "waiting" in (cs[0].get("state") or {}):
            fail('Error from server (BadRequest): container "%s" in pod "%s" is waiting to start: trying and failing '
                 'to pull image' % (cs[0]["name"], pod["metadata"]["name"]))
        if (pod.get("status") or {}).get("phase") == "Pending" and not cs:
            fail('Error from server (BadRequest): container "%s" in pod "%s" is waiting to start: ContainerCreating'
                 % (pod["spec"]["containers"][0]["name"], pod["metadata"]["name"]))
        lines = pod_log_lines(st, c, pod)
        if vals["tail"] >= 0:
            lines = lines[-vals["tail"]:] if vals["tail"] else []
        for ln in lines:
            out(("[pod/%s/%s] " % (pod["metadata"]["name"], pod["spec"]["containers"][0]["name"])
                 if vals["prefix"] else "") + ln)
    return 0


def pod_log_lines(st, c, pod):
    kind, wl = appnet.workload_of(c.cl, pod)
    key = "%s/%s/%s/%s" % (c.cname, pod["metadata"]["namespace"], kind, wl)
    a = st.data["apps"].get(key)
    lines = []
    if a and os.path.exists(a.get("log", "")):
        with open(a["log"], errors="replace") as f:
            lines = f.read().splitlines()
    img = pod["spec"]["containers"][0].get("image", "")
    if not lines:
        if "metrics-server" in img and C.container_ready_override(pod):
            node = pod["spec"].get("nodeName", "")
            lines = ['E0101 00:00:00.000000       1 scraper.go:149] "Failed to scrape node" err="Get '
                     '\\"https://172.18.0.3:10250/metrics/resource\\": tls: failed to verify certificate: x509: cannot '
                     'validate certificate for 172.18.0.3 because it doesn\'t contain any IP SANs" node="%s"' % node]
        else:
            lines = ["fake: container %s (%s) started" % (pod["spec"]["containers"][0]["name"], img)]
    return lines


# ---------------------------------------------------------------- run / exec

def cmd_run(st, vals, pos, dd):
    if not pos:
        fail("error: NAME is required for run")
    if not vals["image"]:
        fail("error: --image is required")
    name = pos[0]
    args = (pos[1:] + (dd or []))
    c = connect(st, vals)
    labels = {"run": name}
    if vals["labels"]:
        labels = dict(kv.split("=", 1) for kv in vals["labels"].split(","))
    cont = {"name": name, "image": vals["image"]}
    if args:
        cont["command" if vals["command"] else "args"] = args
    if vals["env"]:
        cont["env"] = [{"name": e.split("=", 1)[0], "value": e.split("=", 1)[1]} for e in vals["env"]]
    if vals["stdin"]:
        cont["stdin"] = True
        cont["stdinOnce"] = True
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": c.ns, "labels": labels},
           "spec": {"containers": [cont], "restartPolicy": vals["restart"], "dnsPolicy": "ClusterFirst"}}
    if vals["overrides"]:
        try:
            pod = merge_patch(pod, json.loads(vals["overrides"]))
        except ValueError as e:
            fail("error: unable to parse %s: %s" % (vals["overrides"], e))
    m = K.mapping_for_kind(c.cl, "v1", "Pod")
    if vals["dry_run"] not in ("none", None):
        print_objects([pod], vals["output"] or "yaml", single=True)
        return 0
    if K.get_obj(c.cl, m, c.ns, name):
        fail('Error from server (AlreadyExists): pods "%s" already exists' % name)
    if K.find(c.cl, "Namespace", "", c.ns) is None:
        fail('Error from server (NotFound): namespaces "%s" not found' % c.ns)
    _, stored = K.put_object(c.cl, m, pod, "kubectl-run")
    C.tick(st, c.cname)
    stored = K.get_obj(c.cl, m, c.ns, name)
    attach = vals["attach"] or vals["stdin"] or vals["rm"]
    if not attach:
        out("pod/%s created" % name)
        return 0
    rc = 0
    if stored["status"].get("phase") != "Running":
        err("error: timed out waiting for the condition")
        rc = 1
    else:
        cmdv = cont.get("command", []) + cont.get("args", []) if "command" in cont else cont.get("args", [])
        if cmdv:
            rc = run_in_pod(st, c, stored, cmdv)
    if vals["rm"]:
        c = connect(st, vals, tick=False)
        o = K.get_obj(c.cl, m, c.ns, name)
        if o:
            K.delete_object(c.cl, o)
        out('pod "%s" deleted from %s namespace' % (name, c.ns))
    return rc


def cmd_exec(st, vals, pos, dd):
    if not pos:
        fail("error: pod, type/name or --filename must be specified")
    cmdv = (pos[1:] if len(pos) > 1 else []) + (dd or [])
    if len(pos) > 1 and dd is not None:
        fail("error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead")
    if not cmdv:
        fail("error: you must specify at least one command for the container")
    c = connect(st, vals)
    pod, _ = _pod_for(c, pos[0])
    if (pod.get("status") or {}).get("phase") != "Running":
        fail("error: unable to upgrade connection: container not found (\"%s\")"
             % pod["spec"]["containers"][0]["name"])
    return run_in_pod(st, c, pod, cmdv)


def _parse_curl(argv):
    o = {"silent": False, "fail": False, "out": None, "write": None, "timeout": None, "include": False,
         "method": "GET", "headers": [], "url": None, "show_error": False, "head": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if a in ("-s", "--silent"):
            o["silent"] = True
        elif a in ("-S", "--show-error"):
            o["show_error"] = True
        elif a in ("-f", "--fail", "--fail-with-body"):
            o["fail"] = True
        elif a in ("-sS", "-Ss", "-fsS", "-sSf", "-fs", "-sf", "-fsSL", "-sSL", "-fSs", "-sfS", "-Ssf", "-sfL"):
            o["silent"] = "s" in a
            o["show_error"] = "S" in a
            o["fail"] = "f" in a
        elif a in ("-L", "--location", "-k", "--insecure", "-v", "--verbose", "-4", "-q"):
            pass
        elif a in ("-i", "--include"):
            o["include"] = True
        elif a in ("-I", "--head"):
            o["head"] = True
            o["method"] = "HEAD"
        elif a in ("-o", "--output"):
            o["out"] = nxt
            i += 1
        elif a in ("-w", "--write-out"):
            o["write"] = nxt
            i += 1
        elif a in ("-m", "--max-time", "--connect-timeout"):
            o["timeout"] = float(nxt)
            i += 1
        elif a in ("-X", "--request"):
            o["method"] = nxt
            i += 1
        elif a in ("-H", "--header"):
            o["headers"].append(nxt)
            i += 1
        elif a.startswith("-"):
            raise ValueError(a)
        else:
            o["url"] = a
        i += 1
    return o


def _parse_wget(argv):
    o = {"quiet": False, "out": None, "timeout": None, "url": None, "spider": False, "headers_out": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if a in ("-q", "--quiet"):
            o["quiet"] = True
        elif a in ("-O", "--output-document"):
            o["out"] = nxt
            i += 1
        elif a.startswith("-O") and len(a) > 2:
            o["out"] = a[2:]
        elif a in ("-qO-", "-qO", "-qO-"):
            o["quiet"] = True
            o["out"] = "-" if a.endswith("-") else nxt
            if not a.endswith("-"):
                i += 1
        elif a in ("-T", "--timeout"):
            o["timeout"] = float(nxt)
            i += 1
        elif a.startswith("--timeout="):
            o["timeout"] = float(a.split("=", 1)[1])
        elif a.startswith("-T") and len(a) > 2:
            o["timeout"] = float(a[2:])
        elif a == "--spider":
            o["spider"] = True
        elif a in ("-S", "--server-response"):
            o["headers_out"] = True
        elif a.startswith("-"):
            raise ValueError(a)
        else:
            o["url"] = a
        i += 1
    return o


def run_in_pod(st, c, pod, cmdv):
    """Execute a (curl|wget) command inside POD."""
    prog = os.path.basename(cmdv[0])
    if prog in ("sh", "bash", "/bin/sh") and len(cmdv) == 3 and cmdv[1] == "-c":
        import shlex
        cmdv = shlex.split(cmdv[2])
        prog = os.path.basename(cmdv[0])
    if prog == "curl":
        try:
            o = _parse_curl(cmdv[1:])
        except (ValueError, TypeError) as e:
            err("fake: unsupported curl option %s" % e)
            raise Exit(126)
    elif prog == "wget":
        try:
            o = _parse_wget(cmdv[1:])
        except (ValueError, TypeError) as e:
            err("fake: unsupported wget option %s" % e)
            raise Exit(126)
    elif prog in ("true", "env", "hostname", "echo", "cat", "nslookup"):
        if prog == "echo":
            out(" ".join(cmdv[1:]))
        elif prog == "hostname":
            out(pod["metadata"]["name"])
        elif prog == "env":
            for k, v in appnet.container_env(c.cl, pod, pod["spec"]["containers"][0]).items():
                out("%s=%s" % (k, v))
        elif prog == "nslookup":
            return _nslookup(c, pod, cmdv[1:])
        elif prog == "cat":
            err("fake: cat inside pods is not supported")
            raise Exit(126)
        return 0
    else:
        err("fake: unsupported exec: %s" % " ".join(cmdv))
        raise Exit(126)
    url = o["url"]
    if not url:
        err("curl: no URL specified!" if prog == "curl" else "wget: missing URL")
        raise Exit(2 if prog == "curl" else 1)
    mm = re.match(r"^(?:(https?)://)?([^/:]+)(?::(\d+))?(/.*)?$", url)
    if not mm:
        err("curl: (3) URL rejected: Malformed input to a URL function")
        raise Exit(3)
    scheme, host, port, path = mm.group(1) or "http", mm.group(2), int(mm.group(3) or (443 if mm.group(1) ==
                                                                                        "https" else 80)), \
        mm.group(4) or "/"
    tmo = int((o["timeout"] or 5) * 1000)

    def timeout_fail(what="Connection"):
        if prog == "curl":
            if not o["silent"] or o["show_error"]:
                err("curl: (28) %s timed out after %d milliseconds" % (what, tmo))
            if o["write"]:
                out(o["write"].replace("%{http_code}", "000").replace("\\n", "\n"), end="")
            raise Exit(28)
        err("wget: download timed out" if what == "Connection" else "wget: bad address '%s'" % host)
        raise Exit(1)
    import ipaddress
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    if not is_ip and not appnet.dns_allowed(c.cl, pod):
        timeout_fail("Resolving")
    kind, target = appnet.resolve_host(c.cl, host, pod["metadata"]["namespace"])
    if target is None:
        if prog == "curl":
            if not o["silent"] or o["show_error"]:
                err("curl: (6) Could not resolve host: %s" % host)
            raise Exit(6)
        err("wget: bad address '%s'" % host)
        raise Exit(1)
    if kind == "service":
        dst, tport = appnet.service_backend(c.cl, target, port)
        if dst == "noport":
            timeout_fail()
        if dst == "noendpoints":
            if prog == "curl":
                if not o["silent"] or o["show_error"]:
                    err("curl: (7) Failed to connect to %s port %d after 1 ms: Could not connect to server"
                        % (host, port))
                raise Exit(7)
            err("wget: can't connect to remote host (%s): Connection refused" % target["spec"].get("clusterIP"))
            raise Exit(1)
    else:
        dst, tport = target, port
    if not appnet.connection_allowed(c.cl, pod, dst, tport):
        timeout_fail()
    if scheme == "https":
        err("curl: (35) OpenSSL/3.3.2: error:0A00010B:SSL routines::wrong version number")
        raise Exit(35)
    try:
        lport, desc = appnet.ensure_app(st, c.cl, dst)
    except RuntimeError as e:
        st.release()
        err("fake: %s" % e)
        if prog == "curl":
            err("curl: (7) Failed to connect to %s port %d after 0 ms: Could not connect to server" % (host, port))
            raise Exit(7)
        raise Exit(1)
    st.release()
    import urllib.error  # here: ~40 ms of imports that other calls need not pay
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (lport, path), method=o.get("method", "GET"))
    for h in o.get("headers") or []:
        k, _, v = h.partition(":")
        req.add_header(k.strip(), v.strip())
    try:
        resp = urllib.request.urlopen(req, timeout=max(1, tmo / 1000.0))
        code, body, headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        code, body, headers = e.code, e.read(), e.headers
    except Exception:
        timeout_fail()
    if prog == "curl":
        if o["fail"] and code >= 400:
            if not o["silent"] or o["show_error"]:
                err("curl: (22) The requested URL returned error: %d" % code)
            if o["write"]:
                out(o["write"].replace("%{http_code}", str(code)).replace("\\n", "\n"), end="")
            raise Exit(22)
        text = b""
        if o["include"] or o["head"]:
            text += ("HTTP/1.1 %d %s\r\n" % (code, getattr(headers, "reason", "") or "")).encode()
            for k, v in headers.items():
                text += ("%s: %s\r\n" % (k, v)).encode()
            text += b"\r\n"
        if not o["head"]:
            text += body
        if o["out"] not in ("/dev/null",) and o["out"] is None:
            sys.stdout.buffer.write(text)
        if o["write"]:
            sys.stdout.buffer.write(o["write"].replace("%{http_code}", str(code)).replace("\\n", "\n").encode())
        sys.stdout.flush()
        return 0
    if code >= 400:
        err("wget: server returned error: HTTP/1.1 %d" % code)
        raise Exit(8)
    if o["spider"]:
        return 0
    if o["out"] in ("-", None):
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0


def _nslookup(c, pod, args):
    host = args[0] if args else ""
    if not appnet.dns_allowed(c.cl, pod):
        out(";; connection timed out; no servers could be reached")
        raise Exit(1)
    kind, t = appnet.resolve_host(c.cl, host, pod["metadata"]["namespace"])
    out("Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n")
    if t is None:
        out("** server can't find %s: NXDOMAIN" % host)
        raise Exit(1)
    ip = t["spec"].get("clusterIP") if kind == "service" else t["status"].get("podIP")
    out("Name:\t%s\nAddress: %s" % (host, ip))
    return 0


# ---------------------------------------------------------------- port-forward

def cmd_port_forward(st, vals, pos, dd):
    if len(pos) < 2:
        fail("error: TYPE/NAME and list of ports are required for port-forward\nSee 'kubectl port-forward -h' for "
             "help and examples")
    c = connect(st, vals)
    target = pos[0]
    t = target.split("/", 1)[0] if "/" in target else "pod"
    m = resolve(c, t)
    name = target.split("/", 1)[1] if "/" in target else target
    obj = K.get_obj(c.cl, m, c.ns, name)
    if obj is None:
        fail('Error from server (NotFound): %s "%s" not found' % (K.gr(m), name))
    mappings = []
    for spec in pos[1:]:
        local, colon, remote = spec.rpartition(":")
        if not remote.isdigit() and m["kind"] != "Service":
            fail('error: Error parsing remote port: %s' % remote)
        # "8000" means 8000:8000; ":8000" means a random local port (kubectl's "0").
        mappings.append((local if colon else remote, remote) if local or not colon else ("0", remote))
    if m["kind"] == "Service":
        pod, pods = _pod_for(c, "svc/" + name)
        resolved = []
        for local, remote in mappings:
            sp = next((p for p in obj["spec"].get("ports") or [] if str(p["port"]) == remote or p.get("name") ==
                       remote), None)
            if sp is None:
                fail("error: Service %s does not have a service port %s" % (name, remote))
            tp = sp.get("targetPort", sp["port"])
            if isinstance(tp, str) and not tp.isdigit():
                tp = appnet.named_port(pod, tp)
            resolved.append((local, int(tp)))
    else:
        pod, pods = _pod_for(c, target)
        resolved = [(local, int(remote)) for local, remote in mappings]
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        fail("error: unable to forward port because pod is not running. Current status=%s" % phase)
    addresses = vals["address"] or ["localhost"]
    binds = []
    for a in addresses:
        for x in a.split(","):
            if x == "localhost":
                binds += [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)]
            else:
                binds.append((x, socket.AF_INET6 if ":" in x else socket.AF_INET))
    listeners = []
    for local, remote in resolved:
        lport = int(local) if local else 0
        socks = []
        errors = []
        for host, fam in binds:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, lport))
                s.listen(64)
                if lport == 0:
                    lport = s.getsockname()[1]
                socks.append((host, s))
            except OSError as e:
                s.close()
                errors.append("unable to create listener: Error listen tcp%s %s:%d: bind: %s" % (
                    "6" if fam == socket.AF_INET6 else "4", "[%s]" % host if ":" in host else host, lport,
                    "address already in use" if e.errno == 98 else "cannot assign requested address"))
        if not socks:
            err("Unable to listen on port %s: Listeners failed to create with the following errors: [%s]"
                % (local, " ".join(errors)))
            fail("error: unable to listen on any of the requested ports: [{%s %d}]" % (local, remote))
        listeners.append((lport, remote, socks))
    # start the process standing in for the pod (dies with us)
    backend_port = free_port()
    argv, env, cwd, desc = appnet.process_spec(st, c.cl, pod, backend_port)
    logf = os.path.join(st.dir, "logs", "port-forward-%d.log" % os.getpid())
    os.makedirs(os.path.dirname(logf), exist_ok=True)
    child = spawn(argv, env=env, cwd=cwd, logfile=logf, tie_to_parent=True)
    register_bg(st, child.pid, "port-forward-app", "%s for port-forward %s" % (desc, target))
    register_bg(st, os.getpid(), "port-forward", "kubectl port-forward %s" % " ".join(pos))
    st.release()
    if not wait_port(backend_port, 15.0, child):
        kill_children()
        fail("error: unable to forward port because pod is not running. Current status=CrashLoopBackOff "
             "(fake: %s exited, see %s)" % (desc, logf))
    for lport, remote, socks in listeners:
        for host, s in socks:
            out("Forwarding from %s:%d -> %d" % ("[%s]" % host if ":" in host else host, lport, remote))
            threading.Thread(target=_accept_loop, args=(s, lport, backend_port), daemon=True).start()
    stop = threading.Event()

    def on_int(signum, frame):
        stop.set()
    signal.signal(signal.SIGINT, on_int)
    while not stop.is_set():
        if child.poll() is not None:
            err("E%s portforward.go:413] \"Unhandled Error\" err=\"an error occurred forwarding %d -> %d: error "
                "forwarding port %d to pod, uid : failed to execute portforward in network namespace: failed to "
                "connect to localhost:%d inside namespace: connection refused\""
                % (time.strftime("%m%d %H:%M:%S"), listeners[0][0], listeners[0][1], listeners[0][1],
                   listeners[0][1]))
            err("error: lost connection to pod")
            _unregister(os.getpid(), child.pid)
            raise Exit(1)
        stop.wait(0.2)
    kill_children()
    _unregister(os.getpid(), child.pid)
    return 0


def _unregister(*pids):
    try:
        st = State()
        st.acquire()
        for p in pids:
            st.data["background"].pop(str(p), None)
        st.release()
    except Exception:
        pass


def _accept_loop(sock, lport, backend_port):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        out("Handling connection for %d" % lport)
        threading.Thread(target=_pipe_conn, args=(conn, backend_port), daemon=True).start()


def _pipe_conn(conn, backend_port):
    try:
        up = socket.create_connection(("127.0.0.1", backend_port), timeout=10)
    except OSError:
        conn.close()
        return
    up.settimeout(None)
    socks = [conn, up]
    try:
        while True:
            r, _, _ = select.select(socks, [], [], 60)
            if not r:
                break
            done = False
            for s in r:
                data = s.recv(65536)
                if not data:
                    done = True
                    break
                (up if s is conn else conn).sendall(data)
            if done:
                break
    except OSError:
        pass
    finally:
        conn.close()
        up.close()


def cmd_api_resources(st, vals, pos, dd):
    c = connect(st, vals, tick=False)
    rows = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
    for m in sorted(K.all_mappings(c.cl), key=lambda m: (m["group"], m["plural"])):
        if vals["api_group"] is not None and m["group"] != vals["api_group"]:
            continue
        if vals["output"] == "name":
            out(m["plural"] + ("." + m["group"] if m["group"] else ""))
            continue
        rows.append([m["plural"], ",".join(m["short"]), ("%s/%s" % (m["group"], m["version"])).lstrip("/"),
                     str(m["namespaced"]).lower(), m["kind"]])
    if vals["output"] != "name":
        sys.stdout.write(printers.tabwrite(rows))
    return 0


HANDLERS = {
    "cluster-info": cmd_cluster_info, "config use-context": cmd_use_context,
    "config current-context": cmd_current_context, "config get-contexts": cmd_get_contexts,
    "config view": cmd_config_view, "config set-context": cmd_set_context, "apply": cmd_apply, "create": cmd_create,
    "create namespace": cmd_create_namespace, "create configmap": cmd_create_configmap,
    "create secret generic": cmd_create_secret, "get": cmd_get, "describe": cmd_describe, "delete": cmd_delete,
    "wait": cmd_wait, "rollout status": cmd_rollout_status, "rollout restart": cmd_rollout_restart,
    "rollout history": cmd_rollout_history, "scale": cmd_scale, "label": cmd_label, "annotate": cmd_annotate,
    "patch": cmd_patch, "logs": cmd_logs, "run": cmd_run, "exec": cmd_exec, "port-forward": cmd_port_forward,
    "top pod": lambda st, v, p, d: cmd_top(st, v, p, d, False), "top node": lambda st, v, p, d: cmd_top(st, v, p, d,
                                                                                                         True),
    "api-resources": cmd_api_resources,
}
