"""Running an operation from invoke: same config, same tools, errors as `Exit`."""
from __future__ import annotations

from invoke import Exit

from tasks import operations
from tasks.core import config, console, state
from tasks.core.errors import LabError
from tasks.core.lab import Lab


def run_step(op: operations.Operation, **overrides) -> None:
    """A plain operation, called directly (read-only ones take no run lock)."""
    try:
        cfg = config.load({k: v for k, v in overrides.items() if v is not None})
        if op.mutates and not cfg.dry_run:
            state.take_run_lock(f"inv {op.inv_name}")
        lab = Lab(cfg)
        operations.perform(op, lab)
        if op.after:
            op.after(cfg)
    except LabError as exc:
        console.error(exc.line())
        raise Exit(code=1) from None
    except KeyboardInterrupt:
        console.error(f"{op.name} interrupted (Ctrl-C); run it again to continue")
        raise Exit(code=130) from None


def run_doit(*args: str) -> None:
    """An operation doit decides (dependencies, up-to-date checks): the same run as `doit <name>`."""
    from doit.doit_cmd import DoitMain
    code = DoitMain().run(["-f", str(state.ROOT / "dodo.py"), "-d", str(state.ROOT), *args])
    if code:
        raise Exit(code=code)
