"""`doit grafana` (tasks.day2.grafana.grafana) against the fake cluster: the URL is
printed, the password only with SHOW_PASSWORD=1, and no port-forward survives
the function, whether it returns, is interrupted, or gets Ctrl-C (SIGINT)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from obs_names import HERE, REPO

sys.path.insert(0, str(REPO / "tests"))
from fakes import FakeWorld

PASSWORD = "pw-7f3a-not-for-the-terminal"
STACK = """\
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kube-prometheus-stack-grafana, namespace: monitoring}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: grafana}}
  template:
    metadata: {labels: {app.kubernetes.io/name: grafana}}
    spec:
      containers: [{name: grafana, image: "docker.io/grafana/grafana:12.3.0", ports: [{containerPort: 3000, name: grafana}]}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-prometheus-stack-grafana, namespace: monitoring}
spec:
  selector: {app.kubernetes.io/name: grafana}
  ports: [{name: http-web, port: 80, targetPort: 3000}]
---
apiVersion: v1
kind: Secret
metadata: {name: kube-prometheus-stack-grafana, namespace: monitoring}
stringData: {admin-user: admin, admin-password: "PASSWORD"}
""".replace("PASSWORD", PASSWORD)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def world(tmp_path):
    w = FakeWorld(tmp_path)
    try:
        r = w.run("kind", "create", "cluster", "--name", "gitops-lab", "--image", "kindest/node:v1.36.1",
                  "--config", str(REPO / "kind-three-node.yaml"), timeout=120)
        assert r.returncode == 0, r.stderr
        r = w.run("kubectl", "--context", "kind-gitops-lab", "apply", "-f", "-", input=STACK)
        assert r.returncode == 0, r.stderr
        yield w
    finally:
        w.kill_background()


def _env(world, tmp_path, **extra):
    env = world.env(os.environ, LAB_STATE_DIR=str(tmp_path / "lab-state"), NO_COLOR="1",
                    KUBECTL=os.path.join(world.bin_dir, "kubectl"), **extra)
    env.pop("SHOW_PASSWORD", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _forwards(world) -> list[int]:
    """Port-forward processes the fake kubectl started that are still running."""
    return [int(pid) for pid, what in world.state().get("background", {}).items()
            if "port-forward" in str(what.get("kind", "")) and _alive(int(pid))]


def _assert_nothing_left(world, tmp_path):
    deadline = time.monotonic() + 5
    while _forwards(world) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _forwards(world) == []
    records = tmp_path / "lab-state" / "portforwards"
    assert not list(records.glob("*.pid")) if records.exists() else True


def _drive(world, tmp_path, mode, **extra):
    return subprocess.run([sys.executable, str(HERE / "grafana_driver.py"), mode], env=_env(world, tmp_path, **extra),
                          capture_output=True, text=True, timeout=90, check=False)


def test_prints_url_and_hides_the_password_by_default(world, tmp_path):
    r = _drive(world, tmp_path, "return")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HELD http://127.0.0.1:" in r.stdout and " 200" in r.stdout
    assert "Grafana: http://127.0.0.1:" in r.stdout
    assert "/d/gitops-lab-app" in r.stdout
    assert "user: admin" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    assert "Secret monitoring/kube-prometheus-stack-grafana, key admin-password" in r.stdout
    assert "SHOW_PASSWORD=1" in r.stdout
    assert "RETURNED ['dashboard', 'url']" in r.stdout
    # The port-forward went to the Service's port 80 on a free local port chosen by kubectl.
    forwards = [c["argv"] for c in world.calls("kubectl") if "port-forward" in c["argv"]]
    assert forwards and forwards[-1][-3:] == [":80", "--address", "127.0.0.1"]
    assert "svc/kube-prometheus-stack-grafana" in forwards[-1]
    _assert_nothing_left(world, tmp_path)


def test_prints_the_password_when_asked(world, tmp_path):
    r = _drive(world, tmp_path, "return", SHOW_PASSWORD="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"password: {PASSWORD}" in r.stdout
    assert PASSWORD not in r.stdout.split("RETURNED")[1]  # never in the task's result
    _assert_nothing_left(world, tmp_path)


def test_interrupted_while_waiting_ends_the_port_forward(world, tmp_path):
    r = _drive(world, tmp_path, "interrupt")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HELD http://127.0.0.1:" in r.stdout and "port-forward to Grafana ended" in r.stdout
    _assert_nothing_left(world, tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly(world, tmp_path, sig):
    proc = subprocess.Popen([sys.executable, str(HERE / "grafana_driver.py"), "wait"],
                            env=_env(world, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        out = "".join(lines)
        assert "Grafana: http://127.0.0.1:" in out, out
        url = out.split("Grafana: ")[1].split()[0]
        with urllib.request.urlopen(url + "/api/health", timeout=5) as res:
            assert res.status == 200
        assert _forwards(world)  # the port-forward (and the fake's app child behind it)
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + rest
    assert "port-forward to Grafana ended" in rest
    assert PASSWORD not in out + rest
    _assert_nothing_left(world, tmp_path)


def test_missing_stack_is_a_clear_error(tmp_path):
    w = FakeWorld(tmp_path)
    try:
        assert w.run("kind", "create", "cluster", "--name", "gitops-lab", "--image", "kindest/node:v1.36.1",
                     "--config", str(REPO / "kind-three-node.yaml"), timeout=120).returncode == 0
        code = (f"import os, sys; sys.path.insert(0, {str(REPO)!r})\n"
                "from tasks.core import config, tools\n"
                "from tasks.day2 import grafana\n"
                "from tasks.core.errors import LabError\n"
                "cfg = config.load({}, env=os.environ)\n"
                "try:\n    grafana.grafana(tools.Tools(cfg), hold=lambda b: None)\n"
                "except LabError as e:\n    print('LABERROR', e)\n")
        r = subprocess.run([sys.executable, "-c", code], env=_env(w, tmp_path), capture_output=True, text=True,
                           timeout=60, check=False)
        assert "LABERROR no Service monitoring/kube-prometheus-stack-grafana" in r.stdout, r.stdout + r.stderr
        assert "doit setup" in r.stdout
        assert not [c for c in w.calls("kubectl") if "port-forward" in c["argv"]]
    finally:
        w.kill_background()
