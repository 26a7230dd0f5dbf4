"""reconcile.plan: what a sync asks Flux for, from what the cluster showed before it and what changed."""
from __future__ import annotations

from tasks.core import names
from tasks.steps import reconcile

SOURCE = names.SOURCE
DIGEST = "sha256:" + "a" * 64
OLD = "sha256:" + "b" * 64
INFRA_DIGEST = "0123456789abcdef"
IMAGE = "localhost:5001/lab-app:abc@sha256:" + "c" * 64


def ready(name: str, revision: str = f"latest@{OLD}", **status) -> dict:
    return {"metadata": {"name": name, "namespace": names.FLUX_NAMESPACE, "generation": 1},
            "status": {"observedGeneration": 1, "lastAppliedRevision": revision,
                       "conditions": [{"type": "Ready", "status": "True"}], **status}}


def before(revision: str = f"latest@{OLD}", infra_digest: str = INFRA_DIGEST, images=None, **override) -> reconcile.Before:
    source = ready(SOURCE)
    source["status"]["artifact"] = {"revision": revision, "metadata": {reconcile.INFRASTRUCTURE_DIGEST: infra_digest}}
    kss = {n: ready(n, revision) for n in names.FLUX_KUSTOMIZATIONS}
    kss.update(override)
    return reconcile.Before(kss, {SOURCE: source}, images)


def plan(state, **kw):
    args = dict(source=SOURCE, digest=OLD, infrastructure_digest=INFRA_DIGEST, image_changed=False,
                follow=names.ENVIRONMENTS, image=IMAGE)
    args.update(kw)
    return reconcile.plan(state, **args)


def test_an_app_edit_reconciles_the_apps_and_nothing_it_cannot_change():
    todo = plan(before(), image_changed=True)
    assert todo.sources == [] and todo.infrastructure is False
    assert todo.apps == list(names.ENVIRONMENTS)


def test_nothing_changed_reconciles_nothing():
    todo = plan(before(images={env: IMAGE for env in names.ENVIRONMENTS}))
    assert (todo.sources, todo.infrastructure, todo.apps) == ([], False, [])


def test_a_new_revision_with_infrastructure_unchanged_leaves_it_to_flux_and_asks_for_the_apps_at_once():
    todo = plan(before(), digest=DIGEST)
    assert todo.sources == [SOURCE]
    assert todo.infrastructure is False  # Flux re-applies it beside the apps (their readyExpr lets them)
    assert todo.apps == list(names.ENVIRONMENTS)


def test_a_new_revision_whose_infrastructure_folder_changed_reconciles_it():
    todo = plan(before(infra_digest="feedfacefeedface"), digest=DIGEST)
    assert todo.infrastructure is True


def test_an_unknown_revision_git_or_remote_registry_asks_for_everything():
    todo = plan(before(), digest=None)
    assert todo.sources == [SOURCE] and todo.infrastructure is True
    assert todo.apps == list(names.ENVIRONMENTS)


def test_a_first_sync_reconciles_everything():
    todo = plan(reconcile.Before({}, {}), digest=DIGEST)
    assert todo.sources == [SOURCE] and todo.infrastructure is True
    assert todo.apps == list(names.ENVIRONMENTS)


def test_an_environment_left_behind_is_caught_up():
    """lab-vars already right (an earlier run stopped after writing it), one Deployment on another image."""
    images = {env: IMAGE for env in names.ENVIRONMENTS} | {"staging": "localhost:5001/lab-app:old"}
    assert plan(before(images=images)).apps == ["staging"]
    not_ready = ready(names.APP_LAYERS["production"])
    not_ready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    todo = plan(before(images={env: IMAGE for env in names.ENVIRONMENTS},
                       **{names.APP_LAYERS["production"]: not_ready}))
    assert todo.apps == ["production"]


def test_infrastructure_not_ready_or_respecified_is_reconciled():
    broken = ready(names.INFRASTRUCTURE)
    broken["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert plan(before(**{names.INFRASTRUCTURE: broken}), image_changed=True).infrastructure is True
    todo = plan(before(), image_changed=True, changed=frozenset({names.INFRASTRUCTURE}))
    assert todo.infrastructure is True and todo.sources == []


def test_pinned_environments_move_only_when_seeded():
    todo = plan(before(), digest=DIGEST, follow=("dev",))
    assert todo.apps == ["dev"]
    todo = plan(before(), digest=DIGEST, follow=("dev",), seeded=("staging", "production"))
    assert todo.apps == ["dev", "staging", "production"]
    assert todo.sources == [SOURCE, f"{SOURCE}-staging", f"{SOURCE}-production"]
