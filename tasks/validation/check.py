"""`validate(root)`: every check on flux-cd/, kind-three-node.yaml and docs/DESIGN.md, one line per
problem ([] when all is well); `python -m tasks.validation [ROOT]` prints them."""
from __future__ import annotations

import pathlib

from tasks.core import names
from tasks.validation.design import design_problems
from tasks.validation.policies import env_problems, fallback_image_problems, kind_problems, overlay_env_problems
from tasks.validation.render import (APPS_BASE, FLUX_DIR, RenderError, deployed_vars, local_tools, render,
                                     render_all)
from tasks.validation.schemas import schema_problems
from tasks.validation.stack import MONITORING, observability_problems, sizing_problems, version_problems
from tasks.validation.wiring import flux_problems, monitoring_problems, promotion_problems


def validate(root: pathlib.Path, variables: dict | None = None, tools=None) -> list[str]:
    """Every problem found in flux-cd/, kind-three-node.yaml and docs/DESIGN.md
    under `root` (the repository root); [] when all is well. `variables`: ConfigMap lab-vars' data, the
    overlays' post-build substitution (default: what `sync` writes, render.deployed_vars). `tools`: the
    run's Tools, which runs kustomize (default: kubectl from KUBECTL or PATH, nothing echoed)."""
    root = pathlib.Path(root)
    variables = deployed_vars() if variables is None else variables
    problems = kind_problems(root)
    try:
        tools = tools or local_tools()  # one for every kustomize of this validation
        bootstrap, rendered = render_all(root, variables, tools)
    except RenderError as exc:
        return problems + [f"[render] {exc}"]
    for variant, objs in bootstrap.items():
        problems += schema_problems(objs, f"{FLUX_DIR}/bootstrap/{variant}")
    for layer, objs in rendered.items():
        if layer != APPS_BASE:
            problems += schema_problems(objs, f"{FLUX_DIR}/{layer}")
    for env, path in names.APP_PATHS.items():
        problems += env_problems(env, rendered[path])
    problems += overlay_env_problems(root, rendered[APPS_BASE])
    try:  # the fallback Flux would apply without lab-vars (substituteStrategy: Always)
        problems += fallback_image_problems(render(root, root / FLUX_DIR / APPS_BASE, {}, tools))
    except RenderError as exc:
        problems.append(f"[render] {exc}")
    problems += flux_problems(root, bootstrap, rendered, MONITORING)
    problems += monitoring_problems(root, bootstrap, rendered, variables, MONITORING, tools)
    problems += promotion_problems(bootstrap)
    problems += observability_problems(rendered, MONITORING)
    problems += version_problems(rendered, MONITORING)
    problems += sizing_problems(rendered, MONITORING)
    problems += design_problems(root, rendered)
    return problems


def main() -> int:  # pragma: no cover - thin CLI for `python -m tasks.validation`
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    start = time.monotonic()
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else names.ROOT)
    problems = validate(root)
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s) in {time.monotonic() - start:.1f}s")
    return 1 if problems else 0
