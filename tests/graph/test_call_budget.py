"""How many external commands `doit setup` runs (issue 15): a count, not a time. On a real lab each
kubectl, flux or docker call costs 50-300 ms, and a no-op is the most frequent run of all."""
from __future__ import annotations

from tasks.core import names
from tests.graph.conftest import has

NOOP_BUDGET = 10  # from 36: everything verify and the reality checks establish, asked once per run
COLD_BUDGET = 52  # from 75


def test_setup_runs_within_its_call_budget_and_a_noop_still_checks_everything(lab):
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cold = lab.calls()
    lab.world.clear_calls()
    proc = lab.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    noop = lab.calls()
    assert lab.mutating() == []
    assert len(noop) <= NOOP_BUDGET, f"{len(noop)} calls in a no-op `doit setup`:\n" + "\n".join(noop)
    assert len(cold) <= COLD_BUDGET, f"{len(cold)} calls in a cold `doit setup`:\n" + "\n".join(cold)
    # Fewer calls, same questions: the Docker daemon, the containers, the cluster's objects, and every
    # environment's routes through a port-forward (verify printed its table).
    assert has(noop, "docker version") and has(noop, "docker ps")
    assert has(noop, "kubectl --context kind-gitops-lab get ")
    for env in names.ENVIRONMENTS:
        assert has(noop, f"kubectl --context kind-gitops-lab -n {env} port-forward svc/app"), noop
    assert "/healthz /readyz /metrics" in proc.stdout and proc.stdout.count("200 200 200") == 3
