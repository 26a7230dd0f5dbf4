"""Fake `kind` CLI (and the cluster bootstrap it performs)."""

import os
import re
import sys

from . import cluster as K
from . import dockerworld as dw
from . import kubeconfig as KC
from .common import DAEMON_DOWN_MSG, Exit, State, daemon_down, err, load_yaml, now_iso, out, parse_duration, run_tool
from .pflag import Flag, FlagError, FlagSet, split_command, strip_globals

DEFAULT_IMAGE = "kindest/node:v1.36.1"
GLOBAL = [Flag("verbosity", "v", "int", 0), Flag("quiet", "q", "bool")]
GLOBAL_FS = FlagSet(GLOBAL)
NAME = [Flag("name", "n", default="kind")]
COMMANDS = {
    "version": [],
    "get clusters": [],
    "get nodes": NAME + [Flag("all-clusters", "A", "bool")],
    "get kubeconfig": NAME + [Flag("internal", kind="bool")],
    "create cluster": NAME + [Flag("image"), Flag("config"), Flag("wait", default="0s"), Flag("kubeconfig"),
                              Flag("retain", kind="bool")],
    "delete cluster": NAME + [Flag("kubeconfig")],
    "delete clusters": [Flag("all", "A", "bool"), Flag("kubeconfig")],
    "export kubeconfig": NAME + [Flag("kubeconfig"), Flag("internal", kind="bool")],
    "load docker-image": NAME + [Flag("nodes", kind="list")],
}
TREE = {"version": {}, "get": {"clusters": {}, "nodes": {}, "kubeconfig": {}},
        "create": {"cluster": {}}, "delete": {"cluster": {}, "clusters": {}},
        "export": {"kubeconfig": {}, "logs": {}}, "load": {"docker-image": {}, "image-archive": {}},
        "build": {"node-image": {}}, "completion": {}}
READ_ONLY = {"version", "get clusters", "get nodes", "get kubeconfig"}


def kind_version():
    return os.environ.get("FAKE_KIND_VERSION", "0.32.0")


def _vt(text):
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def kubeadm_v1beta3_only():
    """kind writes kubeadm's v1beta4 config for 1.36+ nodes only from v0.32.0."""
    return _vt(kind_version()) < (0, 32, 0)


def classify(argv):
    path, _, _ = split_command(argv, GLOBAL_FS, TREE)
    return strip_globals(argv, GLOBAL_FS), " ".join(path) not in READ_ONLY and bool(path)


def entry(argv):
    return run_tool("kind", argv, classify, main)


def fail(msg):
    err("ERROR: " + msg)
    raise Exit(1)


def main(argv):
    path, rest, node = split_command(argv, GLOBAL_FS, TREE)
    key = " ".join(path)
    if key not in COMMANDS:
        pos = [a for a in rest if not a.startswith("-")]
        if pos and (not path or isinstance(node, dict) and node):
            fail('unknown command "%s" for "kind%s"' % (pos[0], (" " + key) if key else ""))
        if "--version" in rest and not path:
            out("kind version %s" % kind_version())
            return 0
        if path and path[-1] in ("logs", "node-image", "image-archive", "completion"):
            err("fake kind: '%s' is not implemented by the fake" % key)
            raise Exit(2)
        out("kind creates and manages local Kubernetes clusters using Docker container 'nodes'")
        return 0
    fs = FlagSet(GLOBAL + COMMANDS[key])
    try:
        vals, pos, dd = fs.parse(rest)
    except FlagError as e:
        fail(str(e))
    if key == "version":
        if pos:
            fail('unknown command "%s" for "kind version"' % pos[0])
        out("kind v%s go1.25.1 linux/amd64" % kind_version())
        return 0
    if pos and key not in ("load docker-image",):
        fail('unknown command "%s" for "kind %s"' % (pos[0], key))
    if daemon_down():
        what = {"get clusters": "failed to list clusters", "get nodes": "failed to list nodes",
                "create cluster": "failed to create cluster", "delete cluster": "failed to delete cluster",
                "export kubeconfig": "failed to export kubeconfig"}.get(key, "failed")
        fail('%s: command "docker ps -a --filter label=io.x-k8s.kind.cluster --format \'{{.Label '
             '"io.x-k8s.kind.cluster"}}\'" failed with error: exit status 1\nCommand Output: %s'
             % (what, DAEMON_DOWN_MSG))
    st = State()
    st.acquire()
    try:
        dw.reap_dead(st)
        return HANDLERS[key](st, vals, pos)
    finally:
        if st.held:
            st.release()


def cluster_nodes(st, name):
    cs = [c for c in st.data["docker"]["containers"].values()
          if c["labels"].get("io.x-k8s.kind.cluster") == name]
    return sorted(cs, key=lambda c: c["name"])


def all_clusters(st):
    names = set()
    for c in st.data["docker"]["containers"].values():
        if "io.x-k8s.kind.cluster" in c["labels"]:
            names.add(c["labels"]["io.x-k8s.kind.cluster"])
    return sorted(names)


def cmd_get_clusters(st, vals, pos):
    cs = all_clusters(st)
    if not cs:
        err("No kind clusters found.")
    for c in cs:
        out(c)
    return 0


def cmd_get_nodes(st, vals, pos):
    if vals["all_clusters"]:
        ns = [c for n in all_clusters(st) for c in cluster_nodes(st, n)]
    else:
        ns = cluster_nodes(st, vals["name"])
    if not ns:
        err('No kind nodes found for cluster "%s".' % vals["name"])
    for c in ns:
        out(c["name"])
    return 0


def cmd_get_kubeconfig(st, vals, pos):
    name = vals["name"]
    cp = [c for c in cluster_nodes(st, name) if c["labels"].get("io.x-k8s.kind.role") == "control-plane"]
    if not cp:
        fail("could not locate any control plane nodes for cluster named '%s'. Use the --name option to select "
             "a different cluster" % name)
    out(KC.render_kubeconfig({"kind-" + name: KC.ctx_entry(st, name)}, "kind-" + name).rstrip("\n"))
    return 0


NODE_FIELDS = {"role", "image", "labels", "extraMounts", "extraPortMappings", "kubeadmConfigPatches",
               "kubeadmConfigPatchesJSON6902"}
CLUSTER_FIELDS = {"kind", "apiVersion", "name", "nodes", "networking", "featureGates", "runtimeConfig",
                  "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902", "containerdConfigPatches",
                  "containerdConfigPatchesJSON6902"}
NET_FIELDS = {"ipFamily", "apiServerPort", "apiServerAddress", "podSubnet", "serviceSubnet", "disableDefaultCNI",
              "kubeProxyMode", "dnsSearch"}
PORT_FIELDS = {"containerPort", "hostPort", "listenAddress", "protocol"}
MOUNT_FIELDS = {"hostPath", "containerPath", "readOnly", "selinuxRelabel", "propagation"}


def _unknown(field):
    fail("failed to create cluster: unable to decode config: error unmarshaling JSON: while decoding JSON: json: "
         'unknown field "%s"' % field)


def load_config(path):
    yaml = load_yaml()
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            fail("failed to create cluster: error reading file: open %s: no such file or directory" % path)
    try:
        cfg = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        fail("failed to create cluster: unable to decode config: %s" % str(e).replace("\n", " "))
    if not isinstance(cfg, dict):
        fail("failed to create cluster: unable to decode config: error unmarshaling JSON")
    if cfg.get("kind") != "Cluster":
        fail('failed to create cluster: unknown kind "%s" for apiVersion "%s"' % (cfg.get("kind"),
                                                                                 cfg.get("apiVersion")))
    if cfg.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        fail('failed to create cluster: unknown apiVersion: %s' % cfg.get("apiVersion"))
    for k in cfg:
        if k not in CLUSTER_FIELDS:
            _unknown(k)
    for k in (cfg.get("networking") or {}):
        if k not in NET_FIELDS:
            _unknown(k)
    for n in cfg.get("nodes") or []:
        for k in n:
            if k not in NODE_FIELDS:
                _unknown(k)
        if n.get("role", "control-plane") not in ("control-plane", "worker"):
            fail('failed to create cluster: invalid configuration: %s is not a valid node role' % n.get("role"))
        for pm in n.get("extraPortMappings") or []:
            for k in pm:
                if k not in PORT_FIELDS:
                    _unknown(k)
        for mt in n.get("extraMounts") or []:
            for k in mt:
                if k not in MOUNT_FIELDS:
                    _unknown(k)
        for k, v in (n.get("labels") or {}).items():
            if not isinstance(v, str):
                fail("failed to create cluster: unable to decode config: error unmarshaling JSON: while decoding "
                     "JSON: json: cannot unmarshal %s into Go struct field Node.nodes.labels of type string"
                     % type(v).__name__.replace("int", "number").replace("bool", "bool"))
    return cfg


def _containerd_problem(patches):
    """containerd 2.x rejects registry.mirrors beside config_path."""
    text = "\n".join(patches or [])
    try:
        import tomllib
        merged = {}
        for p in patches or []:
            d = tomllib.loads(p)
            merged = _tmerge(merged, d)
        reg = (((merged.get("plugins") or {}).get("io.containerd.grpc.v1.cri") or {}).get("registry") or {})
        has_mirrors = bool(reg.get("mirrors"))
        has_cfg = "config_path" in reg
    except Exception:
        has_mirrors = "registry.mirrors" in text
        has_cfg = "config_path" in text
    if has_mirrors and has_cfg:
        return "`mirrors` cannot be set when `config_path` is provided"
    return None


def _tmerge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _tmerge(a[k], v)
        else:
            a[k] = v
    return a


def k8s_version_of(image):
    m = re.search(r":(v\d+\.\d+\.\d+)", image or "")
    return m.group(1) if m else DEFAULT_IMAGE.split(":")[1]


def cmd_create_cluster(st, vals, pos):
    cfg = load_config(vals["config"]) if vals["config"] else {"kind": "Cluster",
                                                              "apiVersion": "kind.x-k8s.io/v1alpha4"}
    name = vals["name"] if "name" in vals["__seen__"] else (cfg.get("name") or os.environ.get("KIND_CLUSTER_NAME")
                                                             or "kind")
    try:
        parse_duration(vals["wait"])
    except ValueError as e:
        fail('invalid argument "%s" for "--wait" flag: %s' % (vals["wait"], e))
    if not re.fullmatch(r"[a-z0-9.-]+", name) or len(name) > 50:
        fail("failed to create cluster: '%s' is not a valid cluster name, cluster names must match "
             "`^[a-z0-9.-]+$`" % name)
    image = vals["image"] or DEFAULT_IMAGE
    nodes_cfg = cfg.get("nodes") or [{"role": "control-plane"}]
    if cluster_nodes(st, name):
        fail('failed to create cluster: node(s) already exist for a cluster with the name "%s"' % name)
    quiet = vals["quiet"]

    def step(msg):
        if not quiet:
            err(msg)
    step('Creating cluster "%s" ...' % name)
    step(" ✓ Ensuring node image (%s) 🖼" % image)
    dw.ensure_network(st, "kind")
    st.data["docker"]["networks"]["kind"]["subnet_base"] = "172.18.0"
    counts = {}
    created = []
    api_port = None
    from .common import free_port
    for n in nodes_cfg:
        role = n.get("role", "control-plane")
        counts[role] = counts.get(role, 0) + 1
        suffix = role if counts[role] == 1 else "%s%d" % (role, counts[role])
        cname = "%s-%s" % (name, suffix)
        ports = []
        if role == "control-plane" and api_port is None:
            api_port = (cfg.get("networking") or {}).get("apiServerPort") or free_port()
            ports.append({"host_ip": "127.0.0.1", "host_port": int(api_port), "container_port": 6443,
                          "proto": "tcp"})
        for pm in n.get("extraPortMappings") or []:
            hp = pm.get("hostPort") or free_port()
            ports.append({"host_ip": pm.get("listenAddress", "0.0.0.0"), "host_port": int(hp),
                          "container_port": int(pm["containerPort"]), "proto": (pm.get("protocol") or "TCP").lower()})
        c = dw.create_container(st, cname, n.get("image") or image, ports=ports, network="kind",
                                labels={"io.x-k8s.kind.cluster": name, "io.x-k8s.kind.role": role},
                                restart="on-failure:1", extra={"privileged": True, "node_cfg": n})
        c["fs"]["dirs"] += ["/etc/containerd", "/etc/containerd/certs.d", "/kind"]
        c["fs"]["files"]["/etc/containerd/config.toml"] = (
            "version = 3\n\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = ''\n\n" +
            "\n".join(cfg.get("containerdConfigPatches") or []) + "\n")
        created.append(c)
        try:
            dw.start_container(st, c)
        except dw.StartError as e:
            if not vals["retain"]:
                for x in created:
                    dw.remove_container(st, x, volumes=True)
            fail("failed to create cluster: command \"docker run --name %s ...\" failed with error: exit status 125"
                 "\nCommand Output: docker: Error response from daemon: %s" % (cname, e))
    step(" ✓ Preparing nodes %s" % " ".join("📦" for _ in created))
    step(" ✓ Writing configuration 📜")
    problem = _containerd_problem(cfg.get("containerdConfigPatches"))
    cp = created[0]

    def die(msg):
        if not vals["retain"]:
            for x in created:
                dw.remove_container(st, x, volumes=True)
        st.release()
        fail(msg)
    if problem:
        step(" ✗ Starting control-plane 🕹️")
        die("failed to create cluster: failed to init node with kubeadm: command \"docker exec --privileged "
            "%s kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6\" failed with error: exit status 1"
            "\nCommand Output: containerd: failed to load plugin io.containerd.cri.v1.images: invalid registry "
            "configuration: %s" % (cp["name"], problem))
    if kubeadm_v1beta3_only() and _vt(k8s_version_of(cp["image"])) >= (1, 36, 0):
        # kind < 0.32 writes kubeadm.k8s.io/v1beta3, which kubeadm 1.36 no longer knows.
        step(" ✗ Starting control-plane 🕹️")
        die("failed to create cluster: failed to init node with kubeadm: command \"docker exec --privileged "
            "%s kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6\" failed with error: exit status 1"
            "\nCommand Output: unable to read config from \"/kind/kubeadm.conf\": no kind \"ClusterConfiguration\" "
            "is registered for version \"kubeadm.k8s.io/v1beta3\" in scheme" % cp["name"])
    for c, n in zip(created, nodes_cfg):
        bad = [k for k in (n.get("labels") or {}) if k.startswith("node-role.kubernetes.io/")]
        if bad:
            if n.get("role", "control-plane") == "control-plane":
                step(" ✗ Starting control-plane 🕹️")
                die("failed to create cluster: failed to init node with kubeadm: command \"docker exec --privileged "
                    "%s kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6\" failed with error: exit "
                    "status 1" % c["name"])
            step(" ✓ Starting control-plane 🕹️\n ✓ Installing CNI 🔌\n ✓ Installing StorageClass 💾")
            step(" ✗ Joining worker nodes 🚜")
            die("failed to create cluster: failed to join node with kubeadm: command \"docker exec --privileged %s "
                "kubeadm join --config /kind/kubeadm.conf --skip-phases=preflight --v=6\" failed with error: exit "
                "status 1" % c["name"])
    step(" ✓ Starting control-plane 🕹️")
    step(" ✓ Installing CNI 🔌")
    step(" ✓ Installing StorageClass 💾")
    if len(created) > 1:
        step(" ✓ Joining worker nodes 🚜")
    bootstrap_cluster(st, name, image, created, nodes_cfg, api_port)
    wait = parse_duration(vals["wait"])
    if wait:
        step(" ✓ Waiting ≤ %s for control-plane = Ready ⏳" % vals["wait"])
        step(" • Ready after 12s 💚")
    KC.add_context(st, name, vals["kubeconfig"])
    step('Set kubectl context to "kind-%s"' % name)
    step("You can now use your cluster with:\n\nkubectl cluster-info --context kind-%s%s\n\n"
         "Have a nice day! 👋" % (name, (" --kubeconfig " + vals["kubeconfig"]) if vals["kubeconfig"] else ""))
    return 0


def bootstrap_cluster(st, name, image, containers, nodes_cfg, api_port):
    ver = k8s_version_of(image)
    cl = {"name": name, "objects": {}, "rv": 1000, "k8s_version": ver, "node_image": image, "api_port": api_port,
          "created": now_iso()}
    st.data["clusters"][name] = cl
    M = lambda api, kind: K.mapping_for_kind(cl, api, kind)  # noqa: E731
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "local-path-storage"):
        K.put_object(cl, M("v1", "Namespace"), K.new_obj("v1", "Namespace", ns), "kube-apiserver")
    workers = [c for c in containers if c["labels"]["io.x-k8s.kind.role"] == "worker"]
    for i, (c, n) in enumerate(zip(containers, nodes_cfg)):
        role = c["labels"]["io.x-k8s.kind.role"]
        labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": c["name"], "kubernetes.io/os": "linux"}
        taints = []
        if role == "control-plane":
            labels["node-role.kubernetes.io/control-plane"] = ""
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
            if workers:
                taints.append({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
        labels.update(n.get("labels") or {})
        for p in n.get("kubeadmConfigPatches") or []:
            m = re.search(r"register-with-taints\"?\s*[:=]\s*\"?([^\"\n]+)", p)
            if m:
                for t in m.group(1).split(","):
                    kv, _, eff = t.strip().partition(":")
                    k, _, v = kv.partition("=")
                    taints.append({"key": k, "value": v, "effect": eff} if v else {"key": k, "effect": eff})
        ip = c["networks"]["kind"]["ip"]
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": c["name"], "labels": labels},
                "spec": {"podCIDR": "10.244.%d.0/24" % i, "podCIDRs": ["10.244.%d.0/24" % i],
                         "providerID": "kind://docker/%s/%s" % (name, c["name"])},
                "status": {"addresses": [{"address": ip, "type": "InternalIP"},
                                         {"address": c["name"], "type": "Hostname"}],
                           "capacity": {"cpu": "8", "memory": "16318052Ki", "pods": "110",
                                        "ephemeral-storage": "102626232Ki"},
                           "allocatable": {"cpu": "8", "memory": "16318052Ki", "pods": "110",
                                           "ephemeral-storage": "102626232Ki"},
                           "nodeInfo": {"kubeletVersion": ver, "kubeProxyVersion": ver,
                                        "containerRuntimeVersion": "containerd://2.2.0",
                                        "osImage": "Debian GNU/Linux 12 (bookworm)",
                                        "kernelVersion": "6.8.0-fake", "operatingSystem": "linux",
                                        "architecture": "amd64"},
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastTransitionTime": now_iso(), "lastHeartbeatTime": now_iso()}]}}
        if taints:
            node["spec"]["taints"] = taints
        K.put_object(cl, M("v1", "Node"), node, "kubelet")
    cpname = containers[0]["name"]
    K.put_object(cl, M("v1", "Service"), {"apiVersion": "v1", "kind": "Service",
                                          "metadata": {"name": "kubernetes", "namespace": "default",
                                                       "labels": {"component": "apiserver",
                                                                  "provider": "kubernetes"}},
                                          "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]}},
                 "kube-apiserver")
    cp_tol = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
              {"key": "CriticalAddonsOnly", "operator": "Exists"}]
    dns_labels = {"k8s-app": "kube-dns"}
    K.put_object(cl, M("apps/v1", "Deployment"), {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dns_labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": dns_labels},
                 "template": {"metadata": {"labels": dns_labels},
                              "spec": {"priorityClassName": "system-cluster-critical", "tolerations": cp_tol,
                                       "nodeSelector": {"kubernetes.io/os": "linux"},
                                       "containers": [{"name": "coredns",
                                                       "image": "registry.k8s.io/coredns/coredns:v1.13.1",
                                                       "ports": [{"containerPort": 53, "name": "dns",
                                                                  "protocol": "UDP"},
                                                                 {"containerPort": 53, "name": "dns-tcp",
                                                                  "protocol": "TCP"},
                                                                 {"containerPort": 9153, "name": "metrics",
                                                                  "protocol": "TCP"}]}]}}}}, "kubeadm")
    K.put_object(cl, M("v1", "Service"), {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"selector": dns_labels, "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                                   {"name": "dns-tcp", "port": 53, "protocol": "TCP",
                                                    "targetPort": 53},
                                                   {"name": "metrics", "port": 9153, "protocol": "TCP",
                                                    "targetPort": 9153}]}}, "kubeadm")
    lp = {"app": "local-path-provisioner"}
    K.put_object(cl, M("apps/v1", "Deployment"), {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "local-path-provisioner", "namespace": "local-path-storage"},
        "spec": {"replicas": 1, "selector": {"matchLabels": lp},
                 "template": {"metadata": {"labels": lp},
                              "spec": {"tolerations": cp_tol, "containers": [
                                  {"name": "local-path-provisioner",
                                   "image": "docker.io/kindest/local-path-provisioner:v20251212-v0.29.0"}]}}}}, "kind")
    for dsname, labels, img in (("kindnet", {"app": "kindnet", "k8s-app": "kindnet"},
                                 "docker.io/kindest/kindnetd:v20251212-fake"),
                                ("kube-proxy", {"k8s-app": "kube-proxy"}, "registry.k8s.io/kube-proxy:" + ver)):
        K.put_object(cl, M("apps/v1", "DaemonSet"), {
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": dsname, "namespace": "kube-system", "labels": labels},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"tolerations": [{"operator": "Exists"}],
                                           "containers": [{"name": dsname, "image": img}]}}}}, "kubeadm")
    for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        img = "registry.k8s.io/%s:%s" % (comp, "3.6.5-0" if comp == "etcd" else ver)
        K.put_object(cl, M("v1", "Pod"), {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "%s-%s" % (comp, cpname), "namespace": "kube-system",
                         "labels": {"component": comp, "tier": "control-plane"}},
            "spec": {"nodeName": cpname, "priorityClassName": "system-node-critical",
                     "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
                     "containers": [{"name": comp, "image": img}]}}, "kubelet")
    K.put_object(cl, M("storage.k8s.io/v1", "StorageClass"), {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"}, "kind")
    from .controllers import workloads
    workloads(st, cl)


def cmd_delete_cluster(st, vals, pos):
    name = vals["name"]
    err('Deleting cluster "%s" ...' % name)
    nodes = cluster_nodes(st, name)
    for c in nodes:
        dw.remove_container(st, c, volumes=True)
    if nodes:
        err("Deleted nodes: [%s]" % " ".join('"%s"' % c["name"] for c in nodes))
    st.data["clusters"].pop(name, None)
    KC.remove_context(st, name, vals["kubeconfig"])
    return 0


def cmd_delete_clusters(st, vals, pos):
    names = all_clusters(st)
    for n in names:
        for c in cluster_nodes(st, n):
            dw.remove_container(st, c, volumes=True)
        st.data["clusters"].pop(n, None)
        KC.remove_context(st, n, vals["kubeconfig"])
    err("Deleted clusters: [%s]" % " ".join('"%s"' % n for n in names))
    return 0


def cmd_export_kubeconfig(st, vals, pos):
    name = vals["name"]
    cp = [c for c in cluster_nodes(st, name) if c["labels"].get("io.x-k8s.kind.role") == "control-plane"]
    if not cp:
        fail("could not locate any control plane nodes for cluster named '%s'. Use the --name option to select "
             "a different cluster" % name)
    KC.add_context(st, name, vals["kubeconfig"])
    err('Set kubectl context to "kind-%s"' % name)
    return 0


def cmd_load_image(st, vals, pos):
    if not pos:
        fail("a list of image names is required")
    for ref in pos:
        if dw.find_image(st, ref) is None:
            fail('image: "%s" not present locally' % ref)
    nodes = cluster_nodes(st, vals["name"])
    if not nodes:
        fail('no nodes found for cluster "%s"' % vals["name"])
    for c in nodes:
        c.setdefault("loaded_images", [])
        for ref in pos:
            if ref not in c["loaded_images"]:
                c["loaded_images"].append(ref)
            err('Image: "%s" with ID "%s" not yet present on node "%s", loading...'
                % (ref, dw.find_image(st, ref)["id"], c["name"]))
    return 0


HANDLERS = {"get clusters": cmd_get_clusters, "get nodes": cmd_get_nodes, "get kubeconfig": cmd_get_kubeconfig,
            "create cluster": cmd_create_cluster, "delete cluster": cmd_delete_cluster,
            "delete clusters": cmd_delete_clusters, "export kubeconfig": cmd_export_kubeconfig,
            "load docker-image": cmd_load_image}
