"""Pods the e2e tests start inside the cluster: a load loop that goes through the Service (as any client of
the app does, not a port-forward pinned to one pod), and curl probes pinned to one node. Each is a bare pod
with a label of the suite's own (never the app's: the Service would route to it) and is deleted after."""
from __future__ import annotations

import json
import time

from tasks import versions
from tests.e2e.conftest import kubectl

E2E_LABEL = "gitops-lab-e2e/role"

# The load loop, in the app's own image (Python, stdlib only). Each request opens a new connection, so
# kube-proxy picks a backend per request and a pod that is draining or gone is hit the moment it is.
# A failure is anything but 200, every connection error or timeout included. /work's designed failures
# (FAIL_RATE: 500 with {"error": "simulated failure"}, app/server.py) are counted apart, by their body,
# so that a 500 of any other kind still counts as a failure. /readyz is not asked: it answers 503 on
# purpose while a pod drains.
LOADER = r'''
import http.client, json, os, threading, time
host, paths, threads = os.environ["TARGET"], os.environ["PATHS"].split(","), int(os.environ["THREADS"])
lock = threading.Lock()
counts = {"n": 0, "ok": 0, "designed": 0, "failed": 0}
by_path = {p: 0 for p in paths}
examples = []

def one(path):
    conn = http.client.HTTPConnection(host, 8000, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200:
            return "ok", None
        if path == "/work" and resp.status == 500:
            try:
                designed = json.loads(body).get("error") == "simulated failure"
            except ValueError:
                designed = False
            if designed:
                return "designed", None
        return "failed", "%s -> %d %r" % (path, resp.status, body[:80])
    except Exception as exc:
        return "failed", "%s -> %s: %s" % (path, type(exc).__name__, exc)
    finally:
        conn.close()

def worker(k):
    while True:
        path = paths[k % len(paths)]
        k += 1
        kind, why = one(path)
        with lock:
            counts["n"] += 1
            counts[kind] += 1
            by_path[path] += 1
            if why and len(examples) < 20:
                examples.append(time.strftime("%H:%M:%S ") + why)
        time.sleep(0.02)

for k in range(threads):
    threading.Thread(target=worker, args=(k,), daemon=True).start()
while True:
    time.sleep(1)
    with lock:
        print(json.dumps(dict(counts, by_path=by_path, examples=examples, t=time.time())), flush=True)
'''

RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": versions.APP_UID, "runAsGroup": versions.APP_GID,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True}


def _apply(manifest: dict) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(manifest), timeout=120)


def wait_ready(ns: str, name: str, timeout: int = 180) -> None:
    kubectl("-n", ns, "wait", "--for=condition=Ready", f"pod/{name}", f"--timeout={timeout}s", timeout=timeout + 30)


def delete_pod(ns: str, name: str) -> None:
    kubectl("-n", ns, "delete", "pod", name, "--ignore-not-found", "--wait=true", "--grace-period=1",
            check=False, timeout=120)


class Loader:
    """A load loop in `ns` through svc/app (new connection per request) until stopped."""

    NAME = "e2e-load"

    def __init__(self, ns: str, image: str, paths: str = "/work,/healthz", threads: int = 3):
        self.ns, self.image, self.paths, self.threads = ns, image, paths, threads

    def start(self) -> "Loader":
        delete_pod(self.ns, self.NAME)
        _apply({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.NAME, "namespace": self.ns, "labels": {E2E_LABEL: "load"}},
            "spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "automountServiceAccountToken": False, "enableServiceLinks": False,
                "securityContext": RESTRICTED_POD,
                # on a worker, like the app: the control plane is tainted
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gitops-lab/tier", "operator": "In", "values": ["worker"]}]}]}}},
                "containers": [{
                    "name": "load", "image": self.image, "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-u", "-c", LOADER],
                    "env": [{"name": "TARGET", "value": f"app.{self.ns}.svc.cluster.local"},
                            {"name": "PATHS", "value": self.paths}, {"name": "THREADS", "value": str(self.threads)}],
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                                  "limits": {"cpu": "200m", "memory": "64Mi"}},
                }],
            },
        })
        wait_ready(self.ns, self.NAME)
        return self

    def counts(self) -> dict:
        out = kubectl("-n", self.ns, "logs", self.NAME, "--tail=1").stdout.strip()
        return json.loads(out) if out else {"n": 0, "ok": 0, "designed": 0, "failed": 0, "examples": []}

    def wait_for(self, requests: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            now = self.counts()
            if now["n"] >= requests:
                return now
            assert time.monotonic() < deadline, f"the load loop in {self.ns} made {now['n']} requests in {timeout}s"
            time.sleep(2)

    def restarts(self) -> int:
        pod = json.loads(kubectl("-n", self.ns, "get", "pod", self.NAME, "-o", "json").stdout)
        return sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))

    def stop(self) -> None:
        delete_pod(self.ns, self.NAME)


def curl_pod(ns: str, name: str, node: str) -> None:
    """A pod with curl (versions.CURL_IMAGE) sleeping in `ns`, on `node`."""
    delete_pod(ns, name)
    _apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {E2E_LABEL: "probe"}},
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "nodeName": node,
            "automountServiceAccountToken": False, "securityContext": RESTRICTED_POD,
            "containers": [{"name": "curl", "image": versions.CURL_IMAGE, "command": ["sleep", "3600"],
                            "securityContext": RESTRICTED_CONTAINER,
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                          "limits": {"cpu": "100m", "memory": "32Mi"}}}],
        },
    })
    wait_ready(ns, name)


def curl(ns: str, name: str, url: str, seconds: int = 5):
    """(curl's exit code, its output): 0 and the body, 7 refused, 28 timed out (kubectl's own failures
    raise: a probe that could not run proves nothing)."""
    res = kubectl("-n", ns, "exec", name, "--", "curl", "-sS", "-m", str(seconds), url, check=False,
                  timeout=seconds + 60)
    assert res.returncode not in (1, 126, 127), f"could not run curl in {ns}/{name}: {res.stderr[-500:]}"
    return res.returncode, res.stdout.strip()


def apply(manifest: dict) -> None:
    _apply(manifest)


def delete(kind: str, name: str, ns: str) -> None:
    kubectl("-n", ns, "delete", kind, name, "--ignore-not-found", check=False, timeout=120)
