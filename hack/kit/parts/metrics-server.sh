#!/usr/bin/env bash
# registry.k8s.io/metrics-server/metrics-server:<METRICS_SERVER_VERSION> from the
# sigs.k8s.io/metrics-server module, built as upstream's Makefile builds it, in a
# distroless-like image (entrypoint /metrics-server, USER 65534, as its Dockerfile).
set -o errexit -o nounset -o pipefail
V="$METRICS_SERVER_VERSION"
MOD=sigs.k8s.io/metrics-server
ref="registry.k8s.io/metrics-server/metrics-server:$V"

json=$(go mod download -json "$MOD@$V")
src=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Dir"])' "$json")
# The tag's time stands in for the build date, so two builds are the same binary;
# the module zip carries no git commit.
built=$(python3 -c 'import json,sys; print(json.load(open(json.loads(sys.argv[1])["Info"]))["Time"])' "$json")
PKG=k8s.io/client-go/pkg
mkdir -p ctx
(cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$KIT_WORK/ctx/metrics-server" \
  -ldflags "-w -X $PKG/version.gitVersion=$V -X $PKG/version.gitCommit=0000000000000000000000000000000000000000 -X $PKG/version.buildDate=$built" \
  "$MOD/cmd/metrics-server")
cp "$KIT_PARTS/metrics-server/Dockerfile" ctx/
docker build -q --build-arg "BASE=debian:${DEBIAN_SUITE}-slim" -t "$ref" ctx

# Upstream's own image test (test/test-image.sh): the version, and --help equal to its flag docs.
[ "$(docker run --rm "$ref" --version)" = "$V" ]
diff -u "$src/docs/command-line-flags.txt" <(docker run --rm "$ref" --help | sed 's/[ \t]*$//')
[ "$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}}' "$ref")" = '65534 ["/metrics-server"]' ]

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/metrics-server.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
