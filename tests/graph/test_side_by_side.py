"""The environments are rolled out and verified side by side, and a sync reconciles only what the edit
can change (tasks/steps/reconcile.py): an app edit the apps Kustomizations, a manifest edit under apps/
the source and the apps (infrastructure is neither asked for nor waited for: Flux re-applies it beside
them), an edit under infrastructure/ infrastructure first."""
from __future__ import annotations

import os
import time

from tasks.core import names
from tests.graph.conftest import Running, has

# Flux is asked with its reconcile annotation, then each object is watched until it handled the request
# (tasks/steps/reconcile.py: request); this is the watch of Kustomization KS<name>
KS = "kubectl --context kind-gitops-lab -n flux-system wait kustomizations.kustomize.toolkit.fluxcd.io/"
FETCH = "kubectl --context kind-gitops-lab -n flux-system wait ocirepositories.source.toolkit.fluxcd.io/lab-gitops "


def edit(lab, rel: str, old: str | None = None, new: str | None = None) -> None:
    path = lab.root / rel
    text = path.read_text()
    if old is None:
        path.write_text(text + f"\n# edited {time.time()}\n")
    else:
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))


def finished(lab, prefix: str) -> bool:
    return any(" ".join([c["tool"], *c["argv"]]).startswith(prefix) and c["rc"] == 0 for c in lab.world.calls())


def test_each_environment_rolls_out_while_another_is_held(built):
    """dev's reconcile is held (the fake pauses the watch that waits for it, up to 60 s): staging's and
    production's must end meanwhile. Run one after the other, they would wait for dev."""
    edit(built, "app/server.py")
    # the fakes match a prefix of the command without its global flags
    run = Running(built, "setup", FAKE_PAUSE_AT="kubectl wait kustomizations.kustomize.toolkit.fluxcd.io/apps-dev")
    try:
        paused = built.world.state_dir + "/paused"
        deadline = time.monotonic() + 120
        while not os.path.exists(paused):
            assert run.proc.poll() is None, run.out
            assert time.monotonic() < deadline, "dev's reconcile never started:\n" + run.out
            time.sleep(0.1)
        others = [f"{KS}{names.APP_LAYERS[env]} " for env in names.ENVIRONMENTS if env != "dev"]
        deadline = time.monotonic() + 40  # well inside the fake's 60 s pause
        while not all(finished(built, p) for p in others):
            assert time.monotonic() < deadline, \
                "staging and production did not roll out while dev's rollout was held:\n" + run.out
            time.sleep(0.2)
        assert os.path.exists(paused), "dev's reconcile was not held all along"
        os.unlink(paused)  # let dev go on
        assert run.finish(timeout=120) == 0, run.out
        assert run.out.count("200 200 200") == 3, run.out
    finally:
        run.kill()


def test_verify_checks_the_environments_side_by_side(built):
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    forwards = [c for c in built.world.calls() if "port-forward" in c["argv"]]
    assert len(forwards) == len(names.ENVIRONMENTS), forwards
    # every port-forward was running while every other one was: their lifetimes overlap
    assert max(c["t"] for c in forwards) < min(c["end"] for c in forwards), forwards


def calls(lab) -> list[str]:
    return lab.calls()


def test_an_app_edit_reconciles_the_apps_only(built):
    edit(built, "app/server.py")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = calls(built)
    for env in names.ENVIRONMENTS:
        assert has(ran, f"{KS}{names.APP_LAYERS[env]} "), ran
    assert not has(ran, f"{KS}{names.INFRASTRUCTURE} "), ran
    assert not has(ran, "flux reconcile source", FETCH, "flux push artifact"), ran  # flux-cd/ did not change
    assert proc.stdout.count("200 200 200") == 3


def test_a_manifest_edit_under_apps_applies_while_flux_still_re_applies_infrastructure(built):
    """kustomize-controller re-applies infrastructure (unchanged folder) in another worker while the apps
    are reconciled: with the built-in dependency check they would wait for it ("revision is not up to
    date", then --requeue-dependency, 30 s); the bootstrap's readyExpr lets them apply."""
    edit(built, "flux-cd/apps/dev/kustomization.yaml", "FAIL_RATE=0.05", "FAIL_RATE=0.04")
    built.world.busy_kustomization(names.INFRASTRUCTURE, ticks=4, next_revision=True)
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = calls(built)
    assert has(ran, "flux push artifact") and has(ran, FETCH), ran
    assert not has(ran, f"{KS}{names.INFRASTRUCTURE} "), ran
    assert not any("lastAppliedRevision" in c for c in ran), ran  # nothing waits for its re-apply either
    for env in names.ENVIRONMENTS:
        assert has(ran, f"{KS}{names.APP_LAYERS[env]} "), ran
    kss = {k["metadata"]["name"]: k for k in built.world.objects("gitops-lab", "Kustomization")}
    source = built.world.objects("gitops-lab", "OCIRepository")
    revision = [s for s in source if s["metadata"]["name"] == names.SOURCE][0]["status"]["artifact"]["revision"]
    for env in names.ENVIRONMENTS:
        assert kss[names.APP_LAYERS[env]]["status"]["lastAppliedRevision"] == revision
    dev = built.world.objects("gitops-lab", "ConfigMap", "dev")
    assert any((cm.get("data") or {}).get("FAIL_RATE") == "0.04" for cm in dev), "the edit was not applied"


def test_an_edit_under_infrastructure_reconciles_it(built):
    path = "flux-cd/infrastructure/crds/kustomization.yaml"
    edit(built, path)
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = calls(built)
    assert has(ran, f"{KS}{names.INFRASTRUCTURE} "), ran
    assert not any("lastAppliedRevision" in c for c in ran), ran  # asked for, not waited for by revision
    # ... and ahead of the apps, which need it at the new revision
    order = [c for c in ran if c.startswith(KS)]
    assert order[0].startswith(f"{KS}{names.INFRASTRUCTURE} "), order


def test_the_bootstrap_is_applied_only_when_the_cluster_differs_from_it(built):
    bootstrap = "kubectl --context kind-gitops-lab apply -f - -o json"
    edit(built, "app/server.py")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not has(calls(built), bootstrap), calls(built)
    assert "bootstrap unchanged in the cluster" in proc.stdout
    # a hand edit of a field the bootstrap sets: the next sync puts it back
    layer = names.APP_LAYERS["dev"]
    patched = built.world.run("kubectl", "--context", "kind-gitops-lab", "-n", names.FLUX_NAMESPACE, "patch",
                              "kustomizations.kustomize.toolkit.fluxcd.io", layer, "--type", "merge",
                              "-p", '{"spec":{"interval":"7m"}}', env=built.env())
    assert patched.returncode == 0, patched.stderr
    built.world.clear_calls()
    edit(built, "app/server.py")
    proc = built.doit("setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert has(calls(built), bootstrap), calls(built)
    ks = next(o for o in built.world.objects("gitops-lab", "Kustomization", names.FLUX_NAMESPACE)
              if o["metadata"]["name"] == layer)
    assert ks["spec"]["interval"] in ("5m", "5m0s"), ks["spec"]


def test_a_reconcile_flux_reports_failed_ends_the_run_with_its_reason(built):
    """The request's watch ends when the controller handled it, whether it worked or not: a run whose apps
    Kustomization cannot build says which object, its reason and message, and fails (no 5-minute wait,
    no traceback)."""
    edit(built, "flux-cd/apps/dev/kustomization.yaml", "  - namespace.yaml\n", "  - namespace.yaml\n  - missing.yaml\n")
    proc = built.doit("setup")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    line = [l for l in proc.stderr.splitlines() if "✗" in l]
    assert line and "Kustomization/flux-system/apps-dev reconciliation failed: BuildFailed:" in line[0], proc.stderr
    assert "missing.yaml" in proc.stderr, proc.stderr
