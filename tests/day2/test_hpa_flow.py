"""hpa_demo/hpa_load/hpa_watch/hpa_reset driven with an in-process stand-in cluster
(the port-forward yields a real local app; kubectl reads come from a script)."""
from __future__ import annotations

import copy
import signal
import threading
from contextlib import contextmanager

import pytest

from tasks.core import config, kube, portforward
from tasks.day2 import hpa
from tasks.core.errors import LabError
from tasks.core.tools import Result


class World:
    """Answers kube.get_json; replicas grow with each HPA read while load runs."""

    def __init__(self, metrics_api=True, hpa_present=True):
        self.metrics_api = metrics_api
        self.hpa_present = hpa_present
        self.reads = 0
        self.replicas = 1
        self.scaled_to = None
        self.cpu = 150  # what the HPA's metrics show: load running

    def hpa(self):
        self.reads += 1
        if self.reads > 2:
            self.replicas = min(3, self.replicas + 1)
        doc = copy.deepcopy({
            "kind": "HorizontalPodAutoscaler",
            "spec": {"minReplicas": 1, "maxReplicas": 3, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 70}}}]},
            "status": {"currentReplicas": self.replicas, "desiredReplicas": min(3, self.replicas + 1),
                       "currentMetrics": [{"type": "Resource",
                                           "resource": {"name": "cpu", "current": {"averageUtilization": self.cpu}}}]}})
        return doc

    def get_json(self, lab, kind, *args, missing_ok=False, quiet=False):
        if kind == "hpa":
            return self.hpa() if self.hpa_present else None
        if kind == "pods":
            return {"kind": "PodList", "items": [
                {"metadata": {"name": f"app-{i}"}, "spec": {"nodeName": f"worker{i % 2 + 1}", "containers": [{}]},
                 "status": {"phase": "Running", "containerStatuses": [{"ready": True}]}}
                for i in range(self.replicas)]}
        if kind == "apiservice":
            return {"status": {"conditions": [{"type": "Available",
                                               "status": "True" if self.metrics_api else "False"}]}}
        if kind == "deployment":
            n = self.scaled_to or self.replicas
            return {"kind": "Deployment", "status": {"replicas": n, "readyReplicas": n}}
        raise AssertionError(f"unexpected get {kind} {args}")


class Tools:
    dry_run = False

    def __init__(self, world):
        self.world = world
        self.mutations = []

    def mutate(self, tool, *args, **kw):
        self.mutations.append((tool, *args))
        for a in args:
            if str(a).startswith("--replicas="):
                self.world.scaled_to = self.world.replicas = int(str(a).split("=")[1])
        return Result(0, "", "")


@pytest.fixture
def demo(monkeypatch, tmp_path, app_server):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NO_COLOR", "1")
    world = World()
    monkeypatch.setattr(kube, "get_json", world.get_json)
    forwards = []

    @contextmanager
    def forward(lab, namespace, **kw):
        forwards.append(namespace)
        yield app_server

    monkeypatch.setattr(portforward, "forward", forward)
    cfg = config.load({"HPA_DURATION": "3", "HPA_CONCURRENCY": "8", "HPA_PAUSE": "1"}, env={})
    lab = Tools(world)
    lab.cfg = cfg  # a lab context: tools + config
    return world, lab, cfg, forwards, tmp_path


@pytest.mark.parametrize("use_hey", [False, True])
def test_demo_shows_table_summary_and_timeline(demo, capsys, monkeypatch, use_hey):
    world, t, cfg, forwards, state_dir = demo
    if use_hey and not __import__("shutil").which("hey"):
        pytest.skip("hey is not installed")
    real = hpa.make_load
    monkeypatch.setattr(hpa, "make_load", lambda *a: real(*a, use_hey=use_hey))
    result = hpa.hpa_demo(t)
    out = capsys.readouterr().out
    assert forwards == ["dev"]
    assert "HPA app (dev): cpu 150%/70%" in out
    assert "worker1" in out and "POD" in out
    assert "scaled from 1 to 3 replicas" in out
    assert "Requests/sec" in out and "Status code distribution" in out
    if not use_hey:
        assert out.count(" req/s  p99") >= 2  # the built-in generator's progress lines
    assert result["max_replicas"] == 3
    svg = (state_dir / "hpa-timeline.svg").read_text()
    assert svg.count("<path") >= 4
    assert not t.mutations


def test_demo_without_metrics_api_says_how_to_get_it(demo, capsys):
    world, t, cfg, *_ = demo
    world.metrics_api = False
    hpa.hpa_demo(t)
    out = capsys.readouterr().out
    assert out.count("metrics-server is needed: run `doit metrics_server`") == 2  # at the start and the end


def test_demo_without_hpa_fails_in_one_line(demo):
    world, t, cfg, *_ = demo
    world.hpa_present = False
    with pytest.raises(LabError, match="no HorizontalPodAutoscaler app in dev .* run `doit setup`"):
        hpa.hpa_demo(t)


def test_ctrl_c_becomes_one_line_and_stops_the_load(demo, capsys):
    world, t, cfg, *_ = demo
    timer = threading.Timer(1.2, lambda: signal.raise_signal(signal.SIGINT))
    timer.start()
    with pytest.raises(LabError, match="hpa_demo interrupted"):
        hpa.hpa_demo(t)
    timer.cancel()
    assert not [th for th in threading.enumerate() if th.name.startswith("loadgen-")]
    assert "Status code distribution" in capsys.readouterr().out


def test_sigterm_is_handled_like_ctrl_c(demo):
    world, t, cfg, *_ = demo
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(1.2, lambda: signal.raise_signal(signal.SIGTERM))
    timer.start()
    with pytest.raises(LabError, match="interrupted"):
        hpa.hpa_demo(t)
    assert signal.getsignal(signal.SIGTERM) is before


def test_hpa_load_and_watch(demo, capsys):
    world, t, cfg, forwards, _ = demo
    hpa.hpa_load(t)
    out = capsys.readouterr().out
    assert "Requests/sec" in out and forwards == ["dev"]
    hpa.hpa_watch(t)
    out = capsys.readouterr().out
    assert out.count("HPA app (dev)") == 3  # t=0, 1, 2 s for HPA_DURATION=3, HPA_PAUSE=1


def test_hpa_reset_scales_to_min_and_waits(demo, capsys):
    world, t, cfg, *_ = demo
    world.replicas = 3
    world.cpu = 5  # the load has stopped and left the HPA's metrics (reset waits for that)
    hpa.hpa_reset(t, timeout=10)
    assert any("--replicas=1" in m for m in t.mutations)
    assert "1/1 ready (the HPA minimum)" in capsys.readouterr().out


def test_duration_zero_is_refused(demo):
    world, t, _, *_ = demo
    t.cfg = config.load({"HPA_DURATION": "0"}, env={})
    with pytest.raises(LabError, match="HPA_DURATION=0 is too short"):
        hpa.hpa_demo(t)
