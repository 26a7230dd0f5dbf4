"""Build, check and tear down the lab."""
from __future__ import annotations

from invoke import Exit, task

from tasks import info, state, teardown as _teardown, validate_task
from tasks.inv.common import run_step


def _doit(*args: str) -> None:
    from doit.doit_cmd import DoitMain
    code = DoitMain().run(["-f", str(state.ROOT / "dodo.py"), "-d", str(state.ROOT), *args])
    if code:
        raise Exit(code=code)


@task(help={"dry_run": "print the mutating commands, run none", "var": "NAME=value settings (repeatable)"},
      iterable=["var"])
def setup(c, dry_run=False, var=None):
    """Build the whole lab (runs the doit graph: only what changed is redone)."""
    _doit("setup", *(var or []), *(["DRY_RUN=1"] if dry_run else []))


@task(help={"purge": "also delete the registry's image data"})
def teardown(c, purge=False):
    """Delete the cluster and the registry container, end port-forwards, clear local state."""
    run_step("teardown", "tear the lab down", _teardown.teardown, PURGE="1" if purge else None)


@task
def config(c):
    """Print every setting, its value and where it came from."""
    from tasks import config as _config
    info.print_config(_config.load({}))


@task
def validate(c):
    """Render and validate flux-cd/ and the kind config offline."""
    run_step("validate", "render and validate the GitOps tree", validate_task.run, lock=False)


@task(name="verify")
def verify_(c):
    """Check the lab end to end (runs the doit graph's verify)."""
    _doit("verify")


@task
def recreate_cluster(c):
    """Delete the cluster and create it again from KIND_CONFIG."""
    from tasks import cluster
    run_step("recreate_cluster", "recreate the cluster", cluster.recreate)


@task(help={"var": "NAME=value settings (repeatable), e.g. WATCH_ENVS=dev"}, iterable=["var"])
def watch(c, var=None):
    """Run `doit setup` again after each save of app/, flux-cd/, the kind config or the settings."""
    from tasks import watch as _watch
    settings = dict(v.split("=", 1) for v in (var or []) if "=" in v)
    run_step("watch", "edit and see: watch the lab's inputs", _watch.run, lock=False, **settings)


@task(help={"to": "staging or production (default: the first environment behind the one before it)"})
def promote(c, to=None):
    """WATCH_ENVS=dev: give the next environment the artifact revision and image the one before runs."""
    from tasks import promote as _promote
    run_step("promote", "promote the tested revision", _promote.run, PROMOTE_TO=to)


TASKS = [setup, teardown, config, validate, verify_, recreate_cluster, watch, promote]
