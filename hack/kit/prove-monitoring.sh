#!/usr/bin/env bash
# Proof that the kit's monitoring parts run kube-prometheus-stack on a machine that reaches no
# registry: a one-node kind cluster from the kit's node image, the kit's images loaded into it,
# the chart installed by helm from the kit's chart server (the OCI artifact `mirror_fill` copies)
# with the lab's values and the sandbox's grafana.enabled=false, then: every pod runs (no pull:
# the names are the chart's), the admission webhook got its certificate from the certgen
# stand-in (an invalid PrometheusRule is refused through it), Prometheus scrapes its targets
# and serves its UI, and the dashboard sidecar stand-in turns a labelled ConfigMap into a file.
# Test tooling, like the rest of hack/kit. Holds no lock itself: run it as
#
#   flock /tmp/reallab.lock hack/kit/prove-monitoring.sh [CLUSTER_NAME]   (KEEP=1 keeps the cluster)
set -o errexit -o nounset -o pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NAME=${1:-kit-monitoring}
cd "$ROOT"
kit() { python3 hack/kit/kit.py "$@"; }
kit build kind node prometheus-operator prometheus kube-state-metrics node-exporter webhook-certgen \
  k8s-sidecar prom-chart
eval "$(kit env)"
v() { python3 -c "from tasks import versions as v; print(v.$1)"; }
node_image="$(v KIND_NODE_IMAGE_REPO):$(v K8S_VERSION)"
chart_entry=$(kit path prom-chart)
helm="$chart_entry/tools/helm"
ctx="kind-$NAME"
k() { kubectl --context "$ctx" "$@"; }
fail() { echo "prove-monitoring: FAIL: $*" >&2; exit 1; }
pf=""
cleanup() {
  [ -z "$pf" ] || kill "$pf" 2>/dev/null || true
  kit chart-remote stop >/dev/null
  [ "${KEEP:-0}" = 1 ] || kind delete cluster --name "$NAME"
}
trap cleanup EXIT
export HELM_CACHE_HOME=$(mktemp -d) HELM_CONFIG_HOME=$(mktemp -d) HELM_DATA_HOME=$(mktemp -d)

kind create cluster --name "$NAME" --image "$node_image" --wait 5m
# The kit's images, under the names the chart renders with grafana.enabled=false
# (images-sandbox.txt), and the dashboard sidecar's stand-in, proven below on its own.
mapfile -t images < <(cat "$chart_entry/images-sandbox.txt"; v GRAFANA_SIDECAR_IMAGE)
kind load docker-image --name "$NAME" "${images[@]}"

# --- the chart, from the kit's chart server as `doit mirror_fill` reads it ---
remote=$(kit chart-remote)                      # ghcr.io=http://127.0.0.1:<port>
url=${remote#*=}
repo=$(cut -d' ' -f1 "$chart_entry/chart.txt")  # ghcr.io/<path>:<version>
path=${repo#*/}
python3 -c 'import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["spec"]["values"]))' \
  flux-cd/infrastructure/monitoring/release.yaml > "$HELM_CONFIG_HOME/lab-values.yaml"
"$helm" install kube-prometheus-stack "oci://${url#http://}/${path%:*}" --version "${path##*:}" --plain-http \
  --namespace monitoring --create-namespace -f "$HELM_CONFIG_HOME/lab-values.yaml" --set grafana.enabled=false \
  --wait --timeout 10m
for _ in $(seq 120); do k -n monitoring get statefulset prometheus-kube-prometheus-stack-prometheus >/dev/null 2>&1 && break; sleep 2; done
k -n monitoring rollout status statefulset/prometheus-kube-prometheus-stack-prometheus --timeout=5m
k -n monitoring get pods -o wide
bad=$(k -n monitoring get pods --no-headers | awk '$3 != "Running" && $3 != "Completed" {print $1 " " $3}')
[ -z "$bad" ] || fail "pods not running: $bad"

# --- certgen stand-in: the Secret it made is what the webhooks trust and what the operator serves ---
ca=$(k -n monitoring get secret kube-prometheus-stack-admission -o jsonpath='{.data.ca}')
[ -n "$ca" ] || fail "no CA in secret kube-prometheus-stack-admission"
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  [ "$(k get "$kind" kube-prometheus-stack-admission -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" = "$ca" ] \
    || fail "$kind kube-prometheus-stack-admission does not carry the Secret's CA"
done
# The webhook ignores failures (the chart's default), so only a working TLS path refuses this rule.
if out=$(k -n monitoring apply -f - 2>&1 <<'YAML'
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: kit-invalid}
spec: {groups: [{name: kit, rules: [{alert: Broken, expr: 'rate(up[5m'}]}]}
YAML
); then fail "an invalid PrometheusRule was admitted: the webhook did not answer ($out)"; fi
grep -qi 'denied\|invalid' <<<"$out" || fail "unexpected refusal: $out"

# --- Prometheus: targets up, UI served from the binary ---
k -n monitoring port-forward svc/kube-prometheus-stack-prometheus 19090:9090 >/dev/null 2>&1 &
pf=$!
for _ in $(seq 60); do curl -fsS -o /dev/null http://127.0.0.1:19090/-/ready 2>/dev/null && break; sleep 1; done
for _ in $(seq 60); do
  up=$(curl -fsS 'http://127.0.0.1:19090/api/v1/query?query=up' | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(" ".join(sorted({x["metric"]["job"] for x in r if x["value"][1] == "1"})))')
  grep -q node-exporter <<<"$up" && grep -q kube-state-metrics <<<"$up" && break
  sleep 5
done
echo "jobs up: $up"
for job in node-exporter kube-state-metrics kube-prometheus-stack-operator; do
  grep -qw -- "$job" <<<"$up" || fail "job $job is not up in Prometheus (up: $up)"
done
curl -fsS http://127.0.0.1:19090/targets | grep -q '<div id="root">' || fail "no UI at /targets"

# --- k8s-sidecar stand-in, as Grafana's chart runs it (dashboards from labelled ConfigMaps) ---
k -n monitoring apply -f - <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: kit-sidecar}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: kit-sidecar}
rules: [{apiGroups: [""], resources: [configmaps, secrets], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kit-sidecar}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kit-sidecar}
subjects: [{kind: ServiceAccount, name: kit-sidecar, namespace: monitoring}]
---
apiVersion: v1
kind: Pod
metadata: {name: kit-sidecar}
spec:
  serviceAccountName: kit-sidecar
  securityContext: {runAsUser: 472, runAsGroup: 472, fsGroup: 472}
  containers:
  - name: grafana-sc-dashboard
    image: $(v GRAFANA_SIDECAR_IMAGE)
    imagePullPolicy: IfNotPresent
    env:
    - {name: METHOD, value: WATCH}
    - {name: LABEL, value: grafana_dashboard}
    - {name: LABEL_VALUE, value: "1"}
    - {name: FOLDER, value: /tmp/dashboards}
    - {name: RESOURCE, value: both}
    - {name: NAMESPACE, value: monitoring}
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}
    volumeMounts: [{name: dashboards, mountPath: /tmp/dashboards}]
  volumes: [{name: dashboards, emptyDir: {}}]
YAML
k -n monitoring wait --for=condition=Ready pod/kit-sidecar --timeout=120s
k -n monitoring create configmap kit-dashboard --from-literal=kit.json='{"title":"kit"}'
k -n monitoring label configmap kit-dashboard grafana_dashboard=1
for _ in $(seq 30); do k -n monitoring exec kit-sidecar -- cat /tmp/dashboards/kit.json 2>/dev/null | grep -q '"kit"' && break; sleep 1; done
k -n monitoring exec kit-sidecar -- cat /tmp/dashboards/kit.json | grep -q '"kit"' || fail "the sidecar wrote no kit.json"
k -n monitoring delete configmap kit-dashboard
for _ in $(seq 30); do k -n monitoring exec kit-sidecar -- test -e /tmp/dashboards/kit.json || break; sleep 1; done
! k -n monitoring exec kit-sidecar -- test -e /tmp/dashboards/kit.json || fail "the sidecar kept kit.json after its ConfigMap went"
echo "prove-monitoring: OK (kube-prometheus-stack $(v KUBE_PROMETHEUS_STACK_CHART) from the kit's images and chart server)"
