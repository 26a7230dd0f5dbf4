"""Fake `docker` CLI."""

import hashlib
import json
import os
import re
import shutil
import sys
import time

from . import dockerworld as dw
from . import gotmpl
from . import registry_store as rs
from .common import (DAEMON_DOWN_MSG, Exit, State, err, now_iso, out, run_tool)
from .pflag import Flag, FlagError, FlagSet, split_command, strip_globals

# The fake plays one Docker release, FAKE_DOCKER_VERSION (default the newest the lab supports).
# Observable differences it models: the missing-object error of an untyped `docker inspect`
# ("Error: No such object: X" up to 28, "error: no such object: X" from CLI 29.0.0, docker/cli
# commit "fix error formatting (errlint)") and the API version each release speaks.
DEFAULT_VERSION = "29.0.0"
API_VERSIONS = {28: "1.50", 29: "1.52"}


def docker_version():
    return os.environ.get("FAKE_DOCKER_VERSION", DEFAULT_VERSION)


def docker_major():
    try:
        return int(docker_version().split(".")[0])
    except ValueError:
        return 29


SERVER_VERSION = docker_version()

GLOBAL = [Flag("config"), Flag("context", "c"), Flag("debug", "D", "bool"), Flag("host", "H", "list"),
          Flag("log-level", "l"), Flag("tls", kind="bool"), Flag("tlsverify", kind="bool")]

FMT = [Flag("format", "f")]

COMMANDS = {
    "version": ([Flag("format", "f")], "docker version [OPTIONS]", False),
    "info": ([Flag("format", "f")], "docker info [OPTIONS]", False),
    "inspect": ([Flag("format", "f"), Flag("type"), Flag("size", "s", "bool")],
                "docker inspect [OPTIONS] NAME|ID [NAME|ID...]", False),
    "run": ([Flag("detach", "d", "bool"), Flag("restart"), Flag("publish", "p", "list"), Flag("network"),
             Flag("net"), Flag("name"), Flag("volume", "v", "list"), Flag("env", "e", "list"),
             Flag("label", "l", "list"), Flag("rm", kind="bool"), Flag("interactive", "i", "bool"),
             Flag("tty", "t", "bool"), Flag("entrypoint"), Flag("privileged", kind="bool"),
             Flag("hostname", "h"), Flag("user", "u"), Flag("workdir", "w"), Flag("pull"),
             Flag("platform"), Flag("init", kind="bool"), Flag("network-alias", kind="list")],
            "docker run [OPTIONS] IMAGE [COMMAND] [ARG...]", True),
    "start": ([Flag("attach", "a", "bool"), Flag("interactive", "i", "bool")],
              "docker start [OPTIONS] CONTAINER [CONTAINER...]", False),
    "stop": ([Flag("time", "t", "int"), Flag("timeout", kind="int"), Flag("signal", "s")],
             "docker stop [OPTIONS] CONTAINER [CONTAINER...]", False),
    "restart": ([Flag("time", "t", "int"), Flag("signal", "s")],
                "docker restart [OPTIONS] CONTAINER [CONTAINER...]", False),
    "kill": ([Flag("signal", "s")], "docker kill [OPTIONS] CONTAINER [CONTAINER...]", False),
    "rm": ([Flag("force", "f", "bool"), Flag("volumes", "v", "bool"), Flag("link", "l", "bool")],
           "docker rm [OPTIONS] CONTAINER [CONTAINER...]", False),
    "ps": ([Flag("all", "a", "bool"), Flag("filter", "f", "list"), Flag("format"), Flag("quiet", "q", "bool"),
            Flag("no-trunc", kind="bool"), Flag("last", "n", "int"), Flag("latest", "l", "bool"),
            Flag("size", "s", "bool")], "docker ps [OPTIONS]", False),
    "exec": ([Flag("interactive", "i", "bool"), Flag("tty", "t", "bool"), Flag("detach", "d", "bool"),
              Flag("env", "e", "list"), Flag("user", "u"), Flag("workdir", "w"), Flag("privileged", kind="bool")],
             "docker exec [OPTIONS] CONTAINER COMMAND [ARG...]", True),
    "cp": ([Flag("archive", "a", "bool"), Flag("follow-link", "L", "bool"), Flag("quiet", "q", "bool")],
           "docker cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdocker cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
           False),
    "logs": ([Flag("follow", "f", "bool"), Flag("tail", "n"), Flag("timestamps", "t", "bool"), Flag("since")],
             "docker logs [OPTIONS] CONTAINER", False),
    "build": ([Flag("tag", "t", "list"), Flag("file", "f"), Flag("label", kind="list"), Flag("build-arg", kind="list"),
               Flag("pull", kind="bool"), Flag("no-cache", kind="bool"), Flag("quiet", "q", "bool"),
               Flag("platform"), Flag("progress"), Flag("target"), Flag("load", kind="bool"),
               Flag("provenance"), Flag("sbom")], "docker buildx build [OPTIONS] PATH | URL | -", False),
    "buildx version": ([], "docker buildx version", False),
    "push": ([Flag("quiet", "q", "bool"), Flag("all-tags", "a", "bool"), Flag("platform")],
             "docker push [OPTIONS] NAME[:TAG]", False),
    "pull": ([Flag("quiet", "q", "bool"), Flag("platform"), Flag("all-tags", "a", "bool")],
             "docker pull [OPTIONS] NAME[:TAG|@DIGEST]", False),
    "tag": ([], "docker tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", False),
    "images": ([Flag("quiet", "q", "bool"), Flag("format"), Flag("all", "a", "bool"), Flag("filter", "f", "list"),
                Flag("no-trunc", kind="bool")], "docker images [OPTIONS] [REPOSITORY[:TAG]]", False),
    "rmi": ([Flag("force", "f", "bool"), Flag("no-prune", kind="bool")],
            "docker rmi [OPTIONS] IMAGE [IMAGE...]", False),
    "image inspect": ([Flag("format", "f")], "docker image inspect [OPTIONS] IMAGE [IMAGE...]", False),
    "image ls": ([Flag("quiet", "q", "bool"), Flag("format"), Flag("all", "a", "bool"),
                  Flag("filter", "f", "list"), Flag("no-trunc", kind="bool")],
                 "docker image ls [OPTIONS] [REPOSITORY[:TAG]]", False),
    "image rm": ([Flag("force", "f", "bool"), Flag("no-prune", kind="bool")],
                 "docker image rm [OPTIONS] IMAGE [IMAGE...]", False),
    "network connect": ([Flag("alias", kind="list"), Flag("ip")],
                        "docker network connect [OPTIONS] NETWORK CONTAINER", False),
    "network disconnect": ([Flag("force", "f", "bool")],
                           "docker network disconnect [OPTIONS] NETWORK CONTAINER", False),
    "network ls": ([Flag("quiet", "q", "bool"), Flag("format"), Flag("filter", "f", "list"),
                    Flag("no-trunc", kind="bool")], "docker network ls [OPTIONS]", False),
    "network inspect": ([Flag("format", "f"), Flag("verbose", "v", "bool")],
                        "docker network inspect [OPTIONS] NETWORK [NETWORK...]", False),
    "network create": ([Flag("driver", "d"), Flag("subnet", kind="list"), Flag("opt", "o", "list"),
                        Flag("ipv6", kind="bool")], "docker network create [OPTIONS] NETWORK", False),
    "network rm": ([Flag("force", "f", "bool")], "docker network rm NETWORK [NETWORK...]", False),
    "volume ls": ([Flag("quiet", "q", "bool"), Flag("format"), Flag("filter", "f", "list")],
                  "docker volume ls [OPTIONS]", False),
    "volume rm": ([Flag("force", "f", "bool")], "docker volume rm [OPTIONS] VOLUME [VOLUME...]", False),
    "volume create": ([Flag("driver", "d"), Flag("label", kind="list"), Flag("name")],
                      "docker volume create [OPTIONS] [VOLUME]", False),
    "volume inspect": ([Flag("format", "f")], "docker volume inspect [OPTIONS] VOLUME [VOLUME...]", False),
}
ALIASES = {"container run": "run", "container start": "start", "container stop": "stop", "container rm": "rm",
           "container ls": "ps", "container ps": "ps", "container inspect": "inspect", "container exec": "exec",
           "container logs": "logs", "container cp": "cp", "container restart": "restart", "container kill": "kill",
           "image build": "build", "buildx build": "build", "image push": "push", "image pull": "pull",
           "image tag": "tag", "image list": "image ls", "images": "image ls", "rmi": "image rm",
           "network list": "network ls", "volume list": "volume ls", "network remove": "network rm",
           "volume remove": "volume rm", "container remove": "rm", "image remove": "image rm"}

READ_ONLY = {"version", "buildx version", "info", "inspect", "ps", "logs", "images", "image inspect", "image ls", "network ls",
             "network inspect", "volume ls", "volume inspect"}


def _tree():
    t = {}
    for k in list(COMMANDS) + list(ALIASES):
        node = t
        ws = k.split()
        for i, w in enumerate(ws):
            if i == len(ws) - 1:
                node.setdefault(w, {})
            else:
                node = node.setdefault(w, {})
    return t


TREE = _tree()
GLOBAL_FS = FlagSet(GLOBAL)


def classify(argv):
    path, rest, _ = split_command(argv, GLOBAL_FS, TREE)
    key = ALIASES.get(" ".join(path), " ".join(path))
    return strip_globals(argv, GLOBAL_FS, anywhere=False), key not in READ_ONLY and key != ""


def usage_error(cmdkey, usage, msg):
    err("%s\n\nUsage:  %s\n\nRun 'docker %s --help' for more information" % (msg, usage, cmdkey))
    raise Exit(125)


def daemon_err(prefix=""):
    err(prefix + DAEMON_DOWN_MSG)
    raise Exit(1)


def entry(argv):
    return run_tool("docker", argv, classify, main)


def main(argv):
    path, rest, node = split_command(argv, GLOBAL_FS, TREE)
    key = " ".join(path)
    if not path:
        pos = [a for a in rest if not a.startswith("-")]
        try:
            FlagSet(GLOBAL + [Flag("version", "v", "bool")]).parse([a for a in rest if a.startswith("-")])
        except FlagError as e:
            err("%s\nSee 'docker --help'." % e)
            raise Exit(125)
        if "-v" in rest or "--version" in rest:
            out("Docker version %s, build e6534b4" % SERVER_VERSION)
            return 0
        if pos:
            err("docker: unknown command: docker %s\n\nRun 'docker --help' for more information" % pos[0])
            raise Exit(1)
        out("Usage:  docker [OPTIONS] COMMAND")
        return 0
    if path[0] == "buildx" and not buildx_installed():
        # the buildx CLI plugin is absent (e.g. Debian's docker.io): `buildx` is no command at all
        err("docker: unknown command: docker buildx\n\nRun 'docker --help' for more information")
        raise Exit(1)
    if key not in COMMANDS and key not in ALIASES:
        # management command without (known) subcommand
        pos = [a for a in rest if not a.startswith("-")]
        if pos:
            err("docker: unknown command: docker %s %s\n\nRun 'docker %s --help' for more information"
                % (key, pos[0], key))
            raise Exit(1)
        out("Usage:  docker %s COMMAND" % key)
        return 0
    canon = ALIASES.get(key, key)
    flags, usage, no_intersperse = COMMANDS[canon]
    fs = FlagSet(GLOBAL + flags, interspersed=not no_intersperse)
    try:
        vals, pos, dd = fs.parse(rest)
    except FlagError as e:
        usage_error(key, usage, str(e))
    if dd is not None:
        pos = pos + dd
    if canon == "version":
        return cmd_version(vals)
    if canon == "buildx version":
        out("github.com/docker/buildx v0.29.1 a8a4ad8ef4d8a5c1b7d3a3b6e0e0b4e5f2c1d0e9")
        return 0
    if canon == "build" and os.environ.get("DOCKER_BUILDKIT") not in (None, "", "0", "false") \
            and not buildx_installed():
        # docker/cli cmd/docker/builder.go: BuildKit asked for, and no buildx to hand the build to
        err("ERROR: BuildKit is enabled but the buildx component is missing or broken.\n"
            "       Install the buildx component to build images with BuildKit:\n"
            "       https://docs.docker.com/go/buildx/")
        raise Exit(1)
    if _is_down():
        daemon_err("" if canon not in ("run",) else "docker: ")
    st = State()
    st.acquire()
    try:
        dw.reap_dead(st)
        fn = HANDLERS[canon]
        return fn(st, vals, pos, key, usage)
    finally:
        if st.held:
            st.release()


def buildx_installed():
    """FAKE_DOCKER_BUILDX=0: a Docker CLI without the buildx plugin (the classic builder only)."""
    return os.environ.get("FAKE_DOCKER_BUILDX", "1") != "0"


def _is_down():
    from .common import daemon_down
    return daemon_down()


def need_args(key, usage, pos, n, exact=False):
    if len(pos) < n or (exact and len(pos) != n):
        if exact:
            msg = '"docker %s" requires exactly %d argument%s.' % (key, n, "" if n == 1 else "s")
        else:
            msg = '"docker %s" requires at least %d argument%s.' % (key, n, "" if n == 1 else "s")
        err("docker: %s\n\nUsage:  %s\n\nRun 'docker %s --help' for more information" % (msg, usage, key))
        raise Exit(1)


def render(tmpl, doc, label_fn=None):
    try:
        return gotmpl.render(tmpl, doc, label_fn)
    except gotmpl.Unsupported as e:
        err("fake docker: unsupported template %r (%s)" % (tmpl, e))
        raise Exit(2)


# ---------------------------------------------------------------- commands

def version_doc():
    api = API_VERSIONS.get(docker_major(), API_VERSIONS[max(API_VERSIONS)])
    return {"Client": {"Version": SERVER_VERSION, "ApiVersion": api, "Os": "linux", "Arch": "amd64",
                       "GoVersion": "go1.24.3", "GitCommit": "e6534b4"},
            "Server": {"Version": SERVER_VERSION, "ApiVersion": api, "MinAPIVersion": "1.24", "Os": "linux",
                       "Arch": "amd64", "GoVersion": "go1.24.3", "GitCommit": "45873be",
                       "Platform": {"Name": "Docker Engine - Community"}}}


def cmd_version(vals):
    doc = version_doc()
    down = _is_down()
    if vals["format"]:
        if down:
            # docker renders the template without a server (its fields print empty), then says why
            # and exits 1 (seen with docker 28.2.2: `{{.Client.Version}}|{{.Server.Version}}` -> "28.2.2|").
            doc["Server"] = None
        out(render(vals["format"], doc))
        if down:
            err(DAEMON_DOWN_MSG)
            raise Exit(1)
        return 0
    c = doc["Client"]
    out("Client: Docker Engine - Community\n Version:           %s\n API version:       %s\n Go version:        %s\n"
        " Git commit:        %s\n OS/Arch:           linux/amd64\n Context:           default" %
        (c["Version"], c["ApiVersion"], c["GoVersion"], c["GitCommit"]))
    if down:
        err(DAEMON_DOWN_MSG)
        raise Exit(1)
    s = doc["Server"]
    out("\nServer: Docker Engine - Community\n Engine:\n  Version:          %s\n  API version:      %s (minimum version 1.24)\n"
        "  Go version:       %s\n  Git commit:       %s\n  OS/Arch:          linux/amd64" %
        (s["Version"], s["ApiVersion"], s["GoVersion"], s["GitCommit"]))
    return 0


def cmd_info(st, vals, pos, key, usage):
    doc = {"ID": "FAKE", "Containers": len(st.data["docker"]["containers"]),
           "ContainersRunning": sum(1 for c in st.data["docker"]["containers"].values() if dw.running(c)),
           "Images": len(st.data["docker"]["images"]), "ServerVersion": SERVER_VERSION, "OperatingSystem": "fake",
           "OSType": "linux", "Architecture": "x86_64", "NCPU": 8, "MemTotal": 16 * 1024 ** 3,
           "CgroupVersion": "2", "CgroupDriver": "systemd", "Name": "fakehost", "SecurityOptions": []}
    if vals["format"]:
        out(render(vals["format"], doc))
    else:
        out("Server:\n Containers: %d\n  Running: %d\n Images: %d\n Server Version: %s\n Cgroup Version: 2"
            % (doc["Containers"], doc["ContainersRunning"], doc["Images"], SERVER_VERSION))
    return 0


def image_doc(img):
    return {"Id": img["id"], "RepoTags": img["tags"], "RepoDigests": img.get("repo_digests") or [],
            "Created": img["created"],
            "Config": {"Labels": img.get("labels") or None}, "Architecture": "amd64", "Os": "linux", "Size": 1234567}


def network_doc(st, net):
    cons = {}
    for c in st.data["docker"]["containers"].values():
        if net["name"] in c["networks"]:
            i = c["networks"][net["name"]]
            cons[c["id"]] = {"Name": c["name"], "EndpointID": i["endpoint"], "MacAddress": i["mac"],
                             "IPv4Address": i["ip"] + "/16", "IPv6Address": ""}
    return {"Name": net["name"], "Id": net["id"], "Driver": net["driver"], "Scope": "local",
            "Containers": cons, "Options": {}, "Labels": {},
            "IPAM": {"Config": [{"Subnet": net.get("subnet_base", "172.17.0").rsplit(".", 1)[0] + ".0.0/16"}]}}


def volume_doc(v):
    return {"Name": v["name"], "Driver": "local", "Mountpoint": v["mountpoint"], "CreatedAt": v["created"],
            "Labels": None, "Scope": "local", "Options": None}


def cmd_inspect(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    typ = vals["type"]
    if typ and typ not in ("container", "image", "network", "volume"):
        err('"%s" is not a valid value for --type' % typ)
        raise Exit(1)
    docs = []
    rc = 0
    for name in pos:
        doc = None
        if typ in (None, "container"):
            c = dw.find_container(st, name)
            if c:
                doc = dw.inspect_doc(st, c)
        if doc is None and typ in (None, "image"):
            img = dw.find_image(st, name)
            if img:
                doc = image_doc(img)
        if doc is None and typ in (None, "network"):
            net = st.data["docker"]["networks"].get(name)
            if net:
                doc = network_doc(st, net)
        if doc is None and typ in (None, "volume"):
            v = st.data["docker"]["volumes"].get(name)
            if v:
                doc = volume_doc(v)
        if doc is None:
            rc = 1
            what = {"container": "container", "image": "image", "network": "network", "volume": "volume"}.get(typ)
            if what == "container":
                err("Error: No such container: %s" % name)
            elif what == "image":
                err("Error: No such image: %s" % name)
            elif what == "network":
                err("Error: No such network: %s" % name)
            elif what == "volume":
                err("Error: No such volume: %s" % name)
            elif docker_major() >= 29:
                err("error: no such object: %s" % name)
            else:
                err("Error: No such object: %s" % name)
            continue
        docs.append(doc)
    if vals["format"]:
        for d in docs:
            out(render(vals["format"], d))
        if not docs:  # the CLI's template inspector flushes an empty line when nothing matched
            out("")
    else:
        out(json.dumps(docs, indent=4))
    raise Exit(rc)


def _parse_publish(spec):
    # [ip:]hostPort:containerPort[/proto] | containerPort
    proto = "tcp"
    if "/" in spec:
        spec, proto = spec.rsplit("/", 1)
    parts = spec.split(":")
    if len(parts) == 3:
        ip, hp, cp = parts
    elif len(parts) == 2:
        ip, hp, cp = "", parts[0], parts[1]
    else:
        ip, hp, cp = "", "", parts[0]
    if not cp.isdigit() or (hp and not hp.isdigit()):
        raise ValueError('invalid containerPort: %s' % cp)
    if not hp:
        from .common import free_port
        hp = str(free_port())
    return {"host_ip": ip, "host_port": int(hp), "container_port": int(cp), "proto": proto}


def cmd_run(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    image, cmd = pos[0], pos[1:]
    name = vals["name"]
    if name and not re.fullmatch(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+", name):
        err('docker: Error response from daemon: Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are '
            'allowed.\n\nRun \'docker run --help\' for more information' % name)
        raise Exit(125)
    if vals["rm"] and vals["restart"] and vals["restart"] != "no":
        err("docker: Conflicting options: --restart and --rm.\n\nRun 'docker run --help' for more information")
        raise Exit(125)
    restart = vals["restart"] or "no"
    if not re.fullmatch(r"no|always|unless-stopped|on-failure(:\d+)?", restart):
        err("docker: invalid restart policy format: %s\n\nRun 'docker run --help' for more information" % restart)
        raise Exit(125)
    if name:
        ex = dw.find_container(st, name)
        if ex and ex["name"] == name:
            err('docker: Error response from daemon: Conflict. The container name "/%s" is already in use by '
                'container "%s". You have to remove (or rename) that container to be able to reuse that name.\n\n'
                "Run 'docker run --help' for more information" % (name, ex["id"]))
            raise Exit(125)
    try:
        ports = [_parse_publish(p) for p in vals["publish"]]
    except ValueError as e:
        err("docker: %s\n\nRun 'docker run --help' for more information" % e)
        raise Exit(125)
    network = vals["network"] or vals["net"] or "bridge"
    if network not in st.data["docker"]["networks"]:
        err("docker: Error response from daemon: network %s not found\n\nRun 'docker run --help' for more "
            "information" % network)
        raise Exit(125)
    mounts = []
    for v in vals["volume"]:
        parts = v.split(":")
        if len(parts) < 2:
            # anonymous volume at path
            anon = dw.rand_hex()
            dw.ensure_volume(st, anon, anonymous=True)
            mounts.append({"Type": "volume", "Name": anon, "Source": "/var/lib/docker/volumes/%s/_data" % anon,
                           "Destination": parts[0], "Driver": "local", "Mode": "", "RW": True, "Propagation": ""})
            continue
        src, dest = parts[0], parts[1]
        ro = len(parts) > 2 and "ro" in parts[2].split(",")
        if src.startswith("/") or src.startswith("."):
            mounts.append({"Type": "bind", "Source": os.path.abspath(src), "Destination": dest, "Mode": "",
                           "RW": not ro, "Propagation": "rprivate"})
        else:
            dw.ensure_volume(st, src)
            mounts.append({"Type": "volume", "Name": src, "Source": "/var/lib/docker/volumes/%s/_data" % src,
                           "Destination": dest, "Driver": "local", "Mode": "z", "RW": not ro, "Propagation": ""})
    labels = {}
    for lab in vals["label"]:
        k, _, v = lab.partition("=")
        labels[k] = v
    img, pulled = dw.pull_image(st, image)
    if pulled:
        host, repo, tag = dw.split_ref(image)
        err("Unable to find image '%s' locally" % image)
        err("%s: Pulling from %s" % (tag, repo if "/" in repo else "library/" + repo))
        err("Digest: sha256:%s" % dw.sha_hex(image))
        err("Status: Downloaded newer image for %s" % image)
    c = dw.create_container(st, name, image, ports=ports, network=network, labels=labels, env=vals["env"],
                            mounts=mounts, cmd=cmd, restart=restart, extra={"privileged": vals["privileged"]})
    try:
        dw.start_container(st, c)
    except dw.StartError as e:
        c["error"] = str(e)
        st.save()
        err("docker: Error response from daemon: %s\n\nRun 'docker run --help' for more information" % e)
        raise Exit(125)
    if vals["detach"]:
        out(c["id"])
        return 0
    # foreground: nothing to run in the fake; the container "exits" at once
    if not dw.is_registry_image(image):
        dw.stop_container(st, c, 0)
        if vals["rm"]:
            dw.remove_container(st, c, volumes=True)
    return 0


def _each_container(st, pos, fn):
    rc = 0
    for name in pos:
        c = dw.find_container(st, name)
        if c is None:
            err("Error response from daemon: No such container: %s" % name)
            rc = 1
            continue
        r = fn(c, name)
        if r:
            rc = r
    raise Exit(rc)


def cmd_start(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)

    def f(c, name):
        try:
            dw.start_container(st, c)
        except dw.StartError as e:
            err("Error response from daemon: %s\nError: failed to start containers: %s" % (e, name))
            return 1
        out(name)
    _each_container(st, pos, f)


def cmd_stop(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)

    def f(c, name):
        dw.stop_container(st, c, 0)
        out(name)
    _each_container(st, pos, f)


def cmd_kill(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)

    def f(c, name):
        if not dw.running(c):
            err("Error response from daemon: cannot kill container: %s: container %s is not running" % (name, c["id"]))
            return 1
        dw.stop_container(st, c, 137)
        out(name)
    _each_container(st, pos, f)


def cmd_restart(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)

    def f(c, name):
        dw.stop_container(st, c, 0)
        try:
            dw.start_container(st, c)
        except dw.StartError as e:
            err("Error response from daemon: Cannot restart container %s: %s" % (name, e))
            return 1
        out(name)
    _each_container(st, pos, f)


def cmd_rm(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)

    def f(c, name):
        if dw.running(c) and not vals["force"]:
            err("Error response from daemon: cannot remove container \"/%s\": container is running: stop the "
                "container before removing or force remove" % c["name"])
            return 1
        dw.remove_container(st, c, volumes=vals["volumes"])
        out(name)
    _each_container(st, pos, f)


def _ps_filters(st, filters):
    fl = []
    for f in filters:
        if "=" not in f:
            err('Error response from daemon: invalid filter \'%s\'' % f)
            raise Exit(1)
        k, v = f.split("=", 1)
        if k not in ("name", "label", "status", "id", "ancestor", "network"):
            err("Error response from daemon: invalid filter '%s'" % k)
            raise Exit(1)
        fl.append((k, v))
    return fl


def _ps_match(st, c, fl):
    by = {}
    for k, v in fl:
        by.setdefault(k, []).append(v)
    for k, vs in by.items():
        if k == "label":
            for v in vs:  # labels are ANDed
                lk, eq, lv = v.partition("=")
                if lk not in c["labels"] or (eq and c["labels"][lk] != lv):
                    return False
            continue
        ok = False
        for v in vs:  # same key ORed
            if k == "name" and re.search(v, c["name"]):
                ok = True
            elif k == "status" and c["state"] == v:
                ok = True
            elif k == "id" and c["id"].startswith(v):
                ok = True
            elif k == "ancestor" and dw.normalize_ref(c["image"]) == dw.normalize_ref(v):
                ok = True
            elif k == "network" and v in c["networks"]:
                ok = True
        if not ok:
            return False
    return True


def _ps_row(st, c, no_trunc=False):
    ports = []
    if dw.running(c):
        for p in c["ports"]:
            ports.append("%s:%s->%s/%s" % (p.get("host_ip") or "0.0.0.0", p["host_port"], p["container_port"],
                                           p.get("proto", "tcp")))
    return {"ID": c["id"] if no_trunc else c["id"][:12], "Names": c["name"], "Image": c["image"],
            "Command": '"%s"' % " ".join(c["cmd"] or ["/entrypoint.sh"])[:20], "CreatedAt": c["created"],
            "RunningFor": dw.ago_text(c["created"]) + " ago", "Status": dw.status_text(c),
            "State": c["state"], "Ports": ", ".join(ports),
            "Labels": ",".join("%s=%s" % kv for kv in sorted(c["labels"].items())),
            "Networks": ",".join(sorted(c["networks"])), "Mounts": ",".join(m.get("Name", m["Source"])
                                                                              for m in c["mounts"])}


def cmd_ps(st, vals, pos, key, usage):
    if pos:
        err('"docker ps" accepts no arguments.\n\nUsage:  %s\n\nRun \'docker ps --help\' for more information'
            % usage)
        raise Exit(1)
    fl = _ps_filters(st, vals["filter"])
    cs = sorted(st.data["docker"]["containers"].values(), key=lambda c: c["created"], reverse=True)
    cs = [c for c in cs if (vals["all"] or dw.running(c)) and _ps_match(st, c, fl)]
    if vals["quiet"]:
        for c in cs:
            out(c["id"] if vals["no_trunc"] else c["id"][:12])
        return 0
    fmt = vals["format"]
    if fmt:
        for c in cs:
            row = _ps_row(st, c, vals["no_trunc"])
            out(render(fmt, row, label_fn=lambda k, c=c: c["labels"].get(k, "")))
        return 0
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    for c in cs:
        r = _ps_row(st, c)
        rows.append([r["ID"], r["Image"], r["Command"], r["RunningFor"], r["Status"], r["Ports"], r["Names"]])
    _table(rows)
    return 0


def _table(rows, pad=3):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out((" " * pad).join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip())


def _mkdirs(fs, path, conflict):
    """PATH and every folder above it in a container's FS, as `mkdir -p` makes them; a file in the way
    ends the command with the line CONFLICT(that file's path) gives."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        if d in fs["files"]:
            err(conflict(d))
            raise Exit(1)
        if d not in fs["dirs"]:
            fs["dirs"].append(d)


def cmd_exec(st, vals, pos, key, usage):
    need_args(key, usage, pos, 2)
    name, cmd = pos[0], pos[1:]
    c = dw.find_container(st, name)
    if c is None:
        err("Error response from daemon: No such container: %s" % name)
        raise Exit(1)
    if not dw.running(c):
        err("Error response from daemon: container %s is not running" % c["id"])
        raise Exit(1)
    fs = c["fs"]
    if cmd[:2] == ["mkdir", "-p"] and len(cmd) >= 3:
        for d in cmd[2:]:
            d = "/" + d.strip("/")
            _mkdirs(fs, d, lambda _, d=d: "mkdir: cannot create directory '%s': File exists" % d)
        return 0
    if len(cmd) == 3 and cmd[:2] == ["cp", "/dev/stdin"]:
        dest = cmd[2]
        parent = os.path.dirname(dest.rstrip("/")) or "/"
        if parent not in fs["dirs"]:
            err("cp: cannot create regular file '%s': No such file or directory" % dest)
            raise Exit(1)
        data = sys.stdin.read() if vals["interactive"] else ""
        fs["files"][dest] = data
        return 0
    if len(cmd) >= 2 and cmd[0] == "cat":
        rc = 0
        for p in cmd[1:]:
            if p in fs["files"]:
                sys.stdout.write(fs["files"][p])
            elif p in fs["dirs"]:
                err("cat: %s: Is a directory" % p)
                rc = 1
            else:
                err("cat: %s: No such file or directory" % p)
                rc = 1
        sys.stdout.flush()
        raise Exit(rc)
    if cmd and cmd[0] in ("true",):
        return 0
    err("fake: unsupported exec: %s" % " ".join(cmd))
    raise Exit(126)


def cmd_cp(st, vals, pos, key, usage):
    """Only `docker cp - CONTAINER:DIR`: a tar archive on stdin, extracted under DIR as Docker's archive
    API does (missing parent folders created, root-owned). The other directions are not used here."""
    need_args(key, usage, pos, 2, exact=True)
    src, dst = pos
    if src != "-" or ":" not in dst:
        err("fake: docker cp is supported only as `docker cp - CONTAINER:DIR` (tar on stdin)")
        raise Exit(2)
    name, _, dest = dst.partition(":")
    c = dw.find_container(st, name)
    if c is None:
        err("Error response from daemon: No such container: %s" % name)
        raise Exit(1)
    fs = c["fs"]
    dest = "/" + dest.strip("/") if dest.strip("/") else "/"
    if dest in fs["files"]:
        err('destination "%s:%s" must be a directory' % (name, dest))
        raise Exit(1)
    if dest not in fs["dirs"]:
        err("Error response from daemon: Could not find the file %s in container %s" % (dest, name))
        raise Exit(1)
    import io
    import tarfile
    try:
        tar = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode="r:")
        members = tar.getmembers()
    except tarfile.TarError:
        err("Error response from daemon: unexpected EOF")
        raise Exit(1)
    for m in members:
        path = (dest.rstrip("/") + "/" + m.name.strip("/")) if m.name.strip("/") else dest
        _mkdirs(fs, path if m.isdir() else os.path.dirname(path),
                lambda d: "Error response from daemon: cannot overwrite non-directory %s with directory" % d)
        if m.isfile():
            if path in fs["dirs"]:
                err("Error response from daemon: cannot overwrite directory %s with non-directory" % path)
                raise Exit(1)
            fs["files"][path] = tar.extractfile(m).read().decode()
        elif not m.isdir():
            err("fake: docker cp: unsupported tar member type for %s" % m.name)
            raise Exit(2)
    return 0


def cmd_logs(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1, exact=True)
    c = dw.find_container(st, pos[0])
    if c is None:
        err("Error response from daemon: No such container: %s" % pos[0])
        raise Exit(1)
    logf = os.path.join(st.dir, "logs", "container-%s.log" % c["name"])
    lines = []
    if os.path.exists(logf):
        with open(logf, errors="replace") as f:
            lines = f.read().splitlines()
    if vals["tail"] and vals["tail"] != "all":
        lines = lines[-int(vals["tail"]):] if int(vals["tail"]) else []
    for ln in lines:
        err(ln)
    return 0


def _context_files(ctx):
    entries = []
    for dirpath, dirnames, filenames in os.walk(ctx):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__", ".venv", "node_modules",
                                                            ".pytest_cache"))
        for fn in sorted(filenames):
            if fn.endswith(".pyc"):
                continue
            full = os.path.join(dirpath, fn)
            entries.append((os.path.relpath(full, ctx), full))
    return sorted(entries)


def cmd_build(st, vals, pos, key, usage):
    if len(pos) != 1:
        err('ERROR: "docker buildx build" requires exactly 1 argument.\nSee \'docker buildx build --help\'.\n\n'
            "Usage:  %s" % usage)
        raise Exit(1)
    ctx = pos[0]
    if not os.path.isdir(ctx):
        err('ERROR: failed to build: unable to prepare context: path "%s" not found' % ctx)
        raise Exit(1)
    dockerfile = vals["file"] or os.path.join(ctx, "Dockerfile")
    if not os.path.isfile(dockerfile):
        err("ERROR: failed to build: failed to solve: failed to read dockerfile: open %s: no such file or directory"
            % os.path.basename(dockerfile))
        raise Exit(1)
    for t in vals["tag"]:
        if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[\w][\w.-]{0,127})?", t):
            err('ERROR: failed to build: invalid tag "%s": invalid reference format' % t)
            raise Exit(1)
    h = hashlib.sha256()
    with open(dockerfile, "rb") as f:
        h.update(b"Dockerfile\0" + f.read())
    for rel, full in _context_files(ctx):
        with open(full, "rb") as f:
            h.update(rel.encode() + b"\0" + f.read() + b"\0")
    labels = {}
    for lab in vals["label"]:
        k, _, v = lab.partition("=")
        labels[k] = v
    for a in sorted(vals["build_arg"]):
        h.update(b"ARG " + a.encode())
    for k, v in sorted(labels.items()):
        h.update(("LABEL %s=%s" % (k, v)).encode())
    iid = "sha256:" + h.hexdigest()
    snap = os.path.join(st.dir, "images", iid.split(":", 1)[1], "context")
    if not os.path.isdir(snap):
        tmp = snap + ".tmp%d" % os.getpid()
        for rel, full in _context_files(ctx):
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            shutil.copy2(full, os.path.join(tmp, rel))
        os.makedirs(tmp, exist_ok=True)
        os.replace(tmp, snap)
    imgs = st.data["docker"]["images"]
    tags = [dw.normalize_ref(t) for t in vals["tag"]]
    for other in imgs.values():
        other["tags"] = [t for t in other["tags"] if t not in tags]
    img = imgs.setdefault(iid, {"id": iid, "tags": [], "created": now_iso(), "labels": labels, "context": snap})
    # Docker CLI >= 23 builds with BuildKit (through buildx) unless DOCKER_BUILDKIT=0 or buildx is absent.
    img["builder"] = "classic" if os.environ.get("DOCKER_BUILDKIT") in ("0", "false") or not buildx_installed() \
        else "buildkit"
    for t in tags:
        if t not in img["tags"]:
            img["tags"].append(t)
    if vals["quiet"]:
        out(iid)
    else:
        err("#0 building with \"default\" instance using docker driver\n\n#1 [internal] load build definition from "
            "%s\n#1 DONE 0.0s\n#9 exporting to image\n#9 writing image %s done" % (os.path.basename(dockerfile), iid))
        for t in tags:
            err("#9 naming to %s done" % (t if "/" in t.split(":")[0] else "docker.io/library/" + t))
        err("#9 DONE 0.1s")
    return 0


def _registry_get(host, port):
    import urllib.error  # here: ~40 ms of imports that other calls need not pay
    import urllib.request
    url = "http://%s:%s/v2/" % (host, port)
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return None


def cmd_push(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1, exact=True)
    ref = pos[0]
    img = dw.find_image(st, ref)
    nref = dw.normalize_ref(ref)
    host, repo, tag = dw.split_ref(ref)
    if img is None or nref not in img["tags"]:
        err("An image does not exist locally with the tag: %s" % ref.rsplit(":", 1)[0]
            if ":" in ref.rsplit("/", 1)[-1] else "An image does not exist locally with the tag: %s" % ref)
        raise Exit(1)
    out("The push refers to repository [%s]" % nref.rsplit(":", 1)[0])
    if host is None or not re.fullmatch(r"(localhost|127\.0\.0\.1)(:\d+)?", host):
        hn = host or "registry-1.docker.io"
        err('Get "https://%s/v2/": dial tcp: lookup %s: no such host' % (hn.split(":")[0], hn.split(":")[0]))
        raise Exit(1)
    hname, _, port = host.partition(":")
    port = port or "80"
    c = dw.registry_for_host_port(st, port)
    status = _registry_get("127.0.0.1", port)
    if status is None:
        err('Get "http://%s/v2/": dial tcp 127.0.0.1:%s: connect: connection refused' % (host, port))
        raise Exit(1)
    if c is None:
        err("fake docker: something that is not a fake registry container answers on port %s" % port)
        raise Exit(2)
    root = dw.registry_root(st, c)
    digest, size = rs.push_image(root, repo, tag, img["id"], img.get("labels"))
    # Docker records what the registry answered: one REPO@DIGEST per repository
    name = nref.rsplit(":", 1)[0]
    img["repo_digests"] = [d for d in img.get("repo_digests") or [] if d.split("@")[0] != name] + [
        "%s@%s" % (name, digest)]
    layer = dw.sha_hex(img["id"])[:12]
    out("%s: Pushed" % layer)
    out("%s: digest: %s size: %d" % (tag, digest, size))
    return 0


def cmd_pull(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1, exact=True)
    ref = pos[0]
    host, repo, tag = dw.split_ref(ref)
    if host and re.fullmatch(r"(localhost|127\.0\.0\.1)(:\d+)?", host):
        port = host.partition(":")[2] or "80"
        c = dw.registry_for_host_port(st, port)
        if c is None or _registry_get("127.0.0.1", port) is None:
            err('Error response from daemon: Get "http://%s/v2/": dial tcp 127.0.0.1:%s: connect: connection refused'
                % (host, port))
            raise Exit(1)
        iid = rs.image_id_of(dw.registry_root(st, c), repo, tag)
        if not iid:
            err("Error response from daemon: manifest for %s not found: manifest unknown: manifest unknown" % ref)
            raise Exit(1)
        imgs = st.data["docker"]["images"]
        img = imgs.setdefault(iid, {"id": iid, "tags": [], "created": now_iso(), "labels": {}, "context": None})
        if dw.normalize_ref(ref) not in img["tags"]:
            img["tags"].append(dw.normalize_ref(ref))
    else:
        dw.pull_image(st, ref)
    out("%s: Pulling from %s\nStatus: Image is up to date for %s\n%s" % (tag, repo, ref, dw.normalize_ref(ref)))
    return 0


def cmd_tag(st, vals, pos, key, usage):
    need_args(key, usage, pos, 2, exact=True)
    img = dw.find_image(st, pos[0])
    if img is None:
        err("Error response from daemon: No such image: %s" % pos[0])
        raise Exit(1)
    t = dw.normalize_ref(pos[1])
    for other in st.data["docker"]["images"].values():
        if t in other["tags"]:
            other["tags"].remove(t)
    img["tags"].append(t)
    return 0


def _image_ls_matches(arg, repo, tagged):
    """`docker images REPO` lists every tag of REPO; `docker images REPO:TAG` only that tag."""
    if ":" in arg.rsplit("/", 1)[-1] or "@" in arg:
        return dw.normalize_ref(arg) == tagged
    return arg == repo


def cmd_image_ls(st, vals, pos, key, usage):
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for img in st.data["docker"]["images"].values():
        for t in img["tags"] or ["<none>:<none>"]:
            r, _, tg = t.rpartition(":")
            if pos and not _image_ls_matches(pos[0], r, t):
                continue
            if vals["quiet"]:
                out(img["id"].split(":")[1][:12])
            elif vals["format"]:
                out(render(vals["format"], {"Repository": r, "Tag": tg, "ID": img["id"].split(":")[1][:12],
                                            "CreatedAt": img["created"], "Size": "1.23MB"}))
            else:
                rows.append([r, tg, img["id"].split(":")[1][:12], "About a minute ago", "1.23MB"])
    if not vals["quiet"] and not vals["format"]:
        _table(rows)
    return 0


def cmd_image_inspect(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    docs = []
    rc = 0
    for ref in pos:
        img = dw.find_image(st, ref)
        if img is None:
            err("Error response from daemon: No such image: %s" % ref)
            rc = 1
            continue
        docs.append(image_doc(img))
    if vals["format"]:
        for d in docs:
            out(render(vals["format"], d))
    elif docs or rc == 0:
        out(json.dumps(docs, indent=4))
    raise Exit(rc)


def cmd_image_rm(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    rc = 0
    for ref in pos:
        img = dw.find_image(st, ref)
        if img is None:
            err("Error response from daemon: No such image: %s" % ref)
            rc = 1
            continue
        users = [c for c in st.data["docker"]["containers"].values()
                 if dw.find_image(st, c["image"]) is img]
        if users and not vals["force"]:
            err("Error response from daemon: conflict: unable to remove repository reference \"%s\" (must force) - "
                "container %s is using its referenced image %s" % (ref, users[0]["id"][:12], img["id"][7:19]))
            rc = 1
            continue
        n = dw.normalize_ref(ref)
        if n in img["tags"] and len(img["tags"]) > 1:
            img["tags"].remove(n)
            out("Untagged: %s" % n)
            continue
        for t in img["tags"]:
            out("Untagged: %s" % t)
        out("Deleted: %s" % img["id"])
        st.data["docker"]["images"].pop(img["id"], None)
    raise Exit(rc)


def cmd_network_connect(st, vals, pos, key, usage):
    need_args(key, usage, pos, 2, exact=True)
    net, name = pos
    if net not in st.data["docker"]["networks"]:
        err("Error response from daemon: network %s not found" % net)
        raise Exit(1)
    c = dw.find_container(st, name)
    if c is None:
        err("Error response from daemon: No such container: %s" % name)
        raise Exit(1)
    if net in c["networks"]:
        err("Error response from daemon: endpoint with name %s already exists in network %s" % (c["name"], net))
        raise Exit(1)
    dw.connect(st, c, net, vals["alias"])
    return 0


def cmd_network_disconnect(st, vals, pos, key, usage):
    need_args(key, usage, pos, 2, exact=True)
    net, name = pos
    if net not in st.data["docker"]["networks"]:
        err("Error response from daemon: network %s not found" % net)
        raise Exit(1)
    c = dw.find_container(st, name)
    if c is None:
        err("Error response from daemon: No such container: %s" % name)
        raise Exit(1)
    if net not in c["networks"]:
        err("Error response from daemon: container %s is not connected to network %s" % (c["id"], net))
        raise Exit(1)
    del c["networks"][net]
    return 0


def cmd_network_ls(st, vals, pos, key, usage):
    nets = sorted(st.data["docker"]["networks"].values(), key=lambda n: n["name"])
    for f in vals["filter"]:
        k, _, v = f.partition("=")
        if k == "name":
            nets = [n for n in nets if v in n["name"]]
    if vals["quiet"]:
        for n in nets:
            out(n["id"][:12])
    elif vals["format"]:
        for n in nets:
            out(render(vals["format"], {"ID": n["id"][:12], "Name": n["name"], "Driver": n["driver"],
                                        "Scope": "local"}))
    else:
        _table([["NETWORK ID", "NAME", "DRIVER", "SCOPE"]] +
               [[n["id"][:12], n["name"], n["driver"], "local"] for n in nets])
    return 0


def cmd_network_inspect(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    docs, rc = [], 0
    for name in pos:
        n = st.data["docker"]["networks"].get(name)
        if n is None:
            err("Error response from daemon: network %s not found" % name)
            rc = 1
            continue
        docs.append(network_doc(st, n))
    if vals["format"]:
        for d in docs:
            out(render(vals["format"], d))
    else:
        out(json.dumps(docs, indent=4))
    raise Exit(rc)


def cmd_network_create(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1, exact=True)
    if pos[0] in st.data["docker"]["networks"]:
        err("Error response from daemon: network with name %s already exists" % pos[0])
        raise Exit(1)
    n = dw.ensure_network(st, pos[0])
    out(n["id"])
    return 0


def cmd_network_rm(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    rc = 0
    for name in pos:
        if name not in st.data["docker"]["networks"]:
            if not vals["force"]:
                err("Error response from daemon: network %s not found" % name)
                rc = 1
            continue
        users = [c for c in st.data["docker"]["containers"].values() if name in c["networks"]]
        if users:
            err("Error response from daemon: error while removing network: network %s has active endpoints "
                "(name:%s id:%s)" % (name, users[0]["name"], users[0]["id"][:12]))
            rc = 1
            continue
        del st.data["docker"]["networks"][name]
        out(name)
    raise Exit(rc)


def cmd_volume_ls(st, vals, pos, key, usage):
    vols = sorted(st.data["docker"]["volumes"].values(), key=lambda v: v["name"])
    for f in vals["filter"]:
        k, _, v = f.partition("=")
        if k == "name":
            vols = [x for x in vols if v in x["name"]]
        elif k == "dangling":
            want = v in ("true", "1")
            vols = [x for x in vols if (not dw.volume_in_use(st, x["name"])) == want]
    if vals["quiet"]:
        for v in vols:
            out(v["name"])
    elif vals["format"]:
        for v in vols:
            out(render(vals["format"], {"Name": v["name"], "Driver": "local", "Mountpoint": v["mountpoint"]}))
    else:
        _table([["DRIVER", "VOLUME NAME"]] + [["local", v["name"]] for v in vols], pad=4)
    return 0


def cmd_volume_rm(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    rc = 0
    for name in pos:
        if name not in st.data["docker"]["volumes"]:
            if not vals["force"]:
                err("Error response from daemon: get %s: no such volume" % name)
                rc = 1
            continue
        users = dw.volume_in_use(st, name)
        if users:
            err("Error response from daemon: remove %s: volume is in use - [%s]" % (name, users[0]["id"]))
            rc = 1
            continue
        dw.remove_volume(st, name)
        out(name)
    raise Exit(rc)


def cmd_volume_create(st, vals, pos, key, usage):
    name = vals["name"] or (pos[0] if pos else dw.rand_hex())
    dw.ensure_volume(st, name)
    out(name)
    return 0


def cmd_volume_inspect(st, vals, pos, key, usage):
    need_args(key, usage, pos, 1)
    docs, rc = [], 0
    for name in pos:
        v = st.data["docker"]["volumes"].get(name)
        if v is None:
            err("Error response from daemon: get %s: no such volume" % name)
            rc = 1
            continue
        docs.append(volume_doc(v))
    if vals["format"]:
        for d in docs:
            out(render(vals["format"], d))
    else:
        out(json.dumps(docs, indent=4))
    raise Exit(rc)


HANDLERS = {
    "info": cmd_info, "inspect": cmd_inspect, "run": cmd_run, "start": cmd_start, "stop": cmd_stop,
    "restart": cmd_restart, "kill": cmd_kill, "rm": cmd_rm, "ps": cmd_ps, "exec": cmd_exec, "cp": cmd_cp, "logs": cmd_logs,
    "build": cmd_build, "push": cmd_push, "pull": cmd_pull, "tag": cmd_tag, "images": cmd_image_ls,
    "image ls": cmd_image_ls, "image inspect": cmd_image_inspect, "image rm": cmd_image_rm, "rmi": cmd_image_rm,
    "network connect": cmd_network_connect, "network disconnect": cmd_network_disconnect,
    "network ls": cmd_network_ls, "network inspect": cmd_network_inspect, "network create": cmd_network_create,
    "network rm": cmd_network_rm, "volume ls": cmd_volume_ls, "volume rm": cmd_volume_rm,
    "volume create": cmd_volume_create, "volume inspect": cmd_volume_inspect,
}
