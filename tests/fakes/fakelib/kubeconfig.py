"""Kubeconfig contexts. The state file is authoritative; the fakes never touch
~/.kube/config. When a kubeconfig path is given explicitly (--kubeconfig or
$KUBECONFIG) a real-looking file is mirrored there."""

import os

from .common import load_yaml

DEFAULT = "~default"


def ident(path=None):
    p = path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return os.path.abspath(p) if p else DEFAULT


def cfg(st, path=None):
    return st.data["kubeconfigs"].setdefault(ident(path), {"contexts": {}, "current": ""})


def ctx_entry(st, cluster):
    cl = st.data["clusters"].get(cluster) or {}
    port = cl.get("api_port")
    if port is None:
        from . import dockerworld as dw
        c = dw.find_container(st, "%s-control-plane" % cluster)
        port = dw.host_port_of(c, 6443) if c else 6443
    return {"cluster": "kind-" + cluster, "kind_cluster": cluster, "server": "https://127.0.0.1:%s" % port,
            "user": "kind-" + cluster, "namespace": ""}


def add_context(st, cluster, path=None):
    c = cfg(st, path)
    c["contexts"]["kind-" + cluster] = ctx_entry(st, cluster)
    c["current"] = "kind-" + cluster
    mirror(st, path)


def remove_context(st, cluster, path=None):
    c = cfg(st, path)
    c["contexts"].pop("kind-" + cluster, None)
    if c["current"] == "kind-" + cluster:
        c["current"] = ""
    mirror(st, path)


def render_kubeconfig(contexts, current):
    yaml = load_yaml()
    doc = {"apiVersion": "v1", "kind": "Config", "preferences": {},
           "clusters": [{"name": e["cluster"], "cluster": {"server": e["server"],
                                                           "certificate-authority-data": "RkFLRQ=="}}
                        for e in contexts.values()],
           "contexts": [{"name": n, "context": dict({"cluster": e["cluster"], "user": e["user"]},
                                                    **({"namespace": e["namespace"]} if e.get("namespace") else {}))}
                        for n, e in contexts.items()],
           "current-context": current,
           "users": [{"name": e["user"], "user": {"client-certificate-data": "RkFLRQ==",
                                                  "client-key-data": "RkFLRQ=="}} for e in contexts.values()]}
    return yaml.safe_dump(doc, sort_keys=False)


def mirror(st, path=None):
    i = ident(path)
    if i == DEFAULT:
        return
    c = cfg(st, path)
    os.makedirs(os.path.dirname(i), exist_ok=True)
    with open(i, "w") as f:
        f.write(render_kubeconfig(c["contexts"], c["current"]))
