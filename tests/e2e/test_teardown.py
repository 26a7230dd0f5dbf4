"""The end of the session: another provider on the same cluster, a cluster deleted by hand, and teardown.

Runs last. Every check compares what Docker holds (containers with their state and image, volumes) before
and after: what the lab must leave alone is every container and volume that is not its own."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import (CONTEXT, E2E_ENV, doit, inv, inventory, items, ours, port_forward_processes, ran, run,
                                setting)
from tests.e2e.test_cluster import assert_app_pods_on_workers, assert_flux_ready

pytestmark = pytest.mark.e2e

EXISTING = {"CLUSTER_PROVIDER": "existing", "KUBE_CONTEXT": CONTEXT, "REGISTRY": f"localhost:{E2E_ENV['REGISTRY_PORT']}"}
if setting("MIRRORS", "off") != "off":
    # The lab runs no mirror for an existing cluster, so the chart's source would fall back to ghcr.io,
    # which this sandbox cannot reach: name the mirror the kind lab left, as a user names their proxy
    # cache. The bootstrap is then the kind lab's own: setup must change nothing at all.
    EXISTING["CHART_MIRRORS"] = f"ghcr.io=http://{E2E_ENV['REGISTRY_NAME']}-mirror-ghcr-io:5000"


def clusters() -> list[str]:
    return run("kind", "get", "clusters").stdout.split()


def changes(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, list[str]]:
    """What went (or changed state) and what came, containers and volumes together."""
    was, now = before["containers"] | before["volumes"], after["containers"] | after["volumes"]
    return {"gone or changed": sorted(was - now), "new": sorted(now - was)}


def others(inv_: dict[str, set[str]]) -> set[str]:
    """Everything Docker holds that is not this lab's (containers as `name state image`)."""
    return {x for v in inv_.values() for x in v if not ours(x.split()[0])}


def test_existing_provider_on_the_same_cluster_creates_and_deletes_nothing(lab):
    before = inventory()
    res = doit("setup", env=EXISTING)
    assert "verify" in ran(res.stdout)
    assert changes(before, inventory()) == {"gone or changed": [], "new": []}, "CLUSTER_PROVIDER=existing setup"

    down = inv("teardown", env=EXISTING, check=False, timeout=900)
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-2000:]
    # Nothing of the user's (here: the suite's own nodes, registry, mirrors and their volumes stand in
    # for it) is gone, stopped or new; a container a kit build removes by itself is not counted.
    assert changes(before, inventory()) == {"gone or changed": [], "new": []}, "CLUSTER_PROVIDER=existing teardown"
    assert E2E_ENV["CLUSTER_NAME"] in clusters(), down.stdout
    assert items("namespaces", "--field-selector", "metadata.name=flux-system"), "teardown removed Flux from the cluster"
    # back to the lab's own provider: its record was the existing one's, so it re-checks
    doit("setup")


def test_cluster_deleted_by_hand_is_recreated(lab):
    run("kind", "delete", "cluster", "--name", E2E_ENV["CLUSTER_NAME"], timeout=600)
    res = doit("setup", timeout=2700)
    steps = ran(res.stdout)
    assert "cluster" in steps and "flux" in steps and "sync" in steps, steps
    assert len(items("nodes")) == 3
    assert_flux_ready()
    assert_app_pods_on_workers()


def test_teardown_leaves_nothing_but_the_data_volumes_and_purge_removes_those(lab):
    before = inventory()
    # The lab's named data volumes (its nodes' anonymous ones, `node:<id>`, go with the nodes).
    mine_before = {v for v in before["volumes"] if ours(v) and ":" not in v}
    assert f"{E2E_ENV['REGISTRY_NAME']}-data" in mine_before, sorted(before["volumes"])
    if setting("MIRRORS", "off") != "off":
        mirrors = {c.split()[0] for c in before["containers"] if c.startswith(E2E_ENV["REGISTRY_NAME"] + "-mirror-")}
        assert mirrors, "MIRRORS is on but no mirror container ran before teardown"
    theirs = others(before)

    down = inv("teardown", check=False, timeout=900)
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-2000:]
    after = inventory()
    assert E2E_ENV["CLUSTER_NAME"] not in clusters()
    assert not [c for c in after["containers"] if ours(c.split()[0])], after["containers"]  # nodes, registry, mirrors
    assert {v for v in after["volumes"] if ours(v)} == mine_before, "teardown without PURGE=1 must keep the data volumes"
    assert theirs <= others(after), f"teardown touched what is not the lab's: {sorted(theirs - others(after))}"
    assert port_forward_processes() == []
    # idempotent
    again = inv("teardown", check=False, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:]

    purge = inv("teardown", env={"PURGE": "1"}, check=False, timeout=900)
    assert purge.returncode == 0, purge.stdout[-3000:] + purge.stderr[-2000:]
    final = inventory()
    assert not [x for v in final.values() for x in v if ours(x.split()[0])], final
    assert theirs <= others(final), f"PURGE=1 touched what is not the lab's: {sorted(theirs - others(final))}"
