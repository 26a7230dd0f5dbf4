"""Offline proof of flux-cd/ and kind-three-node.yaml (`doit validate`).

Every Flux entry point is rendered with the real `kubectl kustomize` (kustomize v5, as Flux uses)
and Flux's post-build substitution, each object is validated against the Kubernetes schemas of the
pinned version or the vendored CRD schemas, and the lab's policies run on the result. Nothing here
talks to a cluster or the network.

    render    kustomize (through tasks/tools.Tools) and Flux's envsubst, every entry point
    schemas   Kubernetes strict schemas (kubernetes-validate), vendored CRD schemas (tasks/schemas/)
    policies  the lab's rules: kind config, workers only, security, probes, limits, HPA/PDB/quota,
              NetworkPolicies, overlays
    wiring    the bootstrap: sources, layers, CRDs before their users, MONITORING modes
    stack     the monitoring chart, described once, and the rules that follow from it
    design    docs/DESIGN.md's numbers against the manifests
    check     validate(): all of them; `python -m tasks.validation [ROOT]`
"""
from tasks.validation.check import main, validate
from tasks.validation.render import RenderError, envsubst, kubectl_path, kustomize_build, render_all

# render() is tasks.validation.render.render: binding it here would hide the module of that name.
__all__: list[str] = ["RenderError", "envsubst", "kubectl_path", "kustomize_build", "main", "render_all",
                      "validate"]
