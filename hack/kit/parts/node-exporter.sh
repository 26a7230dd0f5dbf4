#!/usr/bin/env bash
# NODE_EXPORTER_IMAGE (quay.io/prometheus/node-exporter:vX.Y.Z-distroless) from the
# github.com/prometheus/node_exporter module at its tag: promu's build (.promu.yml's ldflags, CGO
# off) and upstream's own Dockerfile.distroless FROM the kit's distroless stand-in; then the
# Makefile's `test-docker` check (./test_image.sh: /metrics answers).
set -o errexit -o nounset -o pipefail
ref="$NODE_EXPORTER_IMAGE"
tag=${ref##*:}
V=${tag%-distroless}
MOD=github.com/prometheus/node_exporter
json=$(go mod download -json "$MOD@$V")
src=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Dir"])' "$json")
built=$(python3 -c 'import json,sys,datetime
t = json.load(open(json.loads(sys.argv[1])["Info"]))["Time"]
print(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).strftime("%Y%m%d-%H:%M:%S"))' "$json")
[ "$(cat "$src/VERSION")" = "${V#v}" ]
CP=github.com/prometheus/common/version
ctx="$KIT_WORK/ctx"
mkdir -p "$ctx/.build/linux-amd64"
(cd "$src" && CGO_ENABLED=0 go build -mod=readonly -o "$ctx/.build/linux-amd64/node_exporter" \
  -ldflags "-X $CP.Version=${V#v} -X $CP.Revision=unknown -X $CP.Branch=HEAD -X $CP.BuildUser=gitops-lab-kit -X $CP.BuildDate=$built" .)
# upstream's Dockerfile.distroless, with only the files it COPYs as context
cp "$src/Dockerfile.distroless" "$src/LICENSE" "$src/NOTICE" "$ctx/"
docker build -q -f "$ctx/Dockerfile.distroless" --build-arg ARCH=amd64 --build-arg OS=linux \
  --build-arg DISTROLESS_ARCH=amd64 --label "$KIT_LABEL" -t "$ref" "$ctx" >/dev/null

docker run --rm "$ref" --version 2>&1 | tee v.txt
grep -q "node_exporter, version ${V#v} " v.txt
[ "$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}}' "$ref")" = '65532 ["/bin/node_exporter"]' ]
# test_image.sh, on a loopback port of Docker's choosing
cid=$(docker run -d -p 127.0.0.1::9100 "$ref")
trap 'docker rm -f -v "$cid" >/dev/null 2>&1 || true' EXIT
port=$(docker port "$cid" 9100/tcp | head -n1 | sed 's/.*://')
for _ in $(seq 50); do curl -fsS -m 5 -o metrics.txt "http://127.0.0.1:$port/metrics" && break; sleep 0.3; done
grep -q '^node_exporter_build_info{' metrics.txt
grep -q '^node_cpu_seconds_total{' metrics.txt

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/node-exporter.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
