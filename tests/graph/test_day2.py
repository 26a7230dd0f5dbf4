"""Day-2 operations as real `doit`/`inv` subprocesses against the fakes: the HPA demo and
its port-forwards, debug_metrics and NetworkPolicies, Flux controls and status tables,
cleanup_app, teardown, and the cluster lifecycle aliases."""
from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import time
from pathlib import Path

from tasks.core import names
from tests.graph.conftest import Running, alive, has

CTX = "kind-gitops-lab"
CLUSTER = "gitops-lab"
GRAPH = ["preflight", "registry", "cluster", "metrics_server", "flux", "image", "app_push", "sync", "verify"]
NODES = {"gitops-lab-control-plane", "gitops-lab-worker", "gitops-lab-worker2"}
HPA_ARGS = ("HPA_PAUSE=1", "HPA_CONCURRENCY=4")


# --- helpers --------------------------------------------------------------------------------------


def all_gone(pids, within: float = 0.0) -> bool:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def port_forward_pids(lab) -> list[int]:
    """Live `kubectl port-forward` processes of this lab (its kubectl lives in lab.bin), from `ps`."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=False).stdout
    pids = []
    for line in out.splitlines():
        pid, stat, args = line.strip().split(None, 2)
        if "port-forward" in args and str(lab.bin) in args and not stat.startswith("Z"):
            pids.append(int(pid))
    return pids


def fake_forwarders(lab) -> list[int]:
    """Port-forwards (and their app children) the fake kubectl says are running."""
    return [int(pid) for pid, what in lab.world.state().get("background", {}).items()
            if what.get("kind", "").startswith("port-forward") and alive(int(pid))]


def records(lab) -> list[str]:
    d = lab.root / ".lab" / "portforwards"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def obj(lab, kind, ns, name):
    return next((o for o in lab.world.objects(CLUSTER, kind, ns) if o["metadata"]["name"] == name), None)


def table(text: str, header: str) -> dict[str, list[str]]:
    """Rows (split on 2+ spaces) of the table whose header starts with `header`, keyed by column 2 or 1."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(header))
    rows = {}
    for line in lines[start + 1:]:
        if not line.strip() or line.lstrip().startswith(("$", "✓", "✗", "▶")):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[1] if header.startswith("KIND") else cells[0]] = cells
    return rows


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file of the repository copy (the state directory excepted)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".lab" not in p.relative_to(root).parts
            and "__pycache__" not in p.parts}


def install_git_recorder(lab) -> Path:
    """A `git` on the lab's PATH that records every call (and fails, as if there were no repository)."""
    log = lab.root.parent / "git-calls.log"
    git = lab.bin / "git"
    git.write_text(f'#!/bin/sh\necho "git $*" >> "{log}"\necho "fatal: not a git repository" >&2\nexit 128\n')
    git.chmod(0o755)
    return log


def containers(lab) -> dict[str, str]:
    return {c["name"]: c["state"] for c in lab.world.state()["docker"]["containers"].values()}


def volumes(lab) -> set[str]:
    return set(lab.world.state()["docker"]["volumes"])


def failed_cleanly(proc) -> None:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# --- hpa ------------------------------------------------------------------------------------------

def test_hpa_demo_shows_the_table_scales_writes_the_timeline_then_reset(built):
    lab = built
    run = Running(lab, "hpa_demo", "HPA_DURATION=4", *HPA_ARGS)
    try:
        run.wait_for("[   0s] HPA app (dev)")
        lab.world.set_load("dev", 200)  # after the baseline: the demo must see the scale-up happen
        rc = run.finish()
    finally:
        run.kill()
    out = run.out
    assert rc == 0, out
    # the live table: an HPA line and the pods with their node, every HPA_PAUSE seconds
    heads = re.findall(r"^\[\s*(\d+)s\] HPA app \(dev\): cpu (\S+)/70%.*replicas (\d+) → desired (\d+)\s+\(min 1, max 2\)$",
                       out, re.MULTILINE)
    assert len(heads) >= 4, out
    assert heads[0][2] == "1" and heads[-1][2] == "2", heads
    assert re.search(r"^\s+POD\s+READY\s+STATUS\s+NODE$", out, re.MULTILINE)
    assert re.search(r"^\s+app-\S+\s+1/1\s+Running\s+gitops-lab-worker2?$", out, re.MULTILINE)
    # the summary: the load report and the scale report
    assert "load (built-in):" in out and re.search(r"Requests:\s+[1-9]\d*", out), out
    assert re.search(r"Status code distribution:\s*\n\s+\[200\]\s+[1-9]", out), out
    found = re.search(r"scaled from (\d+) to (\d+) replicas: first scale-up after \d+s", out)
    assert found, out
    assert (int(found.group(1)), int(found.group(2))) == (1, 2)  # min 1 → the maximum reached, 2
    # the SVG it says it wrote
    svg = Path(re.search(r"timeline: (\S+\.svg)$", out, re.MULTILINE).group(1))
    assert svg.is_file() and svg.parent == lab.root / ".lab"
    assert svg.read_text().lstrip().startswith(("<svg", "<?xml")) and "</svg>" in svg.read_text()
    # a normal end leaves no port-forward and no record
    assert all_gone(port_forward_pids(lab) + fake_forwarders(lab), within=5)
    assert records(lab) == []
    assert obj(lab, "Deployment", "dev", "app")["spec"]["replicas"] == 2

    # hpa_reset: back to minReplicas once the load has left the HPA's metrics
    lab.world.set_load("dev", 5)
    lab.world.clear_calls()
    proc = lab.doit("hpa_reset", "HPA_PAUSE=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"kubectl --context {CTX} -n dev scale deployment/app --replicas=1" in lab.mutating()
    assert "deployment/app in dev: 1/1 ready (the HPA minimum)" in proc.stdout
    dep = obj(lab, "Deployment", "dev", "app")
    assert dep["spec"]["replicas"] == 1 and dep["status"].get("readyReplicas") == 1


def hpa_sync(lab, times: int = 2) -> None:
    """A few reads: every fake kubectl call first runs the controllers (the HPA among them)."""
    for _ in range(times):
        lab.world.run("kubectl", "--context", CTX, "-n", "dev", "get", "hpa", "app", env=lab.env())


def test_hpa_reset_waits_for_the_load_to_leave_the_hpas_metrics(built):
    lab = built
    # Right after a demo the HPA still sees its load and has scaled to its maximum.
    lab.world.set_load("dev", 200)
    hpa_sync(lab)
    assert obj(lab, "Deployment", "dev", "app")["spec"]["replicas"] == 2
    run = Running(lab, "hpa_reset", "HPA_PAUSE=1")
    try:
        # Scaling down now would be undone (scale-up stabilization 0 s), then held 300 s: so it waits.
        run.wait_for("still sees load")
        hpa_sync(lab)
        assert obj(lab, "Deployment", "dev", "app")["spec"]["replicas"] == 2
        lab.world.set_load("dev", 5)  # the load has left the metrics
        rc = run.finish(timeout=120)
    finally:
        run.kill()
    assert rc == 0, run.out
    assert "deployment/app in dev: 1/1 ready (the HPA minimum)" in run.out
    # and the HPA keeps it there: its scale-down window delays scale-downs, it never raises replicas
    hpa_sync(lab, 3)
    assert obj(lab, "Deployment", "dev", "app")["spec"]["replicas"] == 1


def test_hpa_demo_interrupted_or_killed_leaves_no_port_forward(built):
    lab = built
    # Ctrl-C: the demo ends its port-forward itself and says so
    run = Running(lab, "hpa_demo", "HPA_DURATION=60", *HPA_ARGS)
    try:
        run.wait_for("[   1s] HPA app (dev)")
        during = port_forward_pids(lab)
        assert len(during) == 1 and f"{during[0]}.pid" in records(lab), (during, records(lab))
        assert during[0] in fake_forwarders(lab)
        rc = run.signal_group(signal.SIGINT)
    finally:
        run.kill()
    assert rc != 0 and "Traceback" not in run.out, run.out
    assert "hpa_demo interrupted — the port-forward and the load were stopped" in run.out
    assert "load (built-in):" in run.out  # what was measured is still reported
    assert "no scale-up within 60s" not in run.out  # it did not load for HPA_DURATION
    assert all_gone(during + fake_forwarders(lab), within=10), port_forward_pids(lab)
    assert port_forward_pids(lab) == [] and records(lab) == []

    # SIGKILL: nothing can clean up, so an orphan and its record stay behind...
    run = Running(lab, "hpa_demo", "HPA_DURATION=60", *HPA_ARGS)
    try:
        run.wait_for("[   1s] HPA app (dev)")
        rc = run.signal_group(signal.SIGKILL)
    finally:
        run.kill()
    assert rc == -signal.SIGKILL
    orphans = port_forward_pids(lab)
    assert len(orphans) == 1 and f"{orphans[0]}.pid" in records(lab), (orphans, records(lab))
    # ...until hpa_stop ends it (and it has really ended when hpa_stop says so)
    lab.world.clear_calls()
    proc = lab.doit("hpa_stop")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ended 1 leftover port-forward(s)" in proc.stdout
    assert all_gone(orphans), "hpa_stop returned before the port-forward ended"
    assert all_gone(fake_forwarders(lab), within=5)
    assert port_forward_pids(lab) == [] and records(lab) == []
    assert lab.mutating() == []
    again = lab.doit("hpa_stop")
    assert again.returncode == 0 and "no leftover port-forwards" in again.stdout


# --- debug ----------------------------------------------------------------------------------------

OPEN_POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-everyone
  namespace: dev
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {}
"""


def test_debug_metrics_isolation_reuse_open_policy_and_cleanup(built):
    lab = built
    proc = lab.doit("debug_metrics")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "monitoring → http://app.dev.svc.cluster.local:8000/healthz: ok" in proc.stdout
    assert re.search(r"monitoring → http://app\.dev\.svc\.cluster\.local:8000/metrics: \d+ lines, parsed", proc.stdout)
    assert re.search(r"^\s+ENDPOINT\s+REQUESTS\s+P50\s+P99$", proc.stdout, re.MULTILINE)
    assert "lab-outsider → http://app.dev.svc.cluster.local:8000/healthz: refused (timed out)" in proc.stdout
    probe = obj(lab, "Pod", "monitoring", "lab-debug-curl")
    outsider = obj(lab, "Pod", "lab-outsider", "lab-debug-curl")
    assert probe and outsider and obj(lab, "Namespace", None, "lab-outsider")

    # a second run reuses both probe pods: nothing is deleted or created again
    lab.world.clear_calls()
    proc = lab.doit("debug_metrics")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reusing pod monitoring/lab-debug-curl" in proc.stdout
    assert "reusing pod lab-outsider/lab-debug-curl" in proc.stdout
    assert obj(lab, "Pod", "monitoring", "lab-debug-curl")["metadata"]["uid"] == probe["metadata"]["uid"]
    assert obj(lab, "Pod", "lab-outsider", "lab-debug-curl")["metadata"]["uid"] == outsider["metadata"]["uid"]
    changes = [c for c in lab.mutating() if " exec lab-debug-curl -- curl " not in c]  # exec counts as mutating
    assert changes == [f"kubectl --context {CTX} apply -f -"], changes  # the outsider namespace only, no pod

    # a NetworkPolicy that lets every namespace into dev: one clear line, naming it
    applied = lab.world.run("kubectl", "--context", CTX, "apply", "-f", "-", input=OPEN_POLICY, env=lab.env())
    assert applied.returncode == 0, applied.stderr
    proc = lab.doit("debug_metrics")
    failed_cleanly(proc)
    problem = [line for line in proc.stderr.splitlines() if "NetworkPolicy" in line]
    assert len(problem) == 1, proc.stderr
    assert problem[0].startswith("✗ NetworkPolicy dev/allow-everyone lets every namespace in"), problem[0]
    assert "lab-outsider" in problem[0]
    assert "monitoring → http://app.dev.svc.cluster.local:8000/healthz: ok" in proc.stdout  # it got that far

    # debug_cleanup removes the probe pods and the outsider namespace
    lab.world.clear_calls()
    proc = lab.doit("debug_cleanup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert obj(lab, "Pod", "monitoring", "lab-debug-curl") is None
    assert obj(lab, "Namespace", None, "lab-outsider") is None
    assert obj(lab, "Pod", "lab-outsider", "lab-debug-curl") is None
    assert obj(lab, "Deployment", "dev", "app") is not None  # the app is untouched


# --- Flux controls, status tables, cleanup_app ----------------------------------------------------

def test_flux_controls_status_tables_and_cleanup_app(built):
    lab = built
    proc = lab.doit("check_flux")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 Flux objects Ready" in proc.stdout

    proc = lab.doit("flux_suspend")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for ks in names.FLUX_KUSTOMIZATIONS:
        assert obj(lab, "Kustomization", "flux-system", ks)["spec"].get("suspend") is True, ks
    proc = lab.doit("check_flux")
    failed_cleanly(proc)
    assert re.search(r"✗ Kustomization/flux-system/(infrastructure|apps-\w+) is not Ready — suspended", proc.stderr)
    rows = table(lab.doit("flux_status").stdout, "KIND")
    assert rows["flux-system/apps-dev"][2] == "Suspended"

    proc = lab.doit("flux_resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = lab.doit("check_flux")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = lab.doit("wait_for_flux")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 Flux objects Ready" in proc.stdout

    proc = lab.doit("flux_status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = table(proc.stdout, "KIND")
    for ks in names.FLUX_KUSTOMIZATIONS:
        kind, _, ready, rev, *_ = rows[f"flux-system/{ks}"]
        assert (kind, ready) == ("Kustomization", "True") and re.fullmatch(r"latest@sha256:[0-9a-f]{12}", rev), rows
    assert rows["flux-system/lab-gitops"][:3] == ["OCIRepository", "flux-system/lab-gitops", "True"]
    assert rows["monitoring/kube-prometheus-stack"][2] == "True"

    proc = lab.doit("cluster_status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nodes = table(proc.stdout, "NODE")
    assert set(nodes) == NODES and all(r[2] == "Ready" for r in nodes.values())
    assert nodes["gitops-lab-control-plane"][1] == "control-plane" and nodes["gitops-lab-worker"][1] == "worker"
    envs = table(proc.stdout, "ENV")
    assert set(envs) == set(names.ENVIRONMENTS)
    image = rf"localhost:{lab.port}/lab-app:[0-9a-f]{{12}}@sha256:[0-9a-f]{{64}}"  # by the pushed digest
    assert all(re.fullmatch(image, r[1]) for r in envs.values()), envs
    assert len({r[1] for r in envs.values()}) == 1  # one image everywhere
    assert {env: r[2] for env, r in envs.items()} == {"dev": "1/1", "staging": "2/2", "production": "3/3"}

    # cleanup_app: suspend apps-staging and remove the app from staging only
    lab.world.clear_calls()
    proc = lab.doit("cleanup_app", "APP_ENV=staging")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = lab.mutating()
    assert calls[0] == f"flux suspend kustomization apps-staging -n flux-system --context {CTX}", calls
    assert not any(" dev " in c or " production " in c or "apps-dev" in c or "apps-production" in c for c in calls)
    assert "doit flux_resume FLUX_KUSTOMIZATION=apps-staging" in proc.stdout
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert obj(lab, kind, "staging", "app") is None, kind
        assert obj(lab, kind, "dev", "app") and obj(lab, kind, "production", "app"), kind
    assert obj(lab, "Kustomization", "flux-system", "apps-staging")["spec"]["suspend"] is True
    envs = table(lab.doit("cluster_status").stdout, "ENV")
    assert envs["staging"][1:3] == ["-", "absent"] and envs["dev"][2] == "1/1"

    proc = lab.doit("flux_resume", "FLUX_KUSTOMIZATION=apps-staging")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.doit("wait_for_flux").returncode == 0
    assert obj(lab, "Deployment", "staging", "app") and obj(lab, "HorizontalPodAutoscaler", "staging", "app")
    envs = table(lab.doit("cluster_status").stdout, "ENV")
    assert envs["staging"][2] == "2/2", envs
    assert lab.doit("check_flux").returncode == 0


# --- teardown -------------------------------------------------------------------------------------

def orphan_port_forward(lab) -> int:
    run = Running(lab, "hpa_demo", "HPA_DURATION=60", *HPA_ARGS)
    try:
        run.wait_for("[   0s] HPA app (dev)")
        run.signal_group(signal.SIGKILL)
    finally:
        run.kill()
    (pid,) = port_forward_pids(lab)
    return pid


def test_teardown_keeps_the_volume_purge_removes_it_and_setup_rebuilds(built):
    lab = built
    git_log = install_git_recorder(lab)
    orphan = orphan_port_forward(lab)
    assert (lab.root / ".lab" / "cluster.json").exists() and (lab.root / ".lab" / "doit.json").exists()
    before = snapshot(lab.root)
    lab.world.clear_calls()

    proc = lab.inv("teardown")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "port-forwards ended: 1" in proc.stdout
    assert all_gone([orphan], within=5) and port_forward_pids(lab) == [] and records(lab) == []
    calls = lab.mutating()
    assert f"kind delete cluster --name {CLUSTER}" in calls and "docker rm -f kind-registry" in calls
    assert not has(calls, "docker volume rm")
    assert containers(lab) == {}  # nodes and registry gone
    assert CLUSTER not in lab.world.state()["clusters"]
    assert "kind-registry-data" in volumes(lab)
    assert "registry images kept in volume kind-registry-data" in proc.stdout
    assert not (lab.root / ".lab" / "cluster.json").exists() and not (lab.root / ".lab" / "doit.json").exists()
    assert not git_log.exists(), git_log.read_text()
    assert snapshot(lab.root) == before

    lab.world.clear_calls()
    again = lab.inv("teardown")
    assert again.returncode == 0, again.stdout + again.stderr
    assert lab.mutating() == []
    assert "nothing to delete" in again.stdout and "nothing to remove" in again.stdout

    lab.world.clear_calls()
    purge = lab.inv("teardown", "--purge")
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert lab.mutating() == ["docker volume rm kind-registry-data"]
    assert "kind-registry-data" not in volumes(lab)
    assert "kept in volume" not in purge.stdout
    assert not git_log.exists() and snapshot(lab.root) == before

    # everything comes back, cold
    lab.world.clear_calls()
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.ran(proc) == GRAPH
    calls = lab.mutating()
    for step in ("docker run", "kind create cluster", "flux install", "docker push", "flux push artifact"):
        assert has(calls, step), step
    assert set(containers(lab)) == NODES | {"kind-registry"}
    assert lab.world.registry_tags("lab-app", port=lab.port)


def test_teardown_when_nothing_ever_existed_changes_nothing(lab):
    git_log = install_git_recorder(lab)
    before = snapshot(lab.root)
    proc = lab.inv("teardown")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.calls() and lab.mutating() == []  # it looked, and did nothing
    assert "kept in volume" not in proc.stdout  # there is no volume to keep
    proc = lab.inv("teardown", "--purge")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.mutating() == []
    assert not git_log.exists() and snapshot(lab.root) == before


# --- cluster lifecycle ----------------------------------------------------------------------------

def test_delete_cluster_then_setup_and_stop_then_start(built):
    lab = built
    proc = lab.doit("delete_cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.mutating() == [f"kind delete cluster --name {CLUSTER}"]
    assert set(containers(lab)) == {"kind-registry"} and not (lab.root / ".lab" / "cluster.json").exists()

    lab.world.clear_calls()
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [s for s in lab.ran(proc) if s != "preflight"] == ["cluster", "metrics_server", "flux", "sync", "verify"]
    assert has(lab.mutating(), "kind create cluster") and not has(lab.mutating(), "docker run", "docker build")
    assert set(containers(lab)) == NODES | {"kind-registry"}

    lab.world.clear_calls()
    proc = lab.doit("stop_cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {n: s for n, s in containers(lab).items() if n in NODES} == dict.fromkeys(NODES, "exited")
    assert containers(lab)["kind-registry"] == "running"
    assert lab.world.run("kubectl", "--context", CTX, "get", "nodes", env=lab.env()).returncode != 0
    lab.world.clear_calls()
    again = lab.doit("stop_cluster")  # already stopped: nothing to do
    assert again.returncode == 0 and lab.mutating() == [], lab.mutating()

    proc = lab.doit("start_cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert has(lab.mutating(), "docker start gitops-lab-")
    assert all(containers(lab)[n] == "running" for n in NODES)
    status = lab.doit("cluster_status")
    assert status.returncode == 0, status.stdout + status.stderr
    nodes = table(status.stdout, "NODE")
    assert set(nodes) == NODES and all(r[2] == "Ready" for r in nodes.values())
    assert lab.doit("check_flux").returncode == 0


def test_doit_teardown_all_leaves_no_task_database_behind(built):
    db = built.root / ".lab" / "doit.json"
    assert db.exists()
    proc = built.doit("teardown_all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not db.exists()  # doit writes its database at the end of a run: the teardown must outlast that
    assert not (built.root / ".lab" / "cluster.json").exists()
