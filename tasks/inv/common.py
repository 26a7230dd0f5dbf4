"""Running a library step from invoke: same config, same tools, errors as `Exit`."""
from __future__ import annotations

from invoke import Exit

from tasks import config, console, state
from tasks.errors import LabError
from tasks.tools import Tools


def run_step(name: str, doing: str, fn, *, lock: bool = True, **overrides):
    try:
        cfg = config.load({k: v for k, v in overrides.items() if v is not None})
        if lock and not cfg.dry_run:
            state.take_run_lock(f"inv {name}")
        tools = Tools(cfg)
        with console.step(name, doing):
            return fn(tools, cfg)
    except LabError as exc:
        console.error(exc.line())
        raise Exit(code=1) from None
    except KeyboardInterrupt:
        console.error(f"{name} interrupted (Ctrl-C); run it again to continue")
        raise Exit(code=130) from None
