#!/usr/bin/env bash
# KUBE_STATE_METRICS_IMAGE from the k8s.io/kube-state-metrics/v2 module at its tag, built as
# upstream's Makefile `build-local` does (CGO off, its ldflags) and laid out as its Dockerfile's
# final stage, FROM the kit's distroless/static stand-in.
set -o errexit -o nounset -o pipefail
ref="$KUBE_STATE_METRICS_IMAGE"
V=${ref##*:}
MOD=k8s.io/kube-state-metrics/v2
json=$(go mod download -json "$MOD@$V")
src=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Dir"])' "$json")
built=$(python3 -c 'import json,sys; print(json.load(open(json.loads(sys.argv[1])["Info"]))["Time"])' "$json")
# The Makefile's VERSION comes from data.yaml: the module must be the release the tag names.
grep -q "^version: \"\?${V#v}\"\?$" "$src/data.yaml" || { echo "$src/data.yaml does not name ${V#v}" >&2; exit 1; }
client_go=$(cd "$src" && go list -mod=readonly -m -f '{{.Version}}' k8s.io/client-go)
CP=github.com/prometheus/common/version
mkdir -p ctx
(cd "$src" && GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -mod=readonly -o "$KIT_WORK/ctx/kube-state-metrics" \
  -ldflags "-s -w -X $CP.Version=$V -X $CP.Revision=unknown -X $CP.Branch=HEAD -X $CP.BuildUser=gitops-lab-kit -X $CP.BuildDate=$built -X $MOD/pkg/app.ClientGoVersion=$client_go")
cp "$KIT_PARTS/kube-state-metrics/Dockerfile" ctx/
docker build -q --build-arg GOARCH=amd64 --label "$KIT_LABEL" -t "$ref" ctx >/dev/null

# `version` is a subcommand, which takes none of the ENTRYPOINT's flags
docker run --rm --entrypoint /kube-state-metrics "$ref" version 2>&1 | tee v.txt
grep -q "^kube-state-metrics, version $V " v.txt
[ "$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}}' "$ref")" = \
  'nobody ["/kube-state-metrics","--port=8080","--telemetry-port=8081"]' ]
help=$(docker run --rm "$ref" --help 2>&1 || true)   # whole first: grep -q must not cut the pipe
grep -q -- '--resources' <<<"$help"

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/kube-state-metrics.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
