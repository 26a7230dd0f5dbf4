"""The invoke collection, made from tasks/operations.py: the operations marked `invoke`, through
the same functions as dodo.py. Options set settings (`inv hpa-demo --duration 30` is
HPA_DURATION=30), and `--var NAME=value` sets any; an operation doit decides (setup, verify) runs
through doit itself."""
from __future__ import annotations

import inspect

from invoke import Collection, Task

from tasks import operations
from tasks.inv.common import run_doit, run_step

_VAR = operations.Option("var", "", "NAME=value settings (repeatable)")


def _options(op: operations.Operation) -> tuple[operations.Option, ...]:
    return (*op.options, _VAR)


def _body(op: operations.Operation):
    options = _options(op)

    def body(c, **given):
        settings = {o.setting: ("1" if given.get(o.name) else None) if o.flag else given.get(o.name)
                    for o in options if o.setting}
        pairs = given.get("var") or []
        if op.in_graph:
            run_doit(op.name, *pairs, *(f"{k}={v}" for k, v in settings.items() if v is not None))
        else:
            run_step(op, **dict(p.split("=", 1) for p in pairs if "=" in p), **settings)

    body.__name__ = op.name
    body.__doc__ = op.doc
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(o.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=False if o.flag else None)
               for o in options]
    body.__signature__ = inspect.Signature(params)
    return body


def _task(op: operations.Operation) -> Task:
    options = _options(op)
    return Task(_body(op), name=op.name, help={o.name: o.help for o in options},
                iterable=[o.name for o in options if o is _VAR], positional=[])


ns = Collection()
for _op in operations.OPERATIONS:
    if _op.invoke:
        ns.add_task(_task(_op))
