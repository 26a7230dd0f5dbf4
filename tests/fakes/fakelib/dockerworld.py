"""The simulated Docker engine: containers, images, networks, volumes.

All functions take the State object (`st`, see common.State) and mutate
st.data["docker"]. Used by the docker and kind CLIs, the simulated
controllers and the FakeWorld helpers."""

import os
import shutil
import sys
import time

from .common import (FAKELIB_DIR, kill_pid, now_iso, pid_alive, port_busy, rand_hex, register_bg, sha_hex, spawn)

REGISTRY_CONTAINER_PORT = 5000


def D(st):
    return st.data["docker"]


def normalize_ref(ref):
    """'registry:3' -> 'registry:3'; 'foo' -> 'foo:latest'; keeps digests."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return ref + ":latest"
    return ref


def split_ref(ref):
    """-> (host or None, repo path, tag or digest)."""
    ref = normalize_ref(ref)
    if "@" in ref:
        name, tag = ref.split("@", 1)
        last = name.rsplit("/", 1)[-1]
        if ":" in last:  # name:tag@digest: the digest decides, the tag is only for people
            name = name.rsplit(":", 1)[0]
    else:
        name, tag = ref.rsplit(":", 1)
    parts = name.split("/", 1)
    if len(parts) == 2 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        return parts[0], parts[1], tag
    return None, name, tag


# ---------------------------------------------------------------- lookups

def find_container(st, key):
    cs = D(st)["containers"]
    if key in cs:
        return cs[key]
    for c in cs.values():
        if c["name"] == key.lstrip("/"):
            return c
    matches = [c for c in cs.values() if len(key) >= 1 and c["id"].startswith(key)]
    if len(matches) == 1:
        return matches[0]
    return None


def find_image(st, ref):
    imgs = D(st)["images"]
    if ref.startswith("sha256:") and ref in imgs:
        return imgs[ref]
    n = normalize_ref(ref)
    for img in imgs.values():
        if n in img["tags"] or ref in img["tags"]:
            return img
    if len(ref) >= 4:
        m = [i for i in imgs.values() if i["id"].split(":", 1)[1].startswith(ref.replace("sha256:", ""))]
        if len(m) == 1:
            return m[0]
    return None


def running(c):
    return c is not None and c["state"] == "running"


def state_dir_of(st):
    return st.dir


def volume_dir(st, name):
    return os.path.join(st.dir, "volumes", name, "_data")


def ensure_volume(st, name, anonymous=False):
    vols = D(st)["volumes"]
    if name not in vols:
        vols[name] = {"name": name, "driver": "local", "created": now_iso(), "anonymous": anonymous,
                      "mountpoint": "/var/lib/docker/volumes/%s/_data" % name}
        os.makedirs(volume_dir(st, name), exist_ok=True)
    return vols[name]


def volume_in_use(st, name):
    return [c for c in D(st)["containers"].values() if any(m.get("Name") == name for m in c["mounts"])]


def is_registry_image(image):
    host, repo, tag = split_ref(image)
    return host is None and repo in ("registry", "library/registry")


def registry_root(st, c):
    for m in c["mounts"]:
        if m["Destination"] == "/var/lib/registry":
            if m["Type"] == "volume":
                return volume_dir(st, m["Name"])
            return m["Source"]
    return None


def host_port_of(c, container_port):
    for p in c["ports"]:
        if int(p["container_port"]) == int(container_port):
            return int(p["host_port"])
    return None


def registry_for_host_port(st, port):
    """The running registry container publishing host PORT, or None."""
    for c in D(st)["containers"].values():
        if running(c) and is_registry_image(c["image"]) and host_port_of(c, REGISTRY_CONTAINER_PORT) == int(port):
            return c
    return None


def registry_on_network(st, name, network="kind"):
    """Container NAME reachable by DNS from NETWORK (for in-cluster pulls)."""
    c = find_container(st, name)
    if c is None or not running(c) or network not in c["networks"]:
        return None
    if not is_registry_image(c["image"]):
        return None
    return c


# ---------------------------------------------------------------- lifecycle

def _next_ip(st, network):
    net = D(st)["networks"][network]
    net["next_ip"] = net.get("next_ip", 1) + 1
    base = net.get("subnet_base", "172.17.0")
    return "%s.%d" % (base, net["next_ip"])


def ensure_network(st, name):
    nets = D(st)["networks"]
    if name not in nets:
        idx = len(nets) + 15
        nets[name] = {"name": name, "id": rand_hex(), "driver": "bridge", "subnet_base": "172.%d.0" % idx,
                      "created": now_iso()}
    return nets[name]


def connect(st, c, network, aliases=None):
    ensure_network(st, network)
    c["networks"][network] = {"ip": _next_ip(st, network), "aliases": aliases or [],
                              "endpoint": rand_hex(), "mac": "02:42:ac:%02x:00:%02x" % (len(c["networks"]) + 17,
                                                                                       int(time.time()) % 250)}


def create_container(st, name, image, ports=(), network="bridge", labels=None, env=None, mounts=(), cmd=None,
                     restart="no", extra=None):
    cid = rand_hex()
    if not name:
        name = "fake_%s" % cid[:8]
    c = {"id": cid, "name": name, "image": image, "created": now_iso(), "state": "created",
         "started_at": "0001-01-01T00:00:00Z", "finished_at": "0001-01-01T00:00:00Z", "exit_code": 0,
         "restart": restart, "ports": list(ports), "networks": {}, "labels": labels or {}, "env": env or [],
         "mounts": [], "cmd": cmd or [], "pid": 0, "fs": {"dirs": ["/", "/etc", "/tmp", "/var"], "files": {}},
         "network_mode": network}
    c.update(extra or {})
    for m in mounts:
        c["mounts"].append(m)
    if is_registry_image(image) and not any(m["Destination"] == "/var/lib/registry" for m in c["mounts"]):
        anon = rand_hex()
        ensure_volume(st, anon, anonymous=True)
        c["mounts"].append({"Type": "volume", "Name": anon, "Source": "/var/lib/docker/volumes/%s/_data" % anon,
                            "Destination": "/var/lib/registry", "Driver": "local", "Mode": "", "RW": True,
                            "Propagation": ""})
    if network and network not in ("none", "host"):
        connect(st, c, network)
    D(st)["containers"][cid] = c
    return c


class StartError(Exception):
    pass


def start_container(st, c):
    """Start; may raise StartError(message-without-prefix)."""
    if running(c):
        return
    for p in c["ports"]:
        hp = int(p["host_port"])
        hip = p.get("host_ip") or "0.0.0.0"
        # published by another (running) fake container?
        for o in D(st)["containers"].values():
            if o is not c and running(o) and any(int(q["host_port"]) == hp for q in o["ports"]):
                raise StartError(_bind_msg(c, hip, hp))
        if port_busy(hp, "127.0.0.1" if hip in ("127.0.0.1", "0.0.0.0", "") else hip):
            raise StartError(_bind_msg(c, hip, hp))
    if is_registry_image(c["image"]):
        hp = host_port_of(c, REGISTRY_CONTAINER_PORT)
        root = registry_root(st, c)
        os.makedirs(root, exist_ok=True)
        if hp:
            logf = os.path.join(st.dir, "logs", "container-%s.log" % c["name"])
            os.makedirs(os.path.dirname(logf), exist_ok=True)
            p = spawn([sys.executable, os.path.join(FAKELIB_DIR, "registry_server.py"), "--port", str(hp),
                       "--root", root], logfile=logf)
            c["pid"] = p.pid
            register_bg(st, p.pid, "registry", "registry container %s on 127.0.0.1:%d" % (c["name"], hp))
            # wait until it listens (it must, or docker run would not have returned)
            from .common import wait_port
            if not wait_port(hp, 5.0, p):
                raise StartError("fake: registry server failed to start, see %s" % logf)
    c["state"] = "running"
    c["started_at"] = now_iso()


def _bind_msg(c, hip, hp):
    ep = rand_hex()
    return ("failed to set up container networking: driver failed programming external connectivity on endpoint "
            "%s (%s): Bind for %s:%d failed: port is already allocated" % (c["name"], ep, hip or "0.0.0.0", hp))


def stop_container(st, c, exit_code=0):
    if c.get("pid"):
        kill_pid(c["pid"])
        st.data["background"].pop(str(c["pid"]), None)
        c["pid"] = 0
    if c["state"] == "running":
        c["state"] = "exited"
        c["exit_code"] = exit_code
        c["finished_at"] = now_iso()


def remove_container(st, c, volumes=False):
    stop_container(st, c)
    D(st)["containers"].pop(c["id"], None)
    if volumes:
        for m in c["mounts"]:
            if m["Type"] == "volume":
                v = D(st)["volumes"].get(m["Name"])
                if v and v.get("anonymous"):
                    remove_volume(st, m["Name"])
    cdir = os.path.join(st.dir, "containers", c["id"])
    shutil.rmtree(cdir, ignore_errors=True)


def remove_volume(st, name):
    D(st)["volumes"].pop(name, None)
    shutil.rmtree(os.path.join(st.dir, "volumes", name), ignore_errors=True)


def reap_dead(st):
    """Registry processes that died out of band -> container exited (docker
    would restart it with --restart=always; we say so in README)."""
    for c in D(st)["containers"].values():
        if running(c) and c.get("pid") and not pid_alive(c["pid"]):
            if c.get("restart") in ("always", "unless-stopped"):
                try:
                    c["state"] = "exited"
                    c["pid"] = 0
                    start_container(st, c)
                    continue
                except StartError:
                    pass
            c["state"] = "exited"
            c["exit_code"] = 137
            c["pid"] = 0
            c["finished_at"] = now_iso()


def short_id(cid):
    return cid[:12]


def ago_text(ts):
    d = 0
    try:
        d = max(1, int(time.time() - (time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)))
    except Exception:
        pass
    if d < 60:
        return "%d seconds" % d if d > 1 else "Less than a second"
    if d < 3600:
        return "%d minutes" % (d // 60) if d >= 120 else "About a minute"
    return "%d hours" % (d // 3600) if d >= 7200 else "About an hour"


def status_text(c):
    def ago(ts):
        try:
            t = time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        except Exception:
            return "a while"
        d = max(1, int(time.time() - t))
        if d < 60:
            return "%d seconds" % d if d > 1 else "Less than a second"
        if d < 3600:
            return "%d minutes" % (d // 60) if d >= 120 else "About a minute"
        return "%d hours" % (d // 3600) if d >= 7200 else "About an hour"
    if c["state"] == "running":
        return "Up " + ago(c["started_at"])
    if c["state"] == "created":
        return "Created"
    return "Exited (%d) %s ago" % (c["exit_code"], ago(c["finished_at"]))


def image_sha(st, image):
    img = find_image(st, image)
    if img:
        return img["id"]
    return "sha256:" + sha_hex("image:" + normalize_ref(image))


def pull_image(st, ref):
    """Pretend to pull (the fake world has 'internet' for public images)."""
    img = find_image(st, ref)
    if img:
        return img, False
    iid = "sha256:" + sha_hex("image:" + normalize_ref(ref))
    img = {"id": iid, "tags": [normalize_ref(ref)], "created": now_iso(), "labels": {}, "context": None}
    D(st)["images"][iid] = img
    return img, True


def inspect_doc(st, c):
    pb = {}
    exposed = {}
    for p in c["ports"]:
        key = "%s/%s" % (p["container_port"], p.get("proto", "tcp"))
        pb.setdefault(key, []).append({"HostIp": p.get("host_ip", ""), "HostPort": str(p["host_port"])})
        exposed[key] = {}
    nets = {}
    for n, info in c["networks"].items():
        net = D(st)["networks"].get(n, {})
        nets[n] = {
            "IPAMConfig": None, "Links": None, "Aliases": info.get("aliases") or None, "MacAddress": info["mac"],
            "DriverOpts": None, "GwPriority": 0, "NetworkID": net.get("id", ""), "EndpointID": info["endpoint"],
            "Gateway": info["ip"].rsplit(".", 1)[0] + ".1", "IPAddress": info["ip"], "IPPrefixLen": 16,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": ([c["name"], c["id"][:12]] if n not in ("bridge",) else None),
        }
    run = running(c)
    mounts = []
    for m in c["mounts"]:
        mounts.append({"Type": m["Type"], "Name": m.get("Name"), "Source": m["Source"],
                       "Destination": m["Destination"], "Driver": m.get("Driver", "local"), "Mode": m.get("Mode", "z"),
                       "RW": m.get("RW", True), "Propagation": m.get("Propagation", "")})
        if m["Type"] == "bind":
            mounts[-1].pop("Name")
            mounts[-1].pop("Driver")
    return {
        "Id": c["id"],
        "Created": c["created"],
        "Path": (c["cmd"] or ["/entrypoint.sh"])[0],
        "Args": (c["cmd"] or [])[1:],
        "State": {"Status": c["state"], "Running": run, "Paused": False, "Restarting": False, "OOMKilled": False,
                  "Dead": False, "Pid": c.get("pid") or (4242 if run else 0), "ExitCode": c["exit_code"],
                  "Error": c.get("error", ""), "StartedAt": c["started_at"], "FinishedAt": c["finished_at"]},
        "Image": image_sha(st, c["image"]),
        "Name": "/" + c["name"],
        "RestartCount": 0,
        "HostConfig": {"PortBindings": pb, "RestartPolicy": {"Name": c.get("restart", "no"), "MaximumRetryCount": 0},
                       "NetworkMode": c.get("network_mode", "bridge"), "Privileged": bool(c.get("privileged"))},
        "Mounts": mounts,
        "Config": {"Hostname": c["id"][:12], "Env": c["env"], "Cmd": c["cmd"] or None, "Image": c["image"],
                   "Labels": c["labels"], "ExposedPorts": exposed or None},
        "NetworkSettings": {"Ports": ({k: v for k, v in pb.items()} if run else {}), "Networks": nets},
    }
