"""`doit setup` against the fakes: graph order, incremental re-runs, reality checks."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.graph.conftest import Running, has

GRAPH = ["preflight", "registry", "cluster", "metrics_server", "flux", "image", "app_push", "sync", "verify"]


def first_index(calls, prefix):
    return next(i for i, c in enumerate(calls) if c.startswith(prefix))


def test_cold_setup_runs_the_graph_in_order(lab):
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.ran(proc) == GRAPH
    calls = lab.mutating()
    order = ["docker run", "kind create cluster", "kubectl --context kind-gitops-lab apply -k",
             "flux install", "docker build", "docker push", "flux push artifact", "kubectl --context kind-gitops-lab -n flux-system annotate"]
    positions = [first_index(calls, p) for p in order]
    assert positions == sorted(positions), calls
    assert "Next:" in proc.stdout and "doit hpa_demo" in proc.stdout


def test_immediate_rerun_changes_nothing(built):
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert built.mutating() == []
    assert set(built.ran(proc)) == {"preflight", "verify"}  # read-only checks always run
    assert "registry: up to date" in proc.stdout


def test_the_first_reads_side_by_side_each_echo_one_whole_line(built):
    """The run's first cluster read and its flux-system ConfigMaps read go side by side: when the big read
    ends last (held here), the other's line must not land inside the big read's."""
    from tasks.core import kube
    run = Running(built, "setup", FAKE_PAUSE_AT="kubectl get " + ",".join(kube.SETUP_READS))  # (whole words)
    try:
        paused = Path(built.world.state_dir) / "paused"
        deadline = time.monotonic() + 60
        while not paused.exists():
            assert run.proc.poll() is None and time.monotonic() < deadline, run.out
            time.sleep(0.05)
        while not any("get" in c["argv"] and "configmaps" in c["argv"] for c in built.world.calls()):
            assert time.monotonic() < deadline, "the ConfigMaps read did not run beside the held read"
            time.sleep(0.05)
        time.sleep(0.3)  # its line is printed when it ends
        paused.unlink()
        assert run.finish(timeout=120) == 0, run.out
    finally:
        run.kill()
    echoed = [line for line in run.out.splitlines() if "$ " in line]
    assert echoed and all(line.startswith("  $ ") and line.count("$ ") == 1 for line in echoed), echoed
    assert sum("get configmaps -n flux-system" in line for line in echoed) == 1, echoed


def test_app_edit_redoes_only_build_push_sync_verify(built):
    server = built.root / "app" / "server.py"
    server.write_text(server.read_text() + "\n# an edit\n")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [s for s in built.ran(proc) if s != "preflight"] == ["image", "app_push", "sync", "verify"]
    calls = built.mutating()
    assert has(calls, "docker build") and has(calls, "docker push")
    assert not has(calls, "kind", "docker run", "flux install", "kubectl --context kind-gitops-lab apply -k")


def test_gitops_edit_redoes_only_sync_and_verify(built):
    overlay = built.root / "flux-cd" / "apps" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + "\n# an edit\n")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [s for s in built.ran(proc) if s != "preflight"] == ["sync", "verify"]
    calls = built.mutating()
    assert has(calls, "flux push artifact")
    assert not has(calls, "docker build", "docker push", "kind", "flux install")


def test_cluster_deleted_by_hand_is_rebuilt_with_everything_downstream(built):
    built.world.delete_cluster_by_hand("gitops-lab")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = built.mutating()
    assert has(calls, "kind create cluster")
    assert has(calls, "kubectl --context kind-gitops-lab apply -k")  # metrics-server
    assert has(calls, "flux install") and has(calls, "kubectl --context kind-gitops-lab -n flux-system annotate")
    assert not has(calls, "docker run", "docker build", "docker push")  # registry and image untouched


def test_registry_stopped_by_hand_is_started_and_nothing_else_redone(built):
    built.world.stop_container_by_hand("kind-registry")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert built.mutating() == ["docker start kind-registry"]


def test_port_held_by_a_foreign_process(lab):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", lab.port))
        squatter.listen()
        proc = lab.doit("setup")
    assert proc.returncode != 0
    assert f"port {lab.port} on 127.0.0.1 is already in use" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert lab.mutating() == []


@pytest.mark.parametrize("tool", ["docker", "kind", "kubectl", "flux"])
def test_each_missing_binary_is_named_before_anything_changes(lab, tool):
    lab.set_tools(*[t for t in ("docker", "kind", "kubectl", "flux") if t != tool])
    proc = lab.doit("setup")
    assert proc.returncode != 0
    assert f"{tool} not found" in proc.stderr and "install it:" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert lab.mutating() == []


def test_docker_daemon_down(lab):
    lab.world.docker_down(True)
    proc = lab.doit("setup")
    assert proc.returncode != 0
    assert "the Docker daemon is not reachable" in proc.stderr
    assert lab.mutating() == []


STEP_FAILURES = ["docker run", "kind create cluster", "docker cp", "kubectl --context kind-gitops-lab apply -k",
                 "flux install", "docker build", "docker push", "flux push artifact",
                 "kubectl --context kind-gitops-lab annotate"]  # the last: sync asking Flux to reconcile


@pytest.mark.parametrize("prefix", STEP_FAILURES)
def test_a_step_failing_midway_then_the_next_run_finishes(lab, prefix):
    fake_prefix = prefix.replace("kubectl --context kind-gitops-lab ", "kubectl ")
    lab.world.set_fail(fake_prefix)
    proc = lab.doit("setup")
    assert proc.returncode != 0
    assert "✗" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert "injected failure" in proc.stderr
    lab.world.set_fail(None)
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lab.world.clear_calls()
    proc = lab.doit("setup")
    assert proc.returncode == 0 and lab.mutating() == []


def test_dry_run_runs_nothing_and_records_nothing(lab):
    proc = lab.doit("setup", DRY_RUN="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab.mutating() == []
    assert "would run: $ docker run" in proc.stdout and "would run: $ kind create cluster" in proc.stdout
    assert "mutating command(s) would run, none ran" in proc.stdout
    proc = lab.doit("setup")  # the dry run must not have marked anything done
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert has(lab.mutating(), "kind create cluster")


def test_dry_run_after_setup_plans_nothing(built):
    proc = built.doit("setup", DRY_RUN="1")
    assert proc.returncode == 0
    assert "would run: $" not in proc.stdout and built.mutating() == []
    assert "dry run: 0 mutating command(s) would run" in proc.stdout


@pytest.mark.parametrize("var", ["REGISTRY_PORT=70000", "CLUSTER_NAME=Bad_Name", "GITOPS_SOURCE=svn",
                                 "HPA_DURATION=soon"])
def test_invalid_configuration_is_refused_before_any_command(lab, var):
    proc = lab.doit("setup", var)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and var.split("=")[0] in proc.stderr
    assert lab.calls() == []


def test_kind_config_change_stops_and_points_at_recreate(built):
    cfg = built.root / "kind-three-node.yaml"
    cfg.write_text(cfg.read_text() + "\n# changed\n")
    proc = built.doit("setup")
    assert proc.returncode != 0
    assert "doit recreate_cluster" in proc.stderr
    assert not has(built.mutating(), "kind delete", "kind create")


def test_config_task_shows_values_and_sources(lab):
    proc = lab.doit("config", "CLUSTER_NAME=other", CREATE_WAIT="300s")
    assert proc.returncode == 0
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "other" in lines["CLUSTER_NAME"] and "command line" in lines["CLUSTER_NAME"]
    assert "300s" in lines["CREATE_WAIT"] and "environment" in lines["CREATE_WAIT"]
    assert "kind-other" in lines["KUBE_CONTEXT"] and "default" in lines["KUBE_CONTEXT"]
    assert lab.calls() == []


def test_invoke_offers_the_same_operations(lab):
    proc = lab.inv("--list")
    assert proc.returncode == 0, proc.stderr
    for name in ("setup", "teardown", "config", "validate", "flux-status", "hpa-demo", "debug-metrics"):
        assert name in proc.stdout
