"""Offline proof of flux-cd/ and kind-three-node.yaml.

`validate(root)` renders every Flux entry point with the real `kubectl kustomize`
(kustomize v5, as Flux uses), substitutes Flux post-build variables the way
kustomize-controller does, validates every object against the Kubernetes
schemas of the pinned version (kubernetes-validate, strict) or the vendored
Flux / Prometheus Operator CRD schemas (tasks/schemas/), and runs the lab's
policies. It returns one line per problem; an empty list means all good.

Nothing here talks to a cluster or the network.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

import yaml

from tasks import versions

FLUX_DIR = "flux-cd"
KIND_CONFIG = "kind-three-node.yaml"
DESIGN_DOC = "docs/DESIGN.md"
SCHEMA_DIR = pathlib.Path(__file__).with_name("schemas")

ENVIRONMENTS = ("dev", "staging", "production")
BOOTSTRAP_VARIANTS = ("oci", "git")
APP_NAME = "app"
APP_LABEL = {"app.kubernetes.io/name": APP_NAME}
APP_PORT = 8000
WORKER_LABEL_KEY = "gitops-lab/tier"
WORKER_LABEL_VALUE = "worker"
SOURCE_NAME = "lab-gitops"
VARS_CONFIGMAP = "lab-vars"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
REGISTRY_CONFIG_PATH = "/etc/containerd/certs.d"
READINESS_DELAY_SEC = 10  # the app's default (app facts in docs/DESIGN.md)
APP_PEAK_RSS_MIB = 80  # measured footprint: 40-80 MiB RSS

RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"}
# Kinds that only exist once kube-prometheus-stack installed its CRDs.
PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com"


class RenderError(Exception):
    """kustomize or substitution failed."""


# --------------------------------------------------------------------------- kubectl


def kubectl_path() -> str:
    """`KUBECTL` from the environment, else `kubectl` on PATH."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        raise RenderError("kubectl not found (set KUBECTL or put kubectl on PATH)")
    return found


def kustomize_build(directory: pathlib.Path) -> str:
    """`kubectl kustomize DIR`: the same kustomize v5 Flux embeds."""
    proc = subprocess.run(
        [kubectl_path(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory} failed: {proc.stderr.strip()}")
    # kustomize warns on stderr and still exits 0 (`# Warning: 'vars' is deprecated ...`): a
    # deprecated field today is a removed one tomorrow, so any warning fails the render.
    warnings = [line.strip().lstrip("# ") for line in proc.stderr.splitlines() if line.strip()]
    if warnings:
        raise RenderError(f"kubectl kustomize {directory} warned: {' | '.join(warnings)}")
    return proc.stdout


# --------------------------------------------------------------------------- Flux envsubst

_VAR_NAME = r"[_a-zA-Z][_a-zA-Z0-9]*"
_SUBST = re.compile(r"\$\$|\$\{(?P<name>" + _VAR_NAME + r")(?:(?P<op>:=|:-|=|-)(?P<default>[^}]*))?\}")
_BAD_REF = re.compile(r"\$\{(?!" + _VAR_NAME + r"(?:(?::=|:-|=|-)[^}]*)?\})[^}]*\}")


def envsubst(text: str, variables: dict[str, str], strict: bool = True) -> str:
    """Substitute variables like Flux's post-build (drone/envsubst semantics).

    - `${VAR}`: the value; undefined is an error in strict mode (Flux >= 2.7
      default, feature gate StrictPostBuildSubstitutions), empty otherwise.
    - `${VAR:=default}` / `${VAR:-default}`: the default when VAR is unset or empty.
    - `${VAR=default}` / `${VAR-default}`: the default only when VAR is unset.
    - `$${VAR}`: the literal `${VAR}` (escape); a lone `$` or `$VAR` is left alone.
    """
    bad = _BAD_REF.search(text)
    if bad:
        raise RenderError(f"invalid variable reference {bad.group(0)!r}")

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name"), match.group("op"), match.group("default")
        value = variables.get(name)
        if op in (":=", ":-"):
            return value if value else default
        if op in ("=", "-"):
            return value if value is not None else default
        if value is None:
            if strict:
                raise RenderError(f"variable not set (strict mode): {name}")
            return ""
        return value

    return _SUBST.sub(replace, text)


# kustomize's output through LibYAML when PyYAML has it: the same objects, several times faster.
_KUSTOMIZE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_docs(text: str) -> list[dict]:
    return [doc for doc in yaml.load_all(text, Loader=_KUSTOMIZE_LOADER) if isinstance(doc, dict)]


def render(root: pathlib.Path, overlay_dir: pathlib.Path | str, variables: dict | None = None) -> list[dict]:
    """Render `overlay_dir` (absolute, or relative to `root`) with kustomize,
    then apply Flux post-build substitution with `variables` (as if they came
    from ConfigMap lab-vars; None = the ConfigMap is absent, defaults apply,
    i.e. `substituteStrategy: Always`). Objects labelled or annotated
    `kustomize.toolkit.fluxcd.io/substitute: disabled` are left as built."""
    root = pathlib.Path(root)
    directory = pathlib.Path(overlay_dir)
    if not directory.is_absolute():
        directory = root / directory
    variables = {k: str(v) for k, v in (variables or {}).items()}
    out = []
    for doc in _load_docs(kustomize_build(directory)):
        meta = doc.get("metadata") or {}
        marks = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
        if marks.get("kustomize.toolkit.fluxcd.io/substitute") == "disabled":
            out.append(doc)
            continue
        text = yaml.safe_dump(doc, sort_keys=False)
        try:
            out.append(yaml.safe_load(envsubst(text, variables)))
        except RenderError as exc:
            raise RenderError(f"{directory}: {_ident(doc)}: {exc}") from exc
    return out


# --------------------------------------------------------------------------- helpers


def _ident(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def _find(objs: Iterable[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind and (name is None or o["metadata"].get("name") == name)]


def parse_quantity(value: Any) -> float:
    """Kubernetes quantity to a float (cores for CPU, bytes for memory)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    suffixes = {
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
        "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3,
    }
    for suffix, factor in sorted(suffixes.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _scaled(value: Any, replicas: int, *, round_up: bool) -> int:
    """Resolve an int-or-percent against `replicas` like the controllers do."""
    if isinstance(value, str) and value.endswith("%"):
        raw = int(value[:-1]) * replicas / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    return int(value)


# --------------------------------------------------------------------------- schemas


@functools.lru_cache(maxsize=1)
def _k8s_schema_dir() -> tuple[pathlib.Path, str]:
    import kubernetes_validate  # noqa: PLC0415 (heavy, only when validating)

    wanted = versions.K8S_VERSION.lstrip("v")
    major_minor = ".".join(wanted.split(".")[:2])
    base = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    candidates = sorted(
        (p for p in base.glob("v*-local-strict") if p.name[1:].startswith(major_minor + ".")),
        key=lambda p: p.name,
    )
    if not candidates:
        raise RenderError(f"kubernetes-validate has no strict schemas for Kubernetes {major_minor}")
    return candidates[-1], major_minor


@functools.lru_cache(maxsize=None)
def _k8s_validator(kind: str, api_version: str):
    import jsonschema  # noqa: PLC0415
    from referencing import Registry, Resource  # noqa: PLC0415

    schema_dir, _ = _k8s_schema_dir()
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = schema_dir / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        return None
    registry = Registry()
    registry = Resource.from_contents(json.loads(path.read_text())) @ registry
    registry = _k8s_definitions() @ registry
    return jsonschema.Draft202012Validator(json.loads(path.read_text()), registry=registry)


@functools.lru_cache(maxsize=1)
def _k8s_definitions():
    from referencing import Resource  # noqa: PLC0415

    schema_dir, _ = _k8s_schema_dir()
    return Resource.from_contents(json.loads((schema_dir / "_definitions.json").read_text()))


def _strict(schema: Any) -> Any:
    """Close every object that lists its properties (the API server rejects
    unknown fields with strict field validation), as kubernetes-validate's
    -strict schemas do."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.lru_cache(maxsize=1)
def crd_validators() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> validator, from the vendored schemas."""
    import jsonschema  # noqa: PLC0415

    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        meta = doc.pop("x-vendored")
        key = (f"{meta['group']}/{meta['version']}", meta["kind"])
        out[key] = jsonschema.Draft202012Validator(_strict(doc))
    return out


def _error_path(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(root)"


def schema_problems(objs: list[dict], where: str) -> list[str]:
    problems = []
    for obj in objs:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        validator = crd_validators().get((api_version, kind))
        source = "vendored CRD schema"
        if validator is None:
            validator = _k8s_validator(kind, api_version)
            source = f"Kubernetes {_k8s_schema_dir()[1]} strict schema"
        if validator is None:
            problems.append(f"{where}: {_ident(obj)}: [schema] no schema for {api_version} {kind}")
            continue
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            problems.append(f"{where}: {_ident(obj)}: [schema] {_error_path(error)}: {error.message} ({source})")
    return problems


# --------------------------------------------------------------------------- kind config


def kind_problems(root: pathlib.Path) -> list[str]:
    where = KIND_CONFIG
    path = root / KIND_CONFIG
    if not path.exists():
        return [f"{where}: missing"]
    text = path.read_text()
    config = yaml.safe_load(text) or {}
    problems = []
    if config.get("kind") != "Cluster" or config.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        problems.append(f"{where}: [kind] must be kind: Cluster, apiVersion: kind.x-k8s.io/v1alpha4")
    nodes = config.get("nodes") or []
    roles = [n.get("role") for n in nodes]
    if roles.count("control-plane") != 1 or roles.count("worker") != 2 or len(roles) != 3:
        problems.append(f"{where}: [kind-roles] want 1 control-plane + 2 workers, got {roles}")
    pinned = f"{versions.KIND_NODE_IMAGE_REPO}:{versions.K8S_VERSION}"
    for i, node in enumerate(nodes):
        labels = node.get("labels") or {}
        if node.get("image") not in (None, pinned):
            problems.append(f"{where}: nodes[{i}]: [kind-image] image {node.get('image')} is not the pin {pinned}")
        if any(str(k).startswith("node-role.kubernetes.io/") for k in labels):
            problems.append(f"{where}: nodes[{i}]: [kind-labels] the kubelet may not set node-role.kubernetes.io/* labels")
        if node.get("role") == "worker" and labels.get(WORKER_LABEL_KEY) != WORKER_LABEL_VALUE:
            problems.append(f"{where}: nodes[{i}]: [kind-labels] worker lacks label {WORKER_LABEL_KEY}={WORKER_LABEL_VALUE}")
        if node.get("role") == "control-plane":
            if labels.get(WORKER_LABEL_KEY) == WORKER_LABEL_VALUE:
                problems.append(f"{where}: nodes[{i}]: [kind-labels] control-plane carries the worker label")
            for patch in node.get("kubeadmConfigPatches") or []:
                for doc in yaml.safe_load_all(patch):
                    registration = (doc or {}).get("nodeRegistration") or {}
                    if "taints" in registration and not registration["taints"]:
                        problems.append(f"{where}: nodes[{i}]: [kind-taint] control-plane NoSchedule taint removed")
    patches = "\n".join(config.get("containerdConfigPatches") or [])
    if not re.search(r'\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\s*\n\s*config_path\s*=\s*"'
                     + re.escape(REGISTRY_CONFIG_PATH) + '"', patches):
        problems.append(f"{where}: [kind-registry] containerdConfigPatches must set registry config_path = \"{REGISTRY_CONFIG_PATH}\"")
    if "registry.mirrors" in patches:
        problems.append(f"{where}: [kind-registry] registry.mirrors is ignored/fatal on containerd 2: use config_path")
    return problems


# --------------------------------------------------------------------------- policies on an app overlay


def _app_pods(objs: list[dict]) -> list[tuple[dict, dict]]:
    """(workload, pod spec) for every pod template."""
    out = []
    for obj in objs:
        spec = obj.get("spec") or {}
        if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            out.append((obj, (spec.get("template") or {}).get("spec") or {}))
        elif obj.get("kind") == "Pod":
            out.append((obj, spec))
    return out


def _image_problem(image: str) -> str | None:
    if not image or "${" in image:
        return f"image {image!r} is unresolved"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses the tag latest"
    return None


def _probe_port(probe: dict) -> Any:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            return probe[handler].get("port")
    return None


def container_problems(where: str, obj: dict, pod: dict) -> list[str]:
    p = []
    ident = f"{where}: {_ident(obj)}"
    psc = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        p.append(f"{ident}: [security] automountServiceAccountToken must be false (the app does not use the API)")
    if psc.get("runAsNonRoot") is not True:
        p.append(f"{ident}: [security] pod securityContext.runAsNonRoot must be true")
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if psc.get(key) != versions.APP_UID:
            p.append(f"{ident}: [security] pod securityContext.{key} must be {versions.APP_UID}")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        p.append(f"{ident}: [security] pod seccompProfile must be RuntimeDefault")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        p.append(f"{ident}: [security] host namespaces are not allowed")
    for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        cid = f"{ident}: container {c.get('name')}"
        problem = _image_problem(c.get("image", ""))
        if problem:
            p.append(f"{cid}: [image] {problem}")
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            p.append(f"{cid}: [security] allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            p.append(f"{cid}: [security] readOnlyRootFilesystem must be true")
        if sc.get("privileged"):
            p.append(f"{cid}: [security] privileged is not allowed")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            p.append(f"{cid}: [security] capabilities must drop ALL")
        if caps.get("add"):
            p.append(f"{cid}: [security] capabilities.add is not allowed")
        if sc.get("runAsUser") == 0:
            p.append(f"{cid}: [security] runAsUser 0 (root) is not allowed")
        res = c.get("resources") or {}
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (res.get(section) or {}):
                    p.append(f"{cid}: [resources] missing {section}.{resource}")
        for resource in ("cpu", "memory"):
            req, lim = (res.get("requests") or {}).get(resource), (res.get("limits") or {}).get(resource)
            if req is not None and lim is not None and parse_quantity(req) > parse_quantity(lim):
                p.append(f"{cid}: [resources] requests.{resource} {req} exceeds limits.{resource} {lim}")
        if c in (pod.get("initContainers") or []):
            continue
        port_names = {pt.get("name") for pt in c.get("ports") or []}
        port_numbers = {pt.get("containerPort") for pt in c.get("ports") or []}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c.get(kind)
            if not probe:
                p.append(f"{cid}: [probes] missing {kind}")
                continue
            port = _probe_port(probe)
            if port not in port_names and port not in port_numbers:
                p.append(f"{cid}: [probes] {kind} port {port!r} is not a container port")
        ready = (c.get("readinessProbe") or {}).get("httpGet") or {}
        live = (c.get("livenessProbe") or {}).get("httpGet") or {}
        start = c.get("startupProbe") or {}
        if ready and ready.get("path") != "/readyz":
            p.append(f"{cid}: [probes] readinessProbe must use /readyz, not {ready.get('path')}")
        if live and live.get("path") != "/healthz":
            p.append(f"{cid}: [probes] livenessProbe must use /healthz (a /readyz liveness would kill pods during the readiness delay), not {live.get('path')}")
        if start and (start.get("httpGet") or {}).get("path") == "/readyz":
            budget = start.get("periodSeconds", 10) * start.get("failureThreshold", 3) + start.get("initialDelaySeconds", 0)
            if budget <= READINESS_DELAY_SEC:
                p.append(f"{cid}: [probes] startupProbe on /readyz gives up after {budget}s, before the {READINESS_DELAY_SEC}s readiness delay")
    return p


def placement_problems(where: str, obj: dict, pod: dict) -> list[str]:
    ident = f"{where}: {_ident(obj)}"
    p = []
    terms = (((pod.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    selector = pod.get("nodeSelector") or {}

    def term_requires_worker(term: dict) -> bool:
        return any(
            e.get("key") == WORKER_LABEL_KEY and e.get("operator") == "In" and e.get("values") == [WORKER_LABEL_VALUE]
            for e in term.get("matchExpressions") or []
        )

    if not (selector.get(WORKER_LABEL_KEY) == WORKER_LABEL_VALUE or (terms and all(term_requires_worker(t) for t in terms))):
        p.append(f"{ident}: [placement] pods could land on the control-plane: require node label {WORKER_LABEL_KEY}={WORKER_LABEL_VALUE}")
    if pod.get("nodeName"):
        p.append(f"{ident}: [placement] nodeName pins the pod to a node")
    for tol in pod.get("tolerations") or []:
        if tol.get("key") in (CONTROL_PLANE_TAINT, None) and tol.get("operator") == "Exists" or tol.get("key") == CONTROL_PLANE_TAINT:
            p.append(f"{ident}: [placement] toleration {tol} lets pods onto the control-plane")
    spreads = [t for t in pod.get("topologySpreadConstraints") or [] if t.get("topologyKey") == "kubernetes.io/hostname"]
    if not spreads:
        p.append(f"{ident}: [placement] no topologySpreadConstraints over kubernetes.io/hostname (spread across workers)")
    return p


def network_problems(where: str, objs: list[dict], namespaces: set[str]) -> list[str]:
    p = []
    pols = _find(objs, "NetworkPolicy")
    for ns in sorted(namespaces):
        mine = [x for x in pols if x["metadata"].get("namespace") == ns]
        deny = [
            x for x in mine
            if (x["spec"].get("podSelector") or {}) == {}
            and set(x["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
            and not x["spec"].get("ingress") and not x["spec"].get("egress")
        ]
        if not deny:
            p.append(f"{where}: Namespace/{ns}: [netpol-default-deny] no default-deny NetworkPolicy for ingress and egress")
        dns = any(
            any(port.get("port") == 53 for rule in x["spec"].get("egress") or [] for port in rule.get("ports") or [])
            for x in mine
        )
        if not dns:
            p.append(f"{where}: Namespace/{ns}: [netpol-dns] no NetworkPolicy allows DNS egress (port 53)")
        for x in mine:
            for rule in x["spec"].get("ingress") or []:
                for peer in rule.get("from") or [{}]:
                    if "ipBlock" in peer:
                        p.append(f"{where}: {_ident(x)}: [netpol-ingress] ipBlock ingress is not allowed")
                    elif "namespaceSelector" in peer:
                        names = (peer["namespaceSelector"].get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                        if names != "monitoring":
                            p.append(f"{where}: {_ident(x)}: [netpol-ingress] ingress from namespaces other than monitoring")
                    elif "podSelector" not in peer:
                        p.append(f"{where}: {_ident(x)}: [netpol-ingress] ingress rule open to everything")
    return p


def env_problems(env: str, objs: list[dict]) -> list[str]:
    """Deployment/HPA/PDB/Service/quota/RBAC/monitoring policies for one overlay."""
    where = f"{FLUX_DIR}/apps/{env}"
    p = []
    deployments = _find(objs, "Deployment")
    hpas = _find(objs, "HorizontalPodAutoscaler")
    namespaces = {o["metadata"]["name"] for o in _find(objs, "Namespace")}
    if namespaces != {env}:
        p.append(f"{where}: [namespace] overlay must create exactly Namespace/{env}, got {sorted(namespaces)}")
    for obj in objs:
        if obj.get("kind") in RBAC_KINDS:
            p.append(f"{where}: {_ident(obj)}: [rbac] the app reads env vars, not the Kubernetes API: no RBAC or ServiceAccount")
        ns = (obj.get("metadata") or {}).get("namespace")
        if obj.get("kind") != "Namespace" and ns != env:
            p.append(f"{where}: {_ident(obj)}: [namespace] object outside namespace {env}")

    for obj, pod in _app_pods(objs):
        p += container_problems(where, obj, pod)
        p += placement_problems(where, obj, pod)
    p += network_problems(where, objs, namespaces)

    app = next((d for d in deployments if d["metadata"]["name"] == APP_NAME), None)
    if app is None:
        return p + [f"{where}: [deployment] no Deployment/{APP_NAME}"]
    pod = app["spec"]["template"]["spec"]
    pod_labels = app["spec"]["template"]["metadata"].get("labels") or {}
    container = next((c for c in pod.get("containers") or [] if c.get("name") == APP_NAME), None)
    if container is None:
        return p + [f"{where}: {_ident(app)}: [deployment] no container named {APP_NAME}"]
    if not all(pod_labels.get(k) == v for k, v in APP_LABEL.items()):
        p.append(f"{where}: {_ident(app)}: [deployment] pod template lacks label app.kubernetes.io/name=app")

    strategy = app["spec"].get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or str(rolling.get("maxUnavailable", "25%")) not in ("0", "0%"):
        p.append(f"{where}: {_ident(app)}: [rollout] rollingUpdate.maxUnavailable must be 0 (never below the desired count)")

    hpa = next((h for h in hpas if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
                and h["spec"]["scaleTargetRef"].get("name") == APP_NAME), None)
    if hpa is None:
        p.append(f"{where}: [hpa] no HorizontalPodAutoscaler targets Deployment/{APP_NAME}")
        min_r = max_r = app["spec"].get("replicas", 1)
    else:
        min_r, max_r = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        if "replicas" in app["spec"]:
            p.append(f"{where}: {_ident(app)}: [replicas] spec.replicas is set while {_ident(hpa)} owns the count (each reconcile would fight the HPA)")
        if min_r > max_r:
            p.append(f"{where}: {_ident(hpa)}: [hpa] minReplicas {min_r} exceeds maxReplicas {max_r}")
        metrics = {m.get("resource", {}).get("name") for m in hpa["spec"].get("metrics") or [] if m.get("type") == "Resource"}
        if not {"cpu", "memory"} <= metrics:
            p.append(f"{where}: {_ident(hpa)}: [hpa] must scale on cpu and memory, has {sorted(m for m in metrics if m)}")
        for m in hpa["spec"].get("metrics") or []:
            if (m.get("resource") or {}).get("name") == "memory":
                target = m["resource"]["target"].get("averageUtilization", 100)
                req = parse_quantity((container.get("resources") or {}).get("requests", {}).get("memory", 0))
                if req and target / 100 * req <= APP_PEAK_RSS_MIB * 2**20:
                    p.append(f"{where}: {_ident(hpa)}: [hpa] memory target {target}% of the request is at or below the app's normal {APP_PEAK_RSS_MIB} MiB: it would scale out at idle")

    for pdb in _find(objs, "PodDisruptionBudget"):
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            allowed = _scaled(spec["maxUnavailable"], min_r, round_up=True)
        elif "minAvailable" in spec:
            allowed = min_r - _scaled(spec["minAvailable"], min_r, round_up=True)
        else:
            allowed = 0
        if allowed < 1:
            p.append(f"{where}: {_ident(pdb)}: [pdb] allows {allowed} voluntary disruptions at {min_r} replica(s): it would block every node drain")

    # Service -> container port
    ports = {pt.get("name"): pt.get("containerPort") for pt in container.get("ports") or []}
    if ports.get("http") != APP_PORT:
        p.append(f"{where}: {_ident(app)}: [service-port] container {APP_NAME} must expose {APP_PORT} named http")
    services = _find(objs, "Service", APP_NAME)
    if not services:
        p.append(f"{where}: [service-port] no Service/{APP_NAME}")
    for svc in services:
        spec = svc["spec"]
        if spec.get("type", "ClusterIP") != "ClusterIP":
            p.append(f"{where}: {_ident(svc)}: [service-port] type must be ClusterIP")
        if not spec.get("selector") or not all(pod_labels.get(k) == v for k, v in spec["selector"].items()):
            p.append(f"{where}: {_ident(svc)}: [service-port] selector {spec.get('selector')} does not select the app's pods")
        for sp in spec.get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            if not (target in ports or target in ports.values()):
                p.append(f"{where}: {_ident(svc)}: [service-port] port {sp.get('port')} targets {target!r}, which is no container port")
        if not any(sp.get("port") == APP_PORT for sp in spec.get("ports") or []):
            p.append(f"{where}: {_ident(svc)}: [service-port] no port {APP_PORT} for kubectl port-forward")

    p += quota_problems(where, objs, app, max_r)
    return p


def quota_problems(where: str, objs: list[dict], app: dict, max_replicas: int) -> list[str]:
    p = []
    pod = app["spec"]["template"]["spec"]
    rolling = (app["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), max_replicas, round_up=True)
    peak_pods = max_replicas + surge
    per_pod: dict[str, float] = {}
    for c in pod.get("containers") or []:
        res = c.get("resources") or {}
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                value = (res.get(section) or {}).get(resource)
                if value is not None:
                    per_pod[f"{section}.{resource}"] = per_pod.get(f"{section}.{resource}", 0) + parse_quantity(value)
    quotas = _find(objs, "ResourceQuota")
    if not quotas:
        p.append(f"{where}: [quota] no ResourceQuota")
    for quota in quotas:
        hard = quota["spec"].get("hard") or {}
        if "pods" in hard and int(hard["pods"]) < peak_pods:
            p.append(f"{where}: {_ident(quota)}: [quota] pods {hard['pods']} < {peak_pods} (HPA max {max_replicas} + {surge} surge)")
        for key, amount in per_pod.items():
            if key in hard and parse_quantity(hard[key]) + 1e-9 < amount * peak_pods:
                p.append(f"{where}: {_ident(quota)}: [quota] {key} {hard[key]} < {peak_pods} pods x {amount:g} (HPA max {max_replicas} + {surge} surge): the app's pods don't fit")
        for key in ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory"):
            if key not in hard:
                p.append(f"{where}: {_ident(quota)}: [quota] hard.{key} missing")
    limitranges = _find(objs, "LimitRange")
    if not limitranges:
        p.append(f"{where}: [limitrange] no LimitRange")
    for lr in limitranges:
        for item in lr["spec"].get("limits") or []:
            if item.get("type") != "Container":
                continue
            for c in pod.get("containers") or []:
                res = c.get("resources") or {}
                for resource, bound in (item.get("max") or {}).items():
                    value = (res.get("limits") or {}).get(resource)
                    if value is not None and parse_quantity(value) > parse_quantity(bound):
                        p.append(f"{where}: {_ident(lr)}: [limitrange] container {c.get('name')} limits.{resource} {value} above max {bound}")
                for resource, bound in (item.get("min") or {}).items():
                    value = (res.get("requests") or {}).get(resource)
                    if value is not None and parse_quantity(value) < parse_quantity(bound):
                        p.append(f"{where}: {_ident(lr)}: [limitrange] container {c.get('name')} requests.{resource} {value} below min {bound}")
    return p


# --------------------------------------------------------------------------- observability


GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"


def observability_problems(rendered: dict[str, list[dict]]) -> list[str]:
    """Alert rules fully rendered (no kustomize $(VAR) left) and dashboard ConfigMaps
    holding valid JSON that Flux will not substitute into."""
    p = []
    for env in ENVIRONMENTS:
        for rule in _find(rendered.get(f"apps/{env}", []), "PrometheusRule"):
            for group in rule["spec"].get("groups") or []:
                for r in group.get("rules") or []:
                    text = json.dumps({"expr": r.get("expr"), "labels": r.get("labels")})
                    if "$(" in text:
                        p.append(f"{FLUX_DIR}/apps/{env}: {_ident(rule)}: [alerts] {r.get('alert') or r.get('record')}: "
                                 f"unresolved kustomize var in {text}")
    for cm in _find(rendered.get("infrastructure", []), "ConfigMap"):
        meta = cm.get("metadata") or {}
        if (meta.get("labels") or {}).get(GRAFANA_DASHBOARD_LABEL) is None:
            continue
        for key, value in (cm.get("data") or {}).items():
            try:
                json.loads(value)
            except ValueError as exc:
                p.append(f"{FLUX_DIR}/infrastructure: {_ident(cm)}: [dashboard] {key} is not JSON: {exc}")
        marks = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
        if marks.get("kustomize.toolkit.fluxcd.io/substitute") != "disabled":
            p.append(f"{FLUX_DIR}/infrastructure: {_ident(cm)}: [dashboard] needs kustomize.toolkit.fluxcd.io/substitute: "
                     f"disabled (Grafana's $variables are not Flux variables)")
    return p


# --------------------------------------------------------------------------- overlays vs base


def _overlay_values(overlay: pathlib.Path) -> dict[str, str]:
    """Environment values an overlay sets itself (generator literals, Secret stringData patches)."""
    doc = yaml.safe_load((overlay / "kustomization.yaml").read_text()) or {}
    values = {}
    for gen in doc.get("configMapGenerator") or []:
        for literal in gen.get("literals") or []:
            key, _, value = literal.partition("=")
            values[key] = value
    for patch in doc.get("patches") or []:
        if "path" not in patch:
            continue
        for pdoc in _load_docs((overlay / patch["path"]).read_text()):
            if pdoc.get("kind") in ("Secret", "ConfigMap"):
                values.update({k: str(v) for k, v in (pdoc.get("stringData") or pdoc.get("data") or {}).items()})
    return values


def overlay_env_problems(root: pathlib.Path, base_objs: list[dict]) -> list[str]:
    base_values: dict[str, str] = {}
    for obj in base_objs:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            base_values.update({k: str(v) for k, v in (obj.get("stringData") or obj.get("data") or {}).items()})
    p = []
    for env in ENVIRONMENTS:
        overlay = root / FLUX_DIR / "apps" / env
        own = _overlay_values(overlay)
        if not own:
            p.append(f"{FLUX_DIR}/apps/{env}: [overlay-env] no environment variables of its own")
        for key, value in own.items():
            if base_values.get(key) == value:
                p.append(f"{FLUX_DIR}/apps/{env}/kustomization.yaml: [overlay-env] {key}={value} duplicates the base")
    return p


# --------------------------------------------------------------------------- Flux wiring


def flux_problems(root: pathlib.Path, bootstrap: dict[str, list[dict]], rendered: dict[str, list[dict]]) -> list[str]:
    """Bootstrap objects: sources, Kustomizations, ordering, CRDs before users."""
    p = []
    for variant, objs in bootstrap.items():
        where = f"{FLUX_DIR}/bootstrap/{variant}"
        text = yaml.safe_dump_all(objs)
        if "${" in text:
            p.append(f"{where}: [bootstrap] contains ${{...}}: bootstrap is applied by kubectl, without Flux substitution")
        source_kind = {"oci": "OCIRepository", "git": "GitRepository"}[variant]
        sources = [o for o in objs if o.get("kind") == source_kind and o["metadata"].get("name") == SOURCE_NAME]
        if not sources:
            p.append(f"{where}: [bootstrap] no {source_kind} {SOURCE_NAME}")
        if variant == "oci":
            for src in sources:
                spec = src["spec"]
                if spec.get("url") != "oci://kind-registry:5000/lab-gitops" or (spec.get("ref") or {}).get("tag") != "latest" or spec.get("insecure") is not True:
                    p.append(f"{where}: {_ident(src)}: [bootstrap] want url oci://kind-registry:5000/lab-gitops, ref.tag latest, insecure true")
        prefix = "./" if variant == "oci" else f"./{FLUX_DIR}/"
        kss = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "Kustomization" and o.get("apiVersion", "").startswith("kustomize.toolkit.fluxcd.io/")}
        expected = {"infrastructure": "infrastructure", **{f"apps-{e}": f"apps/{e}" for e in ENVIRONMENTS}}
        for name, path in expected.items():
            ks = kss.get(name)
            if ks is None:
                p.append(f"{where}: [flux-ks] no Kustomization {name}")
                continue
            spec, ident = ks["spec"], f"{where}: {_ident(ks)}"
            if ks["metadata"].get("namespace") != "flux-system":
                p.append(f"{ident}: [flux-ks] must live in flux-system")
            if spec.get("path") != prefix + path:
                p.append(f"{ident}: [flux-ks] path {spec.get('path')} != {prefix + path}")
            elif not (root / FLUX_DIR / path).is_dir():
                p.append(f"{ident}: [flux-ks] path {path} does not exist under {FLUX_DIR}/")
            if spec.get("sourceRef") != {"kind": source_kind, "name": SOURCE_NAME}:
                p.append(f"{ident}: [flux-ks] sourceRef must be {source_kind}/{SOURCE_NAME}")
            for key in ("prune", "wait"):
                if spec.get(key) is not True:
                    p.append(f"{ident}: [flux-ks] {key} must be true")
            for key in ("timeout", "interval"):
                if not spec.get(key):
                    p.append(f"{ident}: [flux-ks] {key} missing")
            if name.startswith("apps-"):
                if {d.get("name") for d in spec.get("dependsOn") or []} != {"infrastructure"}:
                    p.append(f"{ident}: [crd-order] must dependsOn infrastructure (its ServiceMonitor needs the Prometheus Operator CRDs)")
                post = spec.get("postBuild") or {}
                if post.get("substituteStrategy") != "Always":
                    p.append(f"{ident}: [flux-ks] postBuild.substituteStrategy must be Always (defaults apply without lab-vars)")
                if {"kind": "ConfigMap", "name": VARS_CONFIGMAP, "optional": True} not in (post.get("substituteFrom") or []):
                    p.append(f"{ident}: [flux-ks] postBuild.substituteFrom must include optional ConfigMap {VARS_CONFIGMAP}")

        # Prometheus Operator objects only in layers that wait for a HelmRelease installing CRDs.
        crd_layers = {name for name, objs_ in rendered.items()
                      if any(o.get("kind") == "HelmRelease" and (o["spec"].get("install") or {}).get("crds") in ("Create", "CreateReplace")
                             for o in objs_)}
        layer_of = {"infrastructure": "infrastructure", **{f"apps-{e}": f"apps/{e}" for e in ENVIRONMENTS}}
        for name, ks in kss.items():
            layer = layer_of.get(name)
            objs_ = rendered.get(layer or "", [])
            if not any(o.get("apiVersion", "").startswith(PROMETHEUS_OPERATOR_GROUP + "/") for o in objs_):
                continue
            deps = [kss.get(d.get("name")) for d in ks["spec"].get("dependsOn") or []]
            if not any(dep is not None and dep["spec"].get("wait") is True and layer_of.get(dep["metadata"]["name"]) in crd_layers for dep in deps):
                p.append(f"{where}: {_ident(ks)}: [crd-order] renders {PROMETHEUS_OPERATOR_GROUP} objects but does not depend (wait: true) on the layer installing their CRDs")
    for layer in ("infrastructure",):
        for o in rendered.get(layer, []):
            if o.get("apiVersion", "").startswith(PROMETHEUS_OPERATOR_GROUP + "/"):
                p.append(f"{FLUX_DIR}/{layer}: {_ident(o)}: [crd-order] needs the Prometheus Operator CRDs installed by the same layer: move it to the apps layer")
    for o in rendered.get("infrastructure", []):
        if o.get("kind") == "HelmRelease":
            spec = o["spec"]
            if (spec.get("install") or {}).get("crds") != "Create" or (spec.get("upgrade") or {}).get("crds") != "CreateReplace":
                p.append(f"{FLUX_DIR}/infrastructure: {_ident(o)}: [helm] install.crds must be Create and upgrade.crds CreateReplace")
            if (spec.get("chartRef") or {}).get("kind") != "OCIRepository":
                p.append(f"{FLUX_DIR}/infrastructure: {_ident(o)}: [helm] chartRef must reference an OCIRepository")
    return p


def chart_version(objs: list[dict]) -> str | None:
    for o in objs:
        if o.get("kind") == "OCIRepository" and o["spec"].get("url", "").endswith("/kube-prometheus-stack"):
            return str((o["spec"].get("ref") or {}).get("tag"))
    return None


# --------------------------------------------------------------------------- DESIGN.md table

_ROW = re.compile(r"^\|\s*`(?P<sel>[^`]+)`\s*\|\s*(?P<value>[^|]+?)\s*\|")


def design_rows(text: str) -> list[tuple[str, str]]:
    """Rows `| `layer:Kind/name:dotted.path` | value | ... |` of the numbers table."""
    out = []
    in_table = False
    for line in text.splitlines():
        if line.strip().startswith("<!-- numbers:begin"):
            in_table = True
        elif line.strip().startswith("<!-- numbers:end"):
            in_table = False
        elif in_table:
            m = _ROW.match(line.strip())
            if m:
                out.append((m.group("sel"), m.group("value").strip()))
    return out


def lookup(rendered: dict[str, list[dict]], selector: str) -> Any:
    """`apps/dev:HorizontalPodAutoscaler/app:spec.minReplicas` -> value.
    Path segments: dict keys, list indexes, or `[key=value]` list filters."""
    layer, ref, path = selector.split(":", 2)
    kind, _, name = ref.partition("/")
    matches = [o for o in rendered.get(layer, []) if o.get("kind") == kind and o["metadata"].get("name") == name]
    if not matches:
        raise KeyError(f"no {ref} in {layer}")
    value: Any = matches[0]
    segs = re.findall(r"\[[^\]]+\]|[^.\[\]]+", path)
    i = 0
    while i < len(segs):
        seg = segs[i]
        if seg.startswith("["):
            key, _, want = seg[1:-1].partition("=")
            value = next(item for item in value if str(item.get(key)) == want)
        elif isinstance(value, list):
            value = value[int(seg)]
        else:
            # Keys may contain dots (`requests.cpu`): take the longest that exists.
            for j in range(len(segs), i, -1):
                joined = ".".join(segs[i:j])
                if joined in value:
                    value, i = value[joined], j - 1
                    break
            else:
                raise KeyError(seg)
        i += 1
    return value


def design_problems(root: pathlib.Path, rendered: dict[str, list[dict]]) -> list[str]:
    path = root / DESIGN_DOC
    if not path.exists():
        return [f"{DESIGN_DOC}: missing"]
    rows = design_rows(path.read_text())
    if not rows:
        return [f"{DESIGN_DOC}: [design] no numbers table (<!-- numbers:begin --> ... <!-- numbers:end -->)"]
    p = []
    for selector, quoted in rows:
        try:
            actual = lookup(rendered, selector)
        except (KeyError, IndexError, StopIteration, ValueError, TypeError) as exc:
            p.append(f"{DESIGN_DOC}: [design] `{selector}` does not resolve in the rendered manifests ({exc})")
            continue
        if str(actual) != quoted.strip("`"):
            p.append(f"{DESIGN_DOC}: [design] `{selector}` is {actual!r} in the manifests, the note says {quoted}")
    return p


def monitoring_problems(root: pathlib.Path, bootstrap: dict[str, list[dict]],
                        rendered: dict[str, list[dict]], variables: dict | None = None) -> list[str]:
    """MONITORING=crds and off, as the lab's bootstrap selects them (tasks/sync.py)."""
    from tasks import sync  # noqa: PLC0415 - sync imports the cluster modules; validate stays light
    p = []
    used = {o["kind"] for env in ENVIRONMENTS for o in rendered[f"apps/{env}"]
            if o.get("apiVersion", "").startswith(PROMETHEUS_OPERATOR_GROUP + "/")}
    for mode, path in sync.INFRASTRUCTURE_PATHS.items():
        where = f"{FLUX_DIR}/{path.lstrip('./')} (MONITORING={mode})"
        if not (root / FLUX_DIR / path).is_dir():
            p.append(f"{where}: [monitoring] the folder does not exist")
            continue
        objs = [copy.deepcopy(o) for o in bootstrap.get("oci", [])]
        sync.apply_monitoring(objs, mode)
        infra = [o for o in objs if o.get("kind") == "Kustomization" and o["metadata"]["name"] == "infrastructure"]
        if not infra or infra[0]["spec"].get("path") != path:
            p.append(f"{where}: [monitoring] the bootstrap's infrastructure Kustomization does not point here")
        if mode == "full":
            continue
        layer = render(root, root / FLUX_DIR / path, variables)
        p += schema_problems(layer, where)
        crds = {o["spec"]["names"]["kind"]: o for o in layer if o.get("kind") == "CustomResourceDefinition"
                and o["spec"].get("group") == PROMETHEUS_OPERATOR_GROUP}
        if mode == "crds":
            for kind in sorted(used - set(crds)):
                p.append(f"{where}: [monitoring] the apps render {kind} but this layer has no CRD for it")
            for kind, crd in sorted(crds.items()):
                if (crd["metadata"].get("annotations") or {}).get("kustomize.toolkit.fluxcd.io/prune") != "disabled":
                    p.append(f"{where}: CRD {kind}: [monitoring] needs kustomize.toolkit.fluxcd.io/prune: disabled "
                             "(switching modes must not delete every ServiceMonitor in the cluster)")
            if not _find(layer, "Namespace", "monitoring"):
                p.append(f"{where}: [monitoring] no Namespace monitoring (the app's NetworkPolicy admits scrapes from it)")
        if mode == "off":
            if crds or layer:
                p.append(f"{where}: [monitoring] must render nothing")
            for env in ENVIRONMENTS:
                ks = next((o for o in objs if o.get("kind") == "Kustomization"
                           and o["metadata"]["name"] == f"apps-{env}"), None)
                deleted = {((pt.get("target") or {}).get("kind"), (pt.get("target") or {}).get("name"))
                           for pt in ((ks or {}).get("spec") or {}).get("patches") or []
                           if "$patch: delete" in pt.get("patch", "")}
                for o in rendered[f"apps/{env}"]:
                    if o.get("apiVersion", "").startswith(PROMETHEUS_OPERATOR_GROUP + "/") \
                            and (o["kind"], o["metadata"]["name"]) not in deleted:
                        p.append(f"{where}: apps-{env}: [monitoring] {_ident(o)} stays, and nothing installs its CRD")
    return p


def promotion_problems(bootstrap: dict[str, list[dict]]) -> list[str]:
    """WATCH_ENVS=dev and dev,staging, as the lab's bootstrap pins the other environments (tasks/promote.py):
    schema-valid, and each pinned apps-<env> reads its own source at tag <env> and its own variables."""
    from tasks import promote  # noqa: PLC0415 - see monitoring_problems
    p = []
    for watched in ("dev", "dev,staging"):
        held = tuple(e for e in ENVIRONMENTS if e not in watched.split(","))
        where = f"{FLUX_DIR}/bootstrap/oci (WATCH_ENVS={watched})"
        objs = promote.apply_pinning([copy.deepcopy(o) for o in bootstrap.get("oci", [])], held)
        p += schema_problems(objs, where)
        sources = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "OCIRepository"}
        for env in ENVIRONMENTS:
            ks = next((o for o in objs if o.get("kind") == "Kustomization" and o["metadata"]["name"] == f"apps-{env}"), None)
            if ks is None:
                continue
            ref = (ks["spec"].get("sourceRef") or {}).get("name")
            subst = [s.get("name") for s in (ks["spec"].get("postBuild") or {}).get("substituteFrom") or []]
            want_ref, want_vars, want_tag = ((promote.source_name(env), promote.vars_name(env), env) if env in held
                                             else (SOURCE_NAME, VARS_CONFIGMAP, "latest"))
            tag = ((sources.get(ref) or {}).get("spec", {}).get("ref") or {}).get("tag")
            if ref != want_ref or tag != want_tag or want_vars not in subst:
                p.append(f"{where}: apps-{env}: [promotion] want source {want_ref} (tag {want_tag}) and "
                         f"ConfigMap {want_vars}, got {ref} (tag {tag}) and {subst}")
    return p


# --------------------------------------------------------------------------- entry point


def render_all(root: pathlib.Path, variables: dict | None = None) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(bootstrap variant -> objects, layer -> objects) for every Flux entry point.
    Layers: `infrastructure`, `apps/base` and `apps/<env>`."""
    flux = pathlib.Path(root) / FLUX_DIR
    bootstrap = {v: _load_docs(kustomize_build(flux / "bootstrap" / v)) for v in BOOTSTRAP_VARIANTS}
    rendered = {"infrastructure": render(root, flux / "infrastructure", variables),
                "apps/base": render(root, flux / "apps" / "base", variables)}
    for env in ENVIRONMENTS:
        rendered[f"apps/{env}"] = render(root, flux / "apps" / env, variables)
    return bootstrap, rendered


def validate(root: pathlib.Path, variables: dict | None = None) -> list[str]:
    """Every problem found in flux-cd/, kind-three-node.yaml and docs/DESIGN.md
    under `root` (the repository root); [] when all is well."""
    root = pathlib.Path(root)
    problems = kind_problems(root)
    try:
        bootstrap, rendered = render_all(root, variables)
    except RenderError as exc:
        return problems + [f"[render] {exc}"]
    for variant, objs in bootstrap.items():
        problems += schema_problems(objs, f"{FLUX_DIR}/bootstrap/{variant}")
    for layer, objs in rendered.items():
        if layer != "apps/base":
            problems += schema_problems(objs, f"{FLUX_DIR}/{layer}")
    for env in ENVIRONMENTS:
        problems += env_problems(env, rendered[f"apps/{env}"])
    problems += overlay_env_problems(root, rendered["apps/base"])
    problems += flux_problems(root, bootstrap, rendered)
    problems += monitoring_problems(root, bootstrap, rendered, variables)
    problems += promotion_problems(bootstrap)
    problems += observability_problems(rendered)
    if chart_version(rendered["infrastructure"]) != versions.KUBE_PROMETHEUS_STACK_CHART:
        problems.append(f"{FLUX_DIR}/infrastructure: [versions] kube-prometheus-stack chart {chart_version(rendered['infrastructure'])} != tasks/versions.py {versions.KUBE_PROMETHEUS_STACK_CHART}")
    problems += design_problems(root, rendered)
    return problems


def main() -> int:  # pragma: no cover - thin CLI for `python -m tasks.validate`
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    start = time.monotonic()
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1])
    problems = validate(root)
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s) in {time.monotonic() - start:.1f}s")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__: list[str] = ["RenderError", "envsubst", "kubectl_path", "render", "validate"]
