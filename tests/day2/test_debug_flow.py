"""debug_metrics / debug_cleanup / debug_shell with an in-process stand-in for kubectl:
`exec … curl` really fetches from the local app for allowed namespaces."""
from __future__ import annotations

import json
import urllib.request

import pytest

from tasks import versions
from tasks.core import config
from tasks.day2 import debug
from tasks.core.errors import LabError
from tasks.core.tools import Result


class Kubectl:
    """Pods, namespaces and a NetworkPolicy verdict: `allowed` namespaces reach the app."""

    def __init__(self, app_url, allowed=("monitoring", "dev")):
        self.app_url = app_url
        self.allowed = set(allowed)
        self.namespaces = {"monitoring", "dev", "default"}
        self.pods = {}  # (ns, name) -> phase
        self.calls = []
        self.dry_run = False

    def _args(self, args):
        args = [str(a) for a in args]
        assert args[:2] == ["--context", "kind-gitops-lab"]
        return args[2:]

    def probe(self, tool, *args, check=True, **kw):
        args = self._args(args)
        self.calls.append(("probe", *args))
        if args[0] == "get":
            kind, name = args[1], args[2]
            ns = args[args.index("-n") + 1] if "-n" in args else None
            if kind == "namespace":
                found = name in self.namespaces
                doc = {"kind": "Namespace", "metadata": {"name": name, "labels": {}}}
            elif kind == "service":
                found, doc = ns == "dev", {"kind": "Service", "metadata": {"name": "app"}}
            elif kind == "pod":
                phase = self.pods.get((ns, name))
                found = phase is not None
                doc = {"kind": "Pod", "metadata": {"name": name}, "status": {"phase": phase}}
            else:
                raise AssertionError(args)
            if not found and "--ignore-not-found" in args:
                return Result(0, "", "")  # real kubectl: nothing printed, exit 0
            if not found:
                res = Result(1, "", f'Error from server (NotFound): {kind} "{name}" not found')
                if check:
                    raise LabError("not found")
                return res
            return Result(0, json.dumps(doc), "")
        if args[0] == "-n" and args[2] == "wait":
            return Result(0, "condition met", "")
        if args[0] == "-n" and args[2] == "exec":
            ns, url = args[1], args[-1]
            assert args[3] == debug.PROBE_POD and args[4:9] == ["--", "curl", "-sS", "-m", "5"]
            if self.pods.get((ns, debug.PROBE_POD)) != "Running":
                return Result(1, "", f'Error from server (NotFound): pods "{debug.PROBE_POD}" not found')
            if ns not in self.allowed:
                return Result(28, "", "curl: (28) Connection timed out after 5001 milliseconds")
            assert url.startswith("http://app.dev.svc.cluster.local:8000/")
            path = url.split(":8000", 1)[1]
            return Result(0, urllib.request.urlopen(self.app_url + path, timeout=5).read().decode(), "")
        raise AssertionError(args)

    def mutate(self, tool, *args, stdin=None, **kw):
        args = self._args(args)
        self.calls.append(("mutate", *args))
        if args[:3] == ["apply", "-f", "-"]:
            doc = json.loads(stdin)
            if doc["kind"] == "Namespace":
                self.namespaces.add(doc["metadata"]["name"])
            else:
                assert doc["spec"]["containers"][0]["image"] == versions.CURL_IMAGE
                assert doc["spec"]["containers"][0]["command"][0] == "sleep"
                self.pods[(doc["metadata"]["namespace"], doc["metadata"]["name"])] = "Running"
        elif "delete" in args and "pod" in args:
            ns = args[args.index("-n") + 1] if "-n" in args else None
            self.pods.pop((ns, args[args.index("pod") + 1]), None)
        elif args[:2] == ["delete", "namespace"]:
            self.namespaces.discard(args[2])
            self.pods = {k: v for k, v in self.pods.items() if k[0] != args[2]}
        return Result(0, "", "")


@pytest.fixture
def kubectl(app_server, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stand_in = Kubectl(app_server)
    stand_in.cfg = CFG  # a lab context: tools + config
    return stand_in


CFG = config.load({}, env={})


def test_debug_metrics_summarises_and_proves_isolation(kubectl, capsys):
    debug.debug_metrics(kubectl)
    out = capsys.readouterr().out
    assert "monitoring → http://app.dev.svc.cluster.local:8000/healthz: ok" in out
    assert "requests by code:" in out and "ENDPOINT" in out and "/healthz" in out
    assert "lab-outsider → http://app.dev.svc.cluster.local:8000/healthz: refused (timed out)" in out
    assert ("monitoring", debug.PROBE_POD) in kubectl.pods and "lab-outsider" in kubectl.namespaces


def test_probe_pod_is_reused_when_running_and_recreated_when_not(kubectl, capsys):
    debug.debug_metrics(kubectl)
    applies = sum(1 for c in kubectl.calls if c[1:4] == ("apply", "-f", "-"))
    debug.debug_metrics(kubectl)
    assert sum(1 for c in kubectl.calls if c[1:4] == ("apply", "-f", "-")) == applies + 1  # namespace only
    assert "reusing pod monitoring/lab-debug-curl" in capsys.readouterr().out
    kubectl.pods[("monitoring", debug.PROBE_POD)] = "Failed"
    debug.debug_metrics(kubectl)
    assert "recreating pod monitoring/lab-debug-curl (phase Failed)" in capsys.readouterr().out


def test_fails_clearly_when_a_foreign_namespace_gets_in(kubectl):
    kubectl.allowed.add("lab-outsider")
    with pytest.raises(LabError, match="^NetworkPolicy lets namespace lab-outsider in — a pod in lab-outsider got 'ok'"):
        debug.debug_metrics(kubectl)


def test_fails_clearly_when_monitoring_is_refused(kubectl):
    kubectl.allowed.discard("monitoring")
    with pytest.raises(LabError, match="did not answer ok from namespace monitoring — timed out"):
        debug.debug_metrics(kubectl)


def test_missing_monitoring_namespace(kubectl):
    kubectl.namespaces.discard("monitoring")
    with pytest.raises(LabError, match="namespace monitoring does not exist"):
        debug.debug_metrics(kubectl)


def test_cleanup_removes_pods_and_outsider_namespace(kubectl):
    debug.debug_metrics(kubectl)
    debug.debug_cleanup(kubectl)
    assert not kubectl.pods and "lab-outsider" not in kubectl.namespaces


def _doit_action(namespace):
    """The doit action `doit debug_container` runs, for a shell in `namespace`."""
    from tasks import graph, operations
    return graph.action(operations.Operation("debug_container", "", debug.debug_shell(namespace)))


def test_debug_shell_runs_pinned_image_and_removes_its_pod(kubectl, monkeypatch):
    from tasks import graph
    ran = []
    kubectl.interactive = lambda tool, *args: ran.append([str(a) for a in args]) or 0
    monkeypatch.setattr(graph, "lab", lambda: kubectl)
    monkeypatch.setattr(graph, "cfg", lambda: CFG)
    assert _doit_action("default")() is None
    (args,) = ran
    assert f"--image={versions.DEBUG_IMAGE}" in args and "run" in args and args[args.index("-n") + 1] == "default"
    name = args[args.index("run") + 1]
    assert any(c[0] == "mutate" and "delete" in c and name in c for c in kubectl.calls)


def test_debug_shell_in_a_missing_namespace_is_a_task_failure(kubectl, monkeypatch):
    from doit.exceptions import TaskFailed

    from tasks import graph
    monkeypatch.setattr(graph, "lab", lambda: kubectl)
    monkeypatch.setattr(graph, "cfg", lambda: CFG)
    res = _doit_action("nowhere")()
    assert isinstance(res, TaskFailed) and "namespace nowhere does not exist" in str(res)


def test_shell_overrides_meet_restricted():
    doc = json.loads(debug.shell_overrides("x", restricted=True))
    c = doc["spec"]["containers"][0]
    assert doc["spec"]["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"] and c["name"] == "x"
    assert "securityContext" not in json.loads(debug.shell_overrides("x", restricted=False))["spec"]
