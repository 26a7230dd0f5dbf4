"""Test helpers for the docker/kind/kubectl/flux fakes (see README.md).

    world = FakeWorld(tmp_path)
    env = world.env(os.environ)            # PATH with tests/fakes/bin first, FAKE_* set
    subprocess.run(["doit", "setup"], env=env, ...)
    world.calls(); world.mutating_calls(); world.state()
    world.kill_background()                # always, e.g. in a fixture finalizer
"""

import json
import os
import signal
import subprocess
import sys
import time

FAKES_DIR = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.join(FAKES_DIR, "bin")
REPO_ROOT = os.path.dirname(os.path.dirname(FAKES_DIR))

if FAKES_DIR not in sys.path:
    sys.path.insert(0, FAKES_DIR)


class FakeWorld:
    """One simulated machine (Docker engine + kind clusters + registry) whose
    state lives under tmp_path/fake-state."""

    def __init__(self, tmp_path, repo_root=None, real_kubectl=None):
        self.state_dir = os.path.join(str(tmp_path), "fake-state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.bin_dir = BIN_DIR
        self.repo_root = str(repo_root or REPO_ROOT)
        self.real_kubectl = real_kubectl or os.environ.get("FAKE_REAL_KUBECTL", "/usr/bin/kubectl")
        self.kubeconfig = os.path.join(str(tmp_path), "kubeconfig")

    # ------------------------------------------------------------ env
    def env(self, base_env=None, fail=None, pause_at=None, kubeconfig=True, **extra):
        """Environment for running the product against the fakes.

        fail: FAKE_FAIL value (str or list of prefixes); pause_at: FAKE_PAUSE_AT;
        kubeconfig=True points KUBECONFIG at tmp_path/kubeconfig (never ~/.kube);
        extra: more variables (e.g. FAKE_KIND_VERSION="0.26.0")."""
        env = dict(os.environ if base_env is None else base_env)
        env["PATH"] = self.bin_dir + os.pathsep + os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env["FAKE_STATE_DIR"] = self.state_dir
        env["FAKE_REPO_ROOT"] = self.repo_root
        env["FAKE_REAL_KUBECTL"] = self.real_kubectl
        if kubeconfig:
            env["KUBECONFIG"] = self.kubeconfig if kubeconfig is True else str(kubeconfig)
        if fail:
            env["FAKE_FAIL"] = fail if isinstance(fail, str) else ";".join(fail)
        if pause_at:
            env["FAKE_PAUSE_AT"] = pause_at
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run(self, *argv, input=None, env=None, timeout=60, check=False):
        """Run a fake CLI (or anything) with self.env(); returns CompletedProcess (text)."""
        return subprocess.run(list(argv), input=input, env=env or self.env(), capture_output=True, text=True,
                              timeout=timeout, check=check)

    # ------------------------------------------------------------ call log
    def calls(self, tool=None):
        p = os.path.join(self.state_dir, "calls.jsonl")
        out = []
        if os.path.exists(p):
            with open(p) as f:
                for line in f:
                    if line.strip():
                        out.append(json.loads(line))
        return [c for c in out if tool is None or c["tool"] == tool]

    def mutating_calls(self, tool=None):
        return [c for c in self.calls(tool) if c["mutating"]]

    def clear_calls(self):
        p = os.path.join(self.state_dir, "calls.jsonl")
        if os.path.exists(p):
            os.remove(p)

    # ------------------------------------------------------------ state
    def state(self):
        p = os.path.join(self.state_dir, "state.json")
        if not os.path.exists(p):
            from fakelib.common import empty_state
            return empty_state()
        with open(p) as f:
            return json.load(f)

    def _locked(self):
        from fakelib.common import locked_state
        return locked_state(self.state_dir)

    def objects(self, cluster, kind=None, namespace=None):
        """Stored API objects of CLUSTER (as the fake API server holds them, no controller tick)."""
        cl = self.state()["clusters"].get(cluster) or {"objects": {}}
        out = []
        for o in cl["objects"].values():
            if (kind is None or o["kind"] == kind) and (namespace is None or o["metadata"].get("namespace") ==
                                                        namespace):
                o = dict(o)
                o.pop("_fake", None)
                out.append(o)
        return out

    def registry_tags(self, repo, port=5001):
        """Tags stored in the registry container publishing PORT (None if no such repo)."""
        from fakelib import dockerworld as dw, registry_store as rs
        with self._locked() as st:
            for c in st.data["docker"]["containers"].values():
                if dw.is_registry_image(c["image"]) and dw.host_port_of(c, 5000) == int(port):
                    return rs.list_tags(dw.registry_root(st, c), repo)
        return None

    # ------------------------------------------------------------ injection
    def set_fail(self, prefix):
        """Write STATE/fail (read on every call). prefix: str, list of str, or None to clear."""
        p = os.path.join(self.state_dir, "fail")
        if not prefix:
            if os.path.exists(p):
                os.remove(p)
            return
        with open(p, "w") as f:
            f.write(prefix if isinstance(prefix, str) else ";".join(prefix))

    def docker_down(self, down=True):
        p = os.path.join(self.state_dir, "daemon_down")
        if down:
            open(p, "w").close()
        elif os.path.exists(p):
            os.remove(p)

    def paused(self):
        """True once a call matching FAKE_PAUSE_AT has started sleeping."""
        return os.path.exists(os.path.join(self.state_dir, "paused"))

    def unpause(self):
        p = os.path.join(self.state_dir, "paused")
        if os.path.exists(p):
            os.remove(p)

    def set_load(self, namespace, cpu_percent, cluster="gitops-lab"):
        """Simulated CPU utilisation (% of requests) of NAMESPACE's pods, for HPAs and metrics."""
        with self._locked() as st:
            st.data.setdefault("load", {}).setdefault(cluster, {})[namespace] = cpu_percent

    def advance_prometheus_clock(self, seconds, cluster="gitops-lab"):
        """Move the fake Prometheus' clock SECONDS ahead: an alert whose condition has held that long
        passes its `for` (pending -> firing) at the next evaluation."""
        with self._locked() as st:
            prom = st.data.setdefault("prometheus", {}).setdefault(cluster, {})
            prom["clock_offset"] = prom.get("clock_offset", 0) + seconds

    def add_git_repo(self, url, path, password=None, identity=None):
        """Make GitRepository URL resolvable: its content is the directory PATH. A private repository
        (password: an HTTPS token; identity: an SSH private key) clones only with a spec.secretRef
        whose Secret holds that password or identity, as source-controller authenticates."""
        with self._locked() as st:
            repo = os.path.abspath(str(path))
            if password is not None or identity is not None:
                repo = {"path": repo, "password": password, "identity": identity}
            st.data.setdefault("git_repos", {})[url] = repo

    def busy_kustomization(self, name, ticks=2, next_revision=False, namespace="flux-system", cluster="gitops-lab"):
        """kustomize-controller busy re-applying Kustomization NAME in another worker: for TICKS controller
        ticks (a fake CLI call runs one or two) it is "Reconciliation in progress" (Ready Unknown,
        Progressing) at its last applied revision, as a dependant reconciled meanwhile sees it; then it
        reconciles as usual. NEXT_REVISION: from the moment its source serves a new revision (Flux starts
        every Kustomization of a source on a new revision), not from now."""
        with self._locked() as st:
            for o in st.data["clusters"][cluster]["objects"].values():
                if o["kind"] == "Kustomization" and o["metadata"].get("namespace") == namespace \
                        and o["metadata"]["name"] == name:
                    o.setdefault("_fake", {})["busy_next" if next_revision else "busy"] = ticks
                    return
            raise KeyError(name)

    # ------------------------------------------------------------ out-of-band user actions
    def delete_cluster_by_hand(self, name):
        """`docker rm -f` of every node container of kind cluster NAME; the
        kubeconfig context stays (kubectl then gets 'connection refused')."""
        from fakelib import dockerworld as dw
        with self._locked() as st:
            for c in list(st.data["docker"]["containers"].values()):
                if c["labels"].get("io.x-k8s.kind.cluster") == name:
                    dw.remove_container(st, c, volumes=True)
            st.data["clusters"].pop(name, None)

    def stop_container_by_hand(self, name):
        """`docker stop NAME` done by the user (kills the registry server process if any)."""
        from fakelib import dockerworld as dw
        with self._locked() as st:
            c = dw.find_container(st, name)
            if c is None:
                raise KeyError(name)
            dw.stop_container(st, c)

    def remove_container_by_hand(self, name):
        from fakelib import dockerworld as dw
        with self._locked() as st:
            c = dw.find_container(st, name)
            if c is None:
                raise KeyError(name)
            dw.remove_container(st, c)

    # ------------------------------------------------------------ copies
    def freeze(self):
        """Kill every process the fakes started and forget them, leaving each container as it is
        (a running registry stays "running"): the state directory can then be copied, and a copy,
        put back at the same path, comes alive with resume()."""
        from fakelib.common import kill_pid
        if not os.path.exists(os.path.join(self.state_dir, "state.json")):
            return
        with self._locked() as st:
            for pid in list(st.data.get("background", {})):
                kill_pid(int(pid), wait=1.0)
            st.data["background"] = {}
            st.data["apps"] = {}  # pod stand-ins are started again when first needed
            for c in st.data["docker"]["containers"].values():
                c["pid"] = 0

    def resume(self):
        """Start the registry servers of the running registry containers of a frozen world, as Docker
        starts a container's process (the port each publishes must be free)."""
        from fakelib import dockerworld as dw
        with self._locked() as st:
            for c in st.data["docker"]["containers"].values():
                if dw.running(c) and not c.get("pid") and dw.is_registry_image(c["image"]):
                    c["state"] = "created"
                    dw.start_container(st, c)

    # ------------------------------------------------------------ cleanup
    def background_pids(self):
        return [int(p) for p in self.state().get("background", {})]

    def kill_background(self):
        """Kill every process the fakes started (registry servers, app processes,
        port-forwards) and mark registry containers as exited."""
        from fakelib.common import kill_pid
        if not os.path.exists(os.path.join(self.state_dir, "state.json")):
            return
        with self._locked() as st:
            for pid in list(st.data.get("background", {})):
                kill_pid(int(pid), wait=1.0)
            st.data["background"] = {}
            st.data["apps"] = {}
            for c in st.data["docker"]["containers"].values():
                if c.get("pid"):
                    c["pid"] = 0
                    if c["state"] == "running":
                        c["state"] = "exited"
                        c["exit_code"] = 137
