#!/usr/bin/env bash
# PROMETHEUS_OPERATOR_IMAGE and PROMETHEUS_CONFIG_RELOADER_IMAGE from the
# github.com/prometheus-operator/prometheus-operator module at their tag, built as upstream's
# Makefile does (`make operator`, `make prometheus-config-reloader`: CGO off, its ldflags) and
# put in images laid out as its Dockerfiles' final stage (FROM the busybox stand-in).
set -o errexit -o nounset -o pipefail
V=${PROMETHEUS_OPERATOR_IMAGE##*:}
if [ "${PROMETHEUS_CONFIG_RELOADER_IMAGE##*:}" != "$V" ]; then
  echo "PROMETHEUS_CONFIG_RELOADER_IMAGE and PROMETHEUS_OPERATOR_IMAGE name different releases" >&2; exit 1
fi
MOD=github.com/prometheus-operator/prometheus-operator
moddir() { go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }

cp -r "$(moddir "$MOD@$V")" src
chmod -R u+w src
# The module zip leaves out its nested modules (pkg/apis/monitoring, pkg/client), which go.mod
# replaces by path; upstream's Dockerfile has them from the repository, the kit from their own
# module zips at the same tag.
for nested in $(cd src && go mod edit -json | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./"):
        print(r["New"]["Path"][2:])'); do
  rm -rf "src/$nested" && mkdir -p "$(dirname "src/$nested")"
  cp -r "$(moddir "$MOD/$nested@$V")" "src/$nested"
  chmod -R u+w "src/$nested"
done
[ "$(cat src/VERSION)" = "${V#v}" ]
built=$(python3 -c 'import json,sys,datetime
t = json.load(open(sys.argv[1]))["Time"]
print(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).strftime("%Y%m%d-%H:%M:%S"))' \
  "$(go mod download -json "$MOD@$V" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Info"])')")
CP=github.com/prometheus/common/version
# The Makefile's GO_BUILD_LDFLAGS; the module zip has no git, so no revision or branch.
ldflags="-s -X $CP.Revision=unknown -X $CP.BuildUser=gitops-lab-kit -X $CP.BuildDate=$built -X $CP.Branch=HEAD -X $CP.Version=${V#v}"
mkdir -p ctx
for bin in operator prometheus-config-reloader; do
  (cd src && GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -mod=readonly -ldflags="$ldflags" -o "$KIT_WORK/ctx/$bin" "./cmd/$bin/")
done
build() { # build REF BINARY: the Dockerfile with the binary's ENTRYPOINT (exec form takes no ARG)
  { cat "$KIT_PARTS/prometheus-operator/Dockerfile"; printf 'ENTRYPOINT ["/bin/%s"]\n' "$2"; } > "ctx/$2.Dockerfile"
  docker build -q --build-arg "BINARY=$2" --label "$KIT_LABEL" -t "$1" -f "ctx/$2.Dockerfile" ctx >/dev/null
}
build "$PROMETHEUS_OPERATOR_IMAGE" operator
build "$PROMETHEUS_CONFIG_RELOADER_IMAGE" prometheus-config-reloader

# What the chart runs: the operator's and the reloader's version and flags.
for pair in "$PROMETHEUS_OPERATOR_IMAGE operator" "$PROMETHEUS_CONFIG_RELOADER_IMAGE prometheus-config-reloader"; do
  set -- $pair
  [ "$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}}' "$1")" = "65534 [\"/bin/$2\"]" ]
  docker run --rm "$1" --version 2>&1 | tee v.txt
  grep -q "version ${V#v}" v.txt
done
# (output kept whole first: `grep -q` closing the pipe early would fail it under pipefail)
help=$(docker run --rm "$PROMETHEUS_OPERATOR_IMAGE" --help 2>&1 || true)
# its default reloader image is the one the chart passes
grep -qF -- "Prometheus config reloader image (default \"$PROMETHEUS_CONFIG_RELOADER_IMAGE\")" <<<"$help"
help=$(docker run --rm "$PROMETHEUS_CONFIG_RELOADER_IMAGE" --help 2>&1 || true)
grep -q -- '--watched-dir' <<<"$help"

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/prometheus-operator.tar" "$PROMETHEUS_OPERATOR_IMAGE" "$PROMETHEUS_CONFIG_RELOADER_IMAGE"
printf '%s\n' "$PROMETHEUS_OPERATOR_IMAGE" "$PROMETHEUS_CONFIG_RELOADER_IMAGE" > "$KIT_OUT/images.txt"
