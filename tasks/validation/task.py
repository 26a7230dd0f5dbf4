"""`doit validate`: the offline proof of flux-cd/ and kind-three-node.yaml."""
from __future__ import annotations

from tasks.core import console, state
from tasks.core.errors import LabError


def run(lab) -> None:
    from tasks import validation  # needs kubernetes-validate; loaded only when asked
    from tasks.validation.render import deployed_vars
    # the overlays as Flux applies them: lab-vars substituted, the image by digest (this lab's settings)
    problems = validation.validate(state.ROOT, deployed_vars(lab.cfg), tools=lab)
    for line in problems:
        console.error(line)
    if problems:
        raise LabError(f"{len(problems)} problem(s) in flux-cd/ or the kind config", "listed above",
                       "fix them before Flux applies them")
    console.ok("flux-cd/ and kind-three-node.yaml are valid")
