#!/usr/bin/env bash
# kube-prometheus-stack's chart (KUBE_PROMETHEUS_STACK_CHART) as the OCI artifact ghcr.io serves,
# stored by the kit's registry image in $KIT_OUT/registry, under the path the lab's OCIRepository
# names; `kit.py chart-remote` serves that folder so `doit mirror_fill` copies it as from ghcr.io.
# The chart comes from the project's shared/charts (packaged unchanged from its public sources;
# machines here reach no chart repository); `helm push` (Helm KIT_HELM, the release Flux's
# helm-controller builds on, from its Go module) makes the artifact, as the chart's maintainers' does.
# Also: tools/helm, and the images the chart renders with the lab's values (images-*.txt).
set -o errexit -o nounset -o pipefail
CHART=kube-prometheus-stack
# sha256 of shared/charts/kube-prometheus-stack-88.5.3.tgz (its README gives source, tag and commit)
CHART_SHA256=5fb6bc0de7ea2653c9bc10a44b73f18cef53600ee9284518d3f80fa7cf7f9db4
file="$CHART-$KUBE_PROMETHEUS_STACK_CHART.tgz"
dirs=(${LAB_CHARTS_DIR:-} "$KIT_ROOT/../shared/charts" /work/shared/charts)
tgz=""
for dir in "${dirs[@]}"; do [ -f "$dir/$file" ] && { tgz="$dir/$file"; break; }; done
if [ -z "$tgz" ]; then
  echo "prom-chart: $file is in none of ${dirs[*]}: it comes with the project's shared/charts; set LAB_CHARTS_DIR to the folder holding it" >&2
  exit 1
fi
sum=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$sum" != "$CHART_SHA256" ]; then
  echo "prom-chart: $tgz has sha256 $sum, not the $CHART_SHA256 this part was written for: check where it comes from, then update CHART_SHA256 in $0" >&2
  exit 1
fi

# --- helm, as its Makefile builds a release (CGO off, -trimpath, its ldflags) ---
H=helm.sh/helm/v4
hsrc=$(go mod download -json "$H@$KIT_HELM" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
mkdir -p "$KIT_OUT/tools"
(cd "$hsrc" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$KIT_OUT/tools/helm" \
  -ldflags "-w -s -X $H/internal/version.version=$KIT_HELM -X $H/internal/version.metadata= -X $H/internal/version.gitTreeState=clean" ./cmd/helm)
export HELM_CACHE_HOME=$KIT_WORK/helm/cache HELM_CONFIG_HOME=$KIT_WORK/helm/config HELM_DATA_HOME=$KIT_WORK/helm/data
helm() { "$KIT_OUT/tools/helm" "$@"; }
helm version
helm show chart "$tgz" > Chart.yaml
grep -qx "version: $KUBE_PROMETHEUS_STACK_CHART" Chart.yaml

# --- the images it pulls with the lab's values, and with the sandbox's grafana.enabled=false ---
release="$KIT_ROOT/flux-cd/infrastructure/monitoring/release.yaml"
python3 -c 'import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["spec"]["values"]))' "$release" > lab-values.yaml
images() { # images RENDERED.yaml: every image a pod, the Prometheus CR or the operator's flags name
  python3 - "$1" <<'PY'
import sys, yaml
found = set()
def walk(node, kind):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "image" and isinstance(v, str) and kind != "Alertmanager":
                found.add(v)
            walk(v, kind)
    elif isinstance(node, list):
        for v in node:
            if isinstance(v, str) and v.startswith("--prometheus-config-reloader="):
                found.add(v.split("=", 1)[1])
            walk(v, kind)
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc:
        walk(doc, doc.get("kind"))
print("\n".join(sorted(found)))
PY
}
render() { helm template "$CHART" "$tgz" --namespace monitoring --kube-version "${K8S_VERSION#v}" -f lab-values.yaml "$@"; }
render > full.yaml
render --set grafana.enabled=false > sandbox.yaml
images full.yaml > "$KIT_OUT/images-full.txt"
images sandbox.yaml > "$KIT_OUT/images-sandbox.txt"
printf '%s\n' "$PROMETHEUS_OPERATOR_IMAGE" "$PROMETHEUS_CONFIG_RELOADER_IMAGE" "$PROMETHEUS_IMAGE" \
  "$KUBE_STATE_METRICS_IMAGE" "$NODE_EXPORTER_IMAGE" "$KUBE_WEBHOOK_CERTGEN_IMAGE" | sort > pinned.txt
# tasks/versions.py names exactly what the chart pulls (grafana off); with grafana, its sidecar too.
diff -u pinned.txt "$KIT_OUT/images-sandbox.txt"
grep -qxF "$GRAFANA_SIDECAR_IMAGE" "$KIT_OUT/images-full.txt"
echo "chart images with grafana, beyond the kit's:"; comm -13 <(sort -u pinned.txt <(echo "$GRAFANA_SIDECAR_IMAGE")) "$KIT_OUT/images-full.txt"

# --- helm push into the kit's registry image, its storage in $KIT_OUT/registry ---
url=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["spec"]["url"])' \
  "$KIT_ROOT/flux-cd/infrastructure/monitoring/repository.yaml")          # oci://ghcr.io/<repo>/<chart>
upstream=${url#oci://}
host=${upstream%%/*}
repo=${upstream#*/}
[ "${repo##*/}" = "$CHART" ]
mkdir -p "$KIT_OUT/registry"
cid=$(docker run -d -p 127.0.0.1::5000 -v "$KIT_OUT/registry:/var/lib/registry" "$REGISTRY_IMAGE")
trap 'docker rm -f -v "$cid" >/dev/null 2>&1 || true' EXIT
port=$(docker port "$cid" 5000/tcp | head -n1 | sed 's/.*://')
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
helm push "$tgz" "oci://127.0.0.1:$port/${repo%/*}" --plain-http

# What Flux's source-controller asks for: the manifest, its helm config and the chart layer (the tgz itself).
curl -fsS -D headers.txt -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:$port/v2/$repo/manifests/$KUBE_PROMETHEUS_STACK_CHART" > manifest.json
digest=$(awk 'tolower($1) == "docker-content-digest:" {print $2}' headers.txt | tr -d '\r')
python3 - manifest.json "$sum" <<'PY'
import json, sys
m, want = json.load(open(sys.argv[1])), sys.argv[2]
assert m["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json", m["config"]
(layer,) = [l for l in m["layers"] if l["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"]
assert layer["digest"] == f"sha256:{want}", layer
print("manifest:", json.dumps(m["annotations"]))
PY
curl -fsS -o blob.tgz "http://127.0.0.1:$port/v2/$repo/blobs/sha256:$sum"
cmp blob.tgz "$tgz"
echo "$host/$repo:$KUBE_PROMETHEUS_STACK_CHART $digest" > "$KIT_OUT/chart.txt"
cat "$KIT_OUT/chart.txt"
