"""The lab's policies: what `doit validate` requires of kind-three-node.yaml and of each app overlay
beyond its schema — workers only, security contexts, probes, requests and limits, HPA/PDB/quota
arithmetic, NetworkPolicies, one namespace per environment, values of its own per overlay."""
from __future__ import annotations

import math
import pathlib
import re
from typing import Any

import yaml

from tasks import versions
from tasks.core import names
from tasks.validation.render import FLUX_DIR, load_docs
from tasks.validation.render import find as _find
from tasks.validation.render import ident as _ident
from tasks.validation.stack import MONITORING

KIND_CONFIG = "kind-three-node.yaml"
REGISTRY_CONFIG_PATH = "/etc/containerd/certs.d"
APP_NAME = names.APP
APP_LABEL = names.APP_LABELS
APP_PORT = names.APP_PORT
READINESS_DELAY_SEC = 0  # the lab's value (flux-cd/apps/base; app facts in docs/DESIGN.md)
APP_PEAK_RSS_MIB = 80  # measured footprint: 40-80 MiB RSS
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"}


# --------------------------------------------------------------------------- quantities


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
        if node.get("role") == "worker" and labels.get(names.WORKER_LABEL) != names.WORKER_VALUE:
            problems.append(f"{where}: nodes[{i}]: [kind-labels] worker lacks label {names.WORKER_SELECTOR}")
        if node.get("role") == "control-plane":
            if labels.get(names.WORKER_LABEL) == names.WORKER_VALUE:
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


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _tag_problem(image: str) -> str | None:
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses the tag latest"
    return None


def _image_problem(image: str) -> str | None:
    """Images run by digest (checkov's CKV_K8S_43): a tag can be moved, a digest names one image. Checked
    on the overlays as Flux applies them, lab-vars substituted (the lab's image is `name:tag@sha256:…`)."""
    if not image or "${" in image:
        return f"image {image!r} is unresolved"
    if _DIGEST.search(image):
        return None
    return f"{_tag_problem(image) or f'image {image!r} has a tag'}, not a digest (name:tag@sha256:…)"


def fallback_image_problems(base_objs: list[dict]) -> list[str]:
    """The manifests' default image (`${APP_IMAGE:=…}`, BASE_OBJS rendered without lab-vars) is never
    deployed while lab-vars exists; if it ever is, it must fail loudly: an explicit tag, never latest."""
    where = f"{FLUX_DIR}/{names.APPS_PATH}/base"
    p = []
    for obj, pod in _app_pods(base_objs):
        for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            problem = _tag_problem(c.get("image", ""))
            if problem:
                p.append(f"{where}: {_ident(obj)}: container {c.get('name')}: [image] without lab-vars: {problem}")
    return p


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
            e.get("key") == names.WORKER_LABEL and e.get("operator") == "In" and e.get("values") == [names.WORKER_VALUE]
            for e in term.get("matchExpressions") or []
        )

    if not (selector.get(names.WORKER_LABEL) == names.WORKER_VALUE or (terms and all(term_requires_worker(t) for t in terms))):
        p.append(f"{ident}: [placement] pods could land on the control-plane: require node label {names.WORKER_SELECTOR}")
    if pod.get("nodeName"):
        p.append(f"{ident}: [placement] nodeName pins the pod to a node")
    for tol in pod.get("tolerations") or []:
        if tol.get("key") in (names.CONTROL_PLANE_LABEL, None) and tol.get("operator") == "Exists" or tol.get("key") == names.CONTROL_PLANE_LABEL:
            p.append(f"{ident}: [placement] toleration {tol} lets pods onto the control-plane")
    spreads = [t for t in pod.get("topologySpreadConstraints") or [] if t.get("topologyKey") == "kubernetes.io/hostname"]
    if not spreads:
        p.append(f"{ident}: [placement] no topologySpreadConstraints over kubernetes.io/hostname (spread across workers)")
    return p


def network_problems(where: str, objs: list[dict], namespaces: set[str], scraper: str = MONITORING.namespace) -> list[str]:
    """Default deny, DNS egress, and ingress only from pods or from the namespace that scrapes."""
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
                        admitted = (peer["namespaceSelector"].get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                        if admitted != scraper:
                            p.append(f"{where}: {_ident(x)}: [netpol-ingress] ingress from namespaces other than {scraper}")
                    elif "podSelector" not in peer:
                        p.append(f"{where}: {_ident(x)}: [netpol-ingress] ingress rule open to everything")
    return p


def env_problems(env: str, objs: list[dict]) -> list[str]:
    """Deployment/HPA/PDB/Service/quota/RBAC/monitoring policies for one overlay."""
    where = f"{FLUX_DIR}/{names.APP_PATHS[env]}"
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
        p.append(f"{where}: {_ident(app)}: [deployment] pod template lacks label {names.APP_SELECTOR}")

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
        for pdoc in load_docs((overlay / patch["path"]).read_text()):
            if pdoc.get("kind") in ("Secret", "ConfigMap"):
                values.update({k: str(v) for k, v in (pdoc.get("stringData") or pdoc.get("data") or {}).items()})
    return values


def overlay_env_problems(root: pathlib.Path, base_objs: list[dict]) -> list[str]:
    base_values: dict[str, str] = {}
    for obj in base_objs:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            base_values.update({k: str(v) for k, v in (obj.get("stringData") or obj.get("data") or {}).items()})
    p = []
    for path in names.APP_PATHS.values():
        overlay = root / FLUX_DIR / path
        own = _overlay_values(overlay)
        if not own:
            p.append(f"{FLUX_DIR}/{path}: [overlay-env] no environment variables of its own")
        for key, value in own.items():
            if base_values.get(key) == value:
                p.append(f"{FLUX_DIR}/{path}/kustomization.yaml: [overlay-env] {key}={value} duplicates the base")
    return p
