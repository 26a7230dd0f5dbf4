"""Every pinned version the lab uses, in one place.

Manifests that cannot import Python (flux-cd/, hack/) repeat a few of these
values; tests/test_versions_pinned.py fails the moment they drift apart.
"""

# --- command-line tools -----------------------------------------------------
# Minimum versions we accept on the user's PATH (floors: each one's rule and reason is in
# tasks/core/floors.py, the one place they are enforced), and the versions CI installs.
KIND_MIN_VERSION = "0.27.0"  # first release whose node images ship containerd 2.x
# A node of Kubernetes >= key needs kind >= value: kubeadm 1.36 removed kubeadm.k8s.io/v1beta3 and
# kind writes v1beta4 for 1.36+ nodes only from v0.32.0 (kind commit "start using v1beta4 in v1.36.0+").
KIND_MIN_VERSION_FOR_NODE = {"1.36.0": "0.32.0"}
KIND_VERSION = "0.32.0"
# postBuild.substituteStrategy (flux-cd/bootstrap/base/apps.yaml) first appears in kustomize-controller
# v1.9.0, i.e. Flux 2.9; older controllers reject the Kustomization on strict decoding.
FLUX_MIN_VERSION = "2.9.0"
FLUX_VERSION = "2.9.4"
# kubectl is supported within one minor version of the API server (Kubernetes version skew
# policy); the oldest cluster the lab takes is 1.34, so the floor is 1.33 (kustomize v5 since 1.27).
KUBECTL_MIN_VERSION = "1.33.0"
KUBECTL_MAX_SKEW = 1  # minor versions, older or newer than the cluster
KUBECTL_VERSION = "1.36.1"
DOCKER_MIN_VERSION = "20.10.0"  # `docker ps --format {{.State}}` (docker/cli#2000)

# --- cluster ------------------------------------------------------------------
# Flux 2.8/2.9 `flux check --pre` wants Kubernetes >= 1.33.
K8S_VERSION = "v1.36.1"
KIND_NODE_IMAGE_REPO = "kindest/node"
# The node image of K8S_VERSION, pinned by digest beside its tag: kind v0.32.0's default,
# kindest/node:v1.36.1@sha256:3489…, from kind's pkg/apis/config/defaults/image.go at v0.32.0
# (its release notes list the same). A tag can be re-pushed; a digest cannot. Used only while
# K8S_VERSION is the pinned one; KIND_NODE_IMAGE=kindest/node:vX.Y.Z (a tag alone) overrides it,
# e.g. for an image built locally, which has no registry digest.
KIND_NODE_IMAGE_DIGEST = "sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
K8S_MIN_VERSION_FOR_FLUX = "1.33.0"

# --- in-cluster components ----------------------------------------------------
METRICS_SERVER_VERSION = "v0.9.0"
METRICS_SERVER_MIN_K8S = "1.34.0"  # metrics-server 0.9 supports Kubernetes 1.34+ (0.8.x: 1.31+)

# --- kube-prometheus-stack: the chart and every image it pulls ----------------------
# Known before any pod runs, so MIRRORS=offline can refuse in seconds naming what is missing
# (the alternative, rendering the chart, needs helm and the chart at hand; see docs/DESIGN.md).
# What chart 88.5.3 (operator v0.93.1) renders with its own defaults, read from its values.yaml and
# templates, subcharts included: kube-state-metrics 8.4.0, prometheus-node-exporter 4.56.1 (the parent
# sets image.distroless: true), grafana 12.11.1 (app 13.2.0). The chart pins tags, no digests.
# tasks/steps/stack_images.py applies the lab's HelmRelease values (flux-cd/infrastructure/monitoring/
# release.yaml) on top: a component they disable is not pulled, an image they override replaces its pin.
KUBE_PROMETHEUS_STACK_CHART = "88.5.3"
KUBE_PROMETHEUS_STACK_IMAGES = {
    "prometheus-operator": "quay.io/prometheus-operator/prometheus-operator:v0.93.1",
    "prometheus-config-reloader": "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
    "prometheus": "quay.io/prometheus/prometheus:v3.14.0-distroless",
    "alertmanager": "quay.io/prometheus/alertmanager:v0.34.0",
    "kube-state-metrics": "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
    "node-exporter": "quay.io/prometheus/node-exporter:v1.12.1-distroless",
    # the admission webhook's certificate Jobs (Helm hooks, before and after install/upgrade)
    "kube-webhook-certgen": "ghcr.io/jkroepke/kube-webhook-certgen:1.8.7",
    "grafana": "docker.io/grafana/grafana:13.2.0",
    "k8s-sidecar": "quay.io/kiwigrid/k8s-sidecar:2.10.1",  # grafana's dashboard/datasource loader
}

# --- images -------------------------------------------------------------------
REGISTRY_IMAGE = "registry:3"
# Interactive debug shells (debug_container, debug_app, debug_monitoring).
DEBUG_IMAGE = "nicolaka/netshoot:v0.13"
# Non-interactive probes (debug_metrics): small, has curl.
CURL_IMAGE = "curlimages/curl:8.10.1"

# The same pins by name, for the kit's parts (hack/kit builds each of them as an env variable);
# the values live in KUBE_PROMETHEUS_STACK_IMAGES above, only there.
PROMETHEUS_OPERATOR_IMAGE = KUBE_PROMETHEUS_STACK_IMAGES["prometheus-operator"]
PROMETHEUS_CONFIG_RELOADER_IMAGE = KUBE_PROMETHEUS_STACK_IMAGES["prometheus-config-reloader"]
PROMETHEUS_IMAGE = KUBE_PROMETHEUS_STACK_IMAGES["prometheus"]
KUBE_STATE_METRICS_IMAGE = KUBE_PROMETHEUS_STACK_IMAGES["kube-state-metrics"]
NODE_EXPORTER_IMAGE = KUBE_PROMETHEUS_STACK_IMAGES["node-exporter"]
KUBE_WEBHOOK_CERTGEN_IMAGE = KUBE_PROMETHEUS_STACK_IMAGES["kube-webhook-certgen"]
GRAFANA_SIDECAR_IMAGE = KUBE_PROMETHEUS_STACK_IMAGES["k8s-sidecar"]

# --- app ----------------------------------------------------------------------
APP_IMAGE_NAME = "lab-app"
APP_UID = 10001
APP_GID = 10001
