#!/usr/bin/env bash
# registry:3 stand-in: distribution's registry from its Go module, in the official image's
# layout (config-dev.yml of the module at /etc/distribution/config.yml, port 5000,
# volume /var/lib/registry, `registry serve /etc/distribution/config.yml` by default).
set -o errexit -o nounset -o pipefail
# The release the official `registry:3` tag carries: the newest 3.x (upstream pins it in
# distribution/distribution-library-image's Dockerfile, `version=`).
DISTRIBUTION_VERSION=v3.1.2
MOD=github.com/distribution/distribution/v3

src=$(go mod download -json "$MOD@$DISTRIBUTION_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
mkdir -p ctx
# Upstream's ldflags (its Dockerfile's `version` stage); the module zip has no git, so no revision.
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$KIT_WORK/ctx/registry" \
  -ldflags "-s -w -X $MOD/version.version=${DISTRIBUTION_VERSION#v} -X $MOD/version.mainpkg=$MOD" ./cmd/registry)
cp "$src/cmd/registry/config-dev.yml" ctx/config.yml
cp "$KIT_PARTS/registry/Dockerfile" "$KIT_PARTS/registry/entrypoint.sh" ctx/
# The legacy builder has no COPY --chmod: the mode comes from the context.
chmod 755 ctx/entrypoint.sh
ref="$REGISTRY_IMAGE"
docker build -q --build-arg "BASE=debian:${DEBIAN_SUITE}-slim" \
  --label "org.opencontainers.image.version=$DISTRIBUTION_VERSION" -t "$ref" ctx

# Serve it as the lab does (published on loopback), then push and read back over the v2 API.
cid=$(docker run -d -p 127.0.0.1::5000 "$ref")
probe=""
cleanup() { docker rm -f -v "$cid" >/dev/null 2>&1 || true; [ -z "$probe" ] || docker rmi "$probe" >/dev/null 2>&1 || true; }
trap cleanup EXIT
port=$(docker port "$cid" 5000/tcp | head -n1 | sed 's/.*://')
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
docker exec "$cid" registry --version
[ "$(docker exec "$cid" cat /proc/1/cmdline | tr '\0' ' ')" = "registry serve /etc/distribution/config.yml " ]
probe="127.0.0.1:$port/kit-probe:smoke"
mkdir -p probe && echo kit > probe/hello && tar -C probe -c hello | docker import - "$probe" >/dev/null
docker push "$probe"
curl -fsS "http://127.0.0.1:$port/v2/_catalog" | grep -q '"kit-probe"'
curl -fsS "http://127.0.0.1:$port/v2/kit-probe/tags/list" | grep -q '"smoke"'
curl -fsSI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://127.0.0.1:$port/v2/kit-probe/manifests/smoke" | grep -qi '^docker-content-digest: sha256:'

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/registry.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
