"""Each policy is shown to fail on a deliberately broken copy of the tree.

A case copies flux-cd/ (+ kind config, design note) to tmp_path, breaks one
thing, runs tasks.validation.validate on the copy and asserts that the specific
policy reports it.
"""

from __future__ import annotations

import copy
import re

import pytest
from gitops_helpers import edit_yaml, find, requires_kubectl

from tasks import validation as v

pytestmark = requires_kubectl

APPS = "flux-cd/apps"
DEPLOYMENT = f"{APPS}/base/deployment.yaml"


def container(docs):
    return find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def pod(docs):
    return find(docs, "Deployment")["spec"]["template"]["spec"]


def set_image(image):
    return lambda d: container(d).update(image=image)


def add_docs(*new):
    return lambda d: d + [copy.deepcopy(x) for x in new]


ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "app"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}
ROLE_BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "app"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app"},
                "subjects": [{"kind": "ServiceAccount", "name": "default"}]}
SERVICE_MONITOR = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                   "metadata": {"name": "prometheus", "namespace": "monitoring"},
                   "spec": {"selector": {"matchLabels": {"app": "x"}}, "endpoints": [{"port": "web"}]}}


IMAGE_BY_TAG_PATCH = {
    "target": {"kind": "Deployment", "name": "app"},
    "patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
             "      containers:\n        - name: app\n          image: localhost:5001/lab-app:0.2.0\n",
}


def drop_default_deny(docs):
    return [d for d in docs if d["metadata"]["name"] != "default-deny"]


def without_dependson(docs):
    for d in docs:
        d["spec"].pop("dependsOn", None)


def append_literal(literal):
    def change(docs):
        docs[0]["configMapGenerator"][0]["literals"].append(literal)
    return change


CASES = [
    # section 3/5: containers
    ("no-liveness-probe", DEPLOYMENT, lambda d: container(d).pop("livenessProbe"), "[probes] missing livenessProbe"),
    ("no-startup-probe", DEPLOYMENT, lambda d: container(d).pop("startupProbe"), "[probes] missing startupProbe"),
    ("liveness-on-readyz", DEPLOYMENT, lambda d: container(d)["livenessProbe"]["httpGet"].update(path="/readyz"), "[probes] livenessProbe must use /healthz"),
    ("probe-wrong-port", DEPLOYMENT, lambda d: container(d)["readinessProbe"]["httpGet"].update(port=9000), "[probes] readinessProbe port"),
    ("no-limits", DEPLOYMENT, lambda d: container(d)["resources"].pop("limits"), "[resources] missing limits.cpu"),
    ("no-requests", DEPLOYMENT, lambda d: container(d)["resources"].pop("requests"), "[resources] missing requests.memory"),
    ("writable-root", DEPLOYMENT, lambda d: container(d)["securityContext"].update(readOnlyRootFilesystem=False), "[security] readOnlyRootFilesystem"),
    ("privilege-escalation", DEPLOYMENT, lambda d: container(d)["securityContext"].pop("allowPrivilegeEscalation"), "[security] allowPrivilegeEscalation"),
    ("capabilities-kept", DEPLOYMENT, lambda d: container(d)["securityContext"].pop("capabilities"), "[security] capabilities must drop ALL"),
    ("no-seccomp", DEPLOYMENT, lambda d: pod(d)["securityContext"].pop("seccompProfile"), "[security] pod seccompProfile"),
    ("root-user", DEPLOYMENT, lambda d: pod(d)["securityContext"].update(runAsUser=0), "[security] pod securityContext.runAsUser"),
    ("sa-token-mounted", DEPLOYMENT, lambda d: pod(d).pop("automountServiceAccountToken"), "[security] automountServiceAccountToken"),
    ("image-latest", DEPLOYMENT, set_image("${APP_IMAGE:=localhost:5001/lab-app:latest}"), "[image]"),
    ("image-no-tag", DEPLOYMENT, set_image("${APP_IMAGE:=localhost:5001/lab-app}"), "has no tag"),
    # an image by tag in what Flux applies (lab-vars substituted): by digest or reported
    ("overlay-image-by-tag", f"{APPS}/dev/kustomization.yaml", lambda d: d[0]["patches"].append(IMAGE_BY_TAG_PATCH),
     "[image] image 'localhost:5001/lab-app:0.2.0' has a tag, not a digest"),
    ("sidecar-by-tag", DEPLOYMENT, lambda d: pod(d)["containers"].append(dict(container(d), name="sidecar",
                                                                               image="busybox:1.36")),
     "container sidecar: [image] image 'busybox:1.36' has a tag, not a digest"),
    ("control-plane-possible", DEPLOYMENT, lambda d: pod(d).pop("affinity"), "[placement] pods could land on the control-plane"),
    ("control-plane-toleration", DEPLOYMENT,
     lambda d: pod(d).update(tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]),
     "[placement] toleration"),
    ("no-spread", DEPLOYMENT, lambda d: pod(d).pop("topologySpreadConstraints"), "[placement] no topologySpreadConstraints"),
    ("rollout-drops-below-desired", DEPLOYMENT, lambda d: find(d, "Deployment")["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1), "[rollout]"),
    # section 3: namespace-level objects
    ("no-default-deny", f"{APPS}/base/networkpolicies.yaml", drop_default_deny, "[netpol-default-deny]"),
    ("scrape-from-any-namespace", f"{APPS}/base/networkpolicies.yaml",
     lambda d: find(d, "NetworkPolicy", "allow-monitoring-scrape")["spec"]["ingress"][0]["from"][0].update(namespaceSelector={}),
     "[netpol-ingress]"),
    ("quota-too-small-dev", f"{APPS}/base/quota.yaml", lambda d: d[0]["spec"]["hard"].update(pods="2"), "[quota] pods 2 < 4"),
    ("quota-memory-too-small", f"{APPS}/production/quota-patch.yaml", lambda d: d[0]["spec"]["hard"].update({"limits.memory": "1Gi"}), "[quota] limits.memory 1Gi"),
    ("hpa-max-outgrows-quota", f"{APPS}/staging/hpa-patch.yaml", lambda d: d[0]["spec"].update(maxReplicas=8), "[quota]"),
    ("hpa-min-above-max", f"{APPS}/staging/hpa-patch.yaml", lambda d: d[0]["spec"].update(minReplicas=5), "[hpa] minReplicas 5 exceeds maxReplicas 4"),
    ("hpa-cpu-only", f"{APPS}/base/hpa.yaml", lambda d: d[0]["spec"]["metrics"].pop(), "[hpa] must scale on cpu and memory"),
    ("service-port-misses-container", f"{APPS}/base/service.yaml", lambda d: d[0]["spec"]["ports"][0].update(targetPort=8080), "[service-port] port 8000 targets 8080"),
    ("service-not-clusterip", f"{APPS}/base/service.yaml", lambda d: d[0]["spec"].update(type="NodePort"), "[service-port] type must be ClusterIP"),
    # section 4: the original's defects
    ("replicas-forced-with-hpa", f"{APPS}/production/resources-patch.yaml", lambda d: d[0]["spec"].update(replicas=3), "[replicas]"),
    ("pdb-blocks-drain", f"{APPS}/base/pdb.yaml", lambda d: d[0]["spec"].pop("maxUnavailable") and None or d[0]["spec"].update(minAvailable="50%"), "[pdb] allows 0 voluntary disruptions at 1 replica"),
    ("unused-rbac", f"{APPS}/base/kustomization.yaml", None, "[rbac]"),
    ("servicemonitor-before-crd", "flux-cd/bootstrap/base/apps.yaml", without_dependson, "[crd-order]"),
    ("servicemonitor-in-infrastructure", "flux-cd/infrastructure/monitoring/release.yaml", add_docs(SERVICE_MONITOR), "[crd-order]"),
    ("overlay-duplicates-base", f"{APPS}/dev/kustomization.yaml", append_literal("READINESS_DELAY_SEC=0"), "[overlay-env] READINESS_DELAY_SEC=0 duplicates the base"),
    # wiring and schemas
    ("helm-crds-not-managed", "flux-cd/infrastructure/monitoring/release.yaml", lambda d: d[0]["spec"]["upgrade"].pop("crds"), "[helm]"),
    ("apps-no-substitute-strategy", "flux-cd/bootstrap/base/apps.yaml", lambda d: d[0]["spec"]["postBuild"].pop("substituteStrategy"), "[flux-ks] postBuild.substituteStrategy"),
    ("apps-no-wait", "flux-cd/bootstrap/base/apps.yaml", lambda d: d[1]["spec"].update(wait=False), "[flux-ks] wait must be true"),
    ("ks-path-missing", "flux-cd/bootstrap/base/infrastructure.yaml", lambda d: d[0]["spec"].update(path="./infra"), "[flux-ks] path"),
    ("bootstrap-needs-substitution", "flux-cd/bootstrap/oci/source.yaml", lambda d: d[0]["spec"].update(url="oci://${REGISTRY}/lab-gitops"), "[bootstrap]"),
    ("unknown-helmrelease-field", "flux-cd/infrastructure/monitoring/release.yaml", lambda d: d[0]["spec"]["install"].update(crdPolicy="Create"), "[schema] spec.install"),
    ("unknown-deployment-field", DEPLOYMENT, lambda d: container(d).update(probes={}), "[schema]"),
    ("bad-kustomization-interval", "flux-cd/bootstrap/base/infrastructure.yaml", lambda d: d[0]["spec"].update(interval="ten minutes"), "[schema] spec.interval"),
    ("bad-servicemonitor", f"{APPS}/base/servicemonitor.yaml", lambda d: d[0]["spec"].pop("selector"), "[schema]"),
    ("monitoring-request-above-limit", "flux-cd/infrastructure/monitoring/release.yaml",
     lambda d: d[0]["spec"]["values"]["prometheus"]["prometheusSpec"]["resources"]["requests"].update(memory="2Gi"),
     "[sizing] prometheus.prometheusSpec.resources: requests.memory 2Gi exceeds limits.memory 1Gi"),
    ("monitoring-component-unsized", "flux-cd/infrastructure/monitoring/release.yaml",
     lambda d: d[0]["spec"]["values"]["kube-state-metrics"].pop("resources"),
     "[sizing] kube-state-metrics.resources sets no requests.cpu, requests.memory, limits.memory"),
    ("chart-version-drift", "flux-cd/infrastructure/monitoring/repository.yaml", lambda d: d[0]["spec"]["ref"].update(tag="1.2.3"), "[versions]"),
    # kustomize v5 warns on deprecated fields and still renders: validate fails on the warning
    ("kustomize-deprecated-vars", f"{APPS}/base/kustomization.yaml",
     lambda d: d[0].update(vars=[{"name": "APP_SERVICE", "objref": {"apiVersion": "v1", "kind": "Service", "name": "app"},
                                  "fieldref": {"fieldpath": "metadata.name"}}]),
     "'vars' is deprecated"),
]


@pytest.mark.parametrize(("name", "rel", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_policy_reports_broken_copy(tree, name, rel, change, expected):
    if name == "unused-rbac":
        (tree / APPS / "base/rbac.yaml").write_text(
            __import__("yaml").safe_dump_all([ROLE, ROLE_BINDING], sort_keys=False))
        edit_yaml(tree / rel, lambda d: d[0]["resources"].append("rbac.yaml"))
    else:
        edit_yaml(tree / rel, change)
    problems = v.validate(tree)
    assert any(expected in p for p in problems), "\n".join(problems) or "no problem reported"


def test_unbroken_copy_is_clean(tree):
    assert v.validate(tree) == []


def test_the_overlays_are_checked_as_flux_applies_them_with_lab_vars(tree):
    """What validate checks is what Flux applies: lab-vars substituted, the image by digest as sync writes
    it (so the `${APP_IMAGE:=…}` placeholder's default is no finding); the same tree with lab-vars absent,
    or lab-vars naming an image by tag, is reported."""
    assert v.validate(tree) == []
    from tasks.validation.render import deployed_vars
    image = deployed_vars()["APP_IMAGE"]
    assert re.fullmatch(r"localhost:\d+/lab-app:[0-9a-f]{12}@sha256:[0-9a-f]{64}", image), image
    for variables in ({}, {"APP_IMAGE": image.split("@")[0]}):
        problems = v.validate(tree, variables)
        digest = [p for p in problems if "[image]" in p and "not a digest" in p]
        assert len(digest) == 3, problems  # the app in each environment
