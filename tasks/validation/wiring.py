"""Flux wiring: the bootstrap's sources and Kustomizations (the layers), their order (CRDs before
the objects that need them), and the MONITORING modes the lab's bootstrap selects."""
from __future__ import annotations

import copy
import pathlib

import yaml

from tasks.core import names
from tasks.validation.render import FLUX_DIR, render
from tasks.validation.render import find as _find
from tasks.validation.render import ident as _ident
from tasks.validation.schemas import schema_problems
from tasks.validation.stack import MONITORING, Chart, uses_crds

OCI_URL = f"oci://kind-registry:5000/{names.SOURCE}"  # the in-cluster name of the lab's registry


def flux_problems(root: pathlib.Path, bootstrap: dict[str, list[dict]], rendered: dict[str, list[dict]],
                  chart: Chart = MONITORING) -> list[str]:
    """Bootstrap objects: sources, Kustomizations (the layers tasks/core/names.py reads from the bootstrap),
    ordering, CRDs before users."""
    p = []
    layer_of = {layer.name: layer.path for layer in names.LAYERS}  # Kustomization -> its folder under flux-cd/
    for variant, objs in bootstrap.items():
        where = f"{FLUX_DIR}/bootstrap/{variant}"
        text = yaml.safe_dump_all(objs)
        if "${" in text:
            p.append(f"{where}: [bootstrap] contains ${{...}}: bootstrap is applied by kubectl, without Flux substitution")
        source_kind = {"oci": "OCIRepository", "git": "GitRepository"}[variant]
        sources = [o for o in objs if o.get("kind") == source_kind and o["metadata"].get("name") == names.SOURCE]
        if not sources:
            p.append(f"{where}: [bootstrap] no {source_kind} {names.SOURCE}")
        if variant == "oci":
            for src in sources:
                spec = src["spec"]
                if spec.get("url") != OCI_URL or (spec.get("ref") or {}).get("tag") != "latest" or spec.get("insecure") is not True:
                    p.append(f"{where}: {_ident(src)}: [bootstrap] want url {OCI_URL}, ref.tag latest, insecure true")
        prefix = "./" if variant == "oci" else f"./{FLUX_DIR}/"
        kss = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "Kustomization" and o.get("apiVersion", "").startswith("kustomize.toolkit.fluxcd.io/")}
        for name, path in layer_of.items():
            ks = kss.get(name)
            if ks is None:
                p.append(f"{where}: [flux-ks] no Kustomization {name}")
                continue
            spec, ident = ks["spec"], f"{where}: {_ident(ks)}"
            if ks["metadata"].get("namespace") != names.FLUX_NAMESPACE:
                p.append(f"{ident}: [flux-ks] must live in {names.FLUX_NAMESPACE}")
            if spec.get("path") != prefix + path:
                p.append(f"{ident}: [flux-ks] path {spec.get('path')} != {prefix + path}")
            elif not (root / FLUX_DIR / path).is_dir():
                p.append(f"{ident}: [flux-ks] path {path} does not exist under {FLUX_DIR}/")
            if spec.get("sourceRef") != {"kind": source_kind, "name": names.SOURCE}:
                p.append(f"{ident}: [flux-ks] sourceRef must be {source_kind}/{names.SOURCE}")
            for key in ("prune", "wait"):
                if spec.get(key) is not True:
                    p.append(f"{ident}: [flux-ks] {key} must be true")
            for key in ("timeout", "interval"):
                if not spec.get(key):
                    p.append(f"{ident}: [flux-ks] {key} missing")
            if name in names.APP_LAYERS.values():
                if {d.get("name") for d in spec.get("dependsOn") or []} != {names.INFRASTRUCTURE}:
                    p.append(f"{ident}: [crd-order] must dependsOn {names.INFRASTRUCTURE} (its ServiceMonitor needs the Prometheus Operator CRDs)")
                post = spec.get("postBuild") or {}
                if post.get("substituteStrategy") != "Always":
                    p.append(f"{ident}: [flux-ks] postBuild.substituteStrategy must be Always (defaults apply without {names.VARS_CONFIGMAP})")
                if {"kind": "ConfigMap", "name": names.VARS_CONFIGMAP, "optional": True} not in (post.get("substituteFrom") or []):
                    p.append(f"{ident}: [flux-ks] postBuild.substituteFrom must include optional ConfigMap {names.VARS_CONFIGMAP}")

        # Prometheus Operator objects only in layers that wait for a HelmRelease installing CRDs.
        crd_layers = {name for name, objs_ in rendered.items()
                      if any(o.get("kind") == "HelmRelease" and (o["spec"].get("install") or {}).get("crds") in ("Create", "CreateReplace")
                             for o in objs_)}
        for name, ks in kss.items():
            layer = layer_of.get(name)
            objs_ = rendered.get(layer or "", [])
            if not any(uses_crds(o, chart) for o in objs_):
                continue
            deps = [kss.get(d.get("name")) for d in ks["spec"].get("dependsOn") or []]
            if not any(dep is not None and dep["spec"].get("wait") is True and layer_of.get(dep["metadata"]["name"]) in crd_layers for dep in deps):
                p.append(f"{where}: {_ident(ks)}: [crd-order] renders {chart.crd_group} objects but does not depend (wait: true) on the layer installing their CRDs")
    for layer in (names.INFRASTRUCTURE_PATH,):
        for o in rendered.get(layer, []):
            if uses_crds(o, chart):
                p.append(f"{FLUX_DIR}/{layer}: {_ident(o)}: [crd-order] needs the Prometheus Operator CRDs installed by the same layer: move it to the apps layer")
    for o in rendered.get(names.INFRASTRUCTURE_PATH, []):
        if o.get("kind") == "HelmRelease":
            spec = o["spec"]
            if (spec.get("install") or {}).get("crds") != "Create" or (spec.get("upgrade") or {}).get("crds") != "CreateReplace":
                p.append(f"{FLUX_DIR}/{names.INFRASTRUCTURE_PATH}: {_ident(o)}: [helm] install.crds must be Create and upgrade.crds CreateReplace")
            if (spec.get("chartRef") or {}).get("kind") != "OCIRepository":
                p.append(f"{FLUX_DIR}/{names.INFRASTRUCTURE_PATH}: {_ident(o)}: [helm] chartRef must reference an OCIRepository")
    return p


def monitoring_problems(root: pathlib.Path, bootstrap: dict[str, list[dict]],
                        rendered: dict[str, list[dict]], variables: dict | None = None,
                        chart: Chart = MONITORING, tools=None) -> list[str]:
    """MONITORING=crds and off, as the lab's bootstrap selects them (tasks/steps/sync.py)."""
    from tasks.steps import sync  # noqa: PLC0415 - sync imports the cluster modules; validate stays light
    p = []
    used = {o["kind"] for path in names.APP_PATHS.values() for o in rendered[path] if uses_crds(o, chart)}
    for mode, path in sync.INFRASTRUCTURE_PATHS.items():
        where = f"{FLUX_DIR}/{path.lstrip('./')} (MONITORING={mode})"
        if not (root / FLUX_DIR / path).is_dir():
            p.append(f"{where}: [monitoring] the folder does not exist")
            continue
        objs = [copy.deepcopy(o) for o in bootstrap.get("oci", [])]
        sync.apply_monitoring(objs, mode)
        infra = [o for o in objs if o.get("kind") == "Kustomization" and o["metadata"]["name"] == names.INFRASTRUCTURE]
        if not infra or infra[0]["spec"].get("path") != path:
            p.append(f"{where}: [monitoring] the bootstrap's infrastructure Kustomization does not point here")
        if mode == "full":
            continue
        layer = render(root, root / FLUX_DIR / path, variables, tools)
        p += schema_problems(layer, where)
        crds = {o["spec"]["names"]["kind"]: o for o in layer if o.get("kind") == "CustomResourceDefinition"
                and o["spec"].get("group") == chart.crd_group}
        if mode == "crds":
            for kind in sorted(used - set(crds)):
                p.append(f"{where}: [monitoring] the apps render {kind} but this layer has no CRD for it")
            for kind, crd in sorted(crds.items()):
                if (crd["metadata"].get("annotations") or {}).get("kustomize.toolkit.fluxcd.io/prune") != "disabled":
                    p.append(f"{where}: CRD {kind}: [monitoring] needs kustomize.toolkit.fluxcd.io/prune: disabled "
                             "(switching modes must not delete every ServiceMonitor in the cluster)")
            if not _find(layer, "Namespace", chart.namespace):
                p.append(f"{where}: [monitoring] no Namespace {chart.namespace} (the app's NetworkPolicy admits scrapes from it)")
        if mode == "off":
            if crds or layer:
                p.append(f"{where}: [monitoring] must render nothing")
            for env, app_layer in names.APP_LAYERS.items():
                ks = next((o for o in objs if o.get("kind") == "Kustomization"
                           and o["metadata"]["name"] == app_layer), None)
                deleted = {((pt.get("target") or {}).get("kind"), (pt.get("target") or {}).get("name"))
                           for pt in ((ks or {}).get("spec") or {}).get("patches") or []
                           if "$patch: delete" in pt.get("patch", "")}
                for o in rendered[names.APP_PATHS[env]]:
                    if uses_crds(o, chart) and (o["kind"], o["metadata"]["name"]) not in deleted:
                        p.append(f"{where}: {app_layer}: [monitoring] {_ident(o)} stays, and nothing installs its CRD")
    return p


def promotion_problems(bootstrap: dict[str, list[dict]]) -> list[str]:
    """WATCH_ENVS=dev and dev,staging, as the lab's bootstrap pins the other environments (tasks/steps/pinning.py):
    schema-valid, and each pinned apps-<env> reads its own source at tag <env> and its own variables."""
    from tasks.steps import pinning  # noqa: PLC0415 - the step's own rendering, not a copy of it
    p = []
    for watched in ("dev", "dev,staging"):
        held = tuple(e for e in names.ENVIRONMENTS if e not in watched.split(","))
        where = f"{FLUX_DIR}/bootstrap/oci (WATCH_ENVS={watched})"
        objs = pinning.apply_pinning([copy.deepcopy(o) for o in bootstrap.get("oci", [])], held)
        p += schema_problems(objs, where)
        sources = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "OCIRepository"}
        for env in names.ENVIRONMENTS:
            layer = names.APP_LAYERS[env]
            ks = next((o for o in objs if o.get("kind") == "Kustomization" and o["metadata"]["name"] == layer), None)
            if ks is None:
                continue
            ref = (ks["spec"].get("sourceRef") or {}).get("name")
            subst = [s.get("name") for s in (ks["spec"].get("postBuild") or {}).get("substituteFrom") or []]
            want_ref, want_vars, want_tag = ((pinning.source_name(env), pinning.vars_name(env), env) if env in held
                                             else (names.SOURCE, names.VARS_CONFIGMAP, "latest"))
            tag = ((sources.get(ref) or {}).get("spec", {}).get("ref") or {}).get("tag")
            if ref != want_ref or tag != want_tag or want_vars not in subst:
                p.append(f"{where}: {layer}: [promotion] want source {want_ref} (tag {want_tag}) and "
                         f"ConfigMap {want_vars}, got {ref} (tag {tag}) and {subst}")
    return p
