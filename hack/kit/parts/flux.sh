#!/usr/bin/env bash
# flux CLI at FLUX_VERSION and the controller images its `flux install` deploys, from Go modules.
#
# The CLI embeds install manifests that upstream's release assembles from each controller's
# release assets (config/crd and config/manager built with kustomize). Those assets are not
# reachable here, so they are rebuilt from the controllers' own modules, at the versions flux2's
# manifests/bases name: flux2 stays the one place for controller versions.
set -o errexit -o nounset -o pipefail

here="$KIT_PARTS/flux"
base="debian:${DEBIAN_SUITE}-slim"
mkdir -p "$KIT_OUT/bin" "$KIT_OUT/images" "$KIT_OUT/manifests" shim src ctx

# module@version -> its folder in the Go module cache (downloaded if missing)
moddir() {
  local json
  if ! json=$(go mod download -json "$1"); then
    # The checksum database reachable here lacks some versions its proxy serves. Only then, and
    # loudly, take the proxy's copy unverified.
    case $json in
      *"verifying"*"404 Not Found"*)
        echo "WARNING: $1 is unknown to the checksum database; using the proxy's copy unverified" >&2
        json=$(GONOSUMDB="${1%@*}" go mod download -json "$1") ;;
      *) echo "$json" >&2; return 1 ;;
    esac
  fi
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$json"
}

# --- install manifests: flux2's manifests/bases with the release URLs pointed at local builds ---
cp -r "$(moddir "github.com/fluxcd/flux2/v2@v${FLUX_VERSION}")" flux2
chmod -R u+w flux2
: > controllers.txt
for kz in flux2/manifests/bases/*/kustomization.yaml; do
  for url in $(grep -o 'https://github.com/fluxcd/[^[:space:]]*' "$kz"); do
    # https://github.com/fluxcd/<repo>/releases/download/<tag>/<repo>.{crds,deployment}.yaml
    IFS=/ read -r _ _ _ _ repo _ _ tag file <<<"$url"
    major=${tag#v}; major=${major%%.*}
    mod="github.com/fluxcd/$repo"; if [ "$major" -ge 2 ]; then mod+="/v$major"; fi
    dir=$(moddir "$mod@$tag")
    # what fluxcd/gha-workflows' controller-release builds for these two assets
    case $file in
      *.crds.yaml) kubectl kustomize "$dir/config/crd" > "$(dirname "$kz")/$file" ;;
      *.deployment.yaml) kubectl kustomize "$dir/config/manager" > "$(dirname "$kz")/$file" ;;
      *) echo "unexpected release asset $url in $kz" >&2; exit 1 ;;
    esac
    sed -i "s|$url|$file|" "$kz"
    grep -qx "$repo $tag $mod" controllers.txt || echo "$repo $tag $mod" >> controllers.txt
  done
done
if grep -rn 'https://' flux2/manifests/bases/*/kustomization.yaml; then
  echo "remote resources left in flux2's manifests/bases" >&2; exit 1
fi
cp "$here/kustomize" shim/kustomize
chmod +x shim/kustomize
PATH="$PWD/shim:$PATH" bash flux2/manifests/scripts/bundle.sh

# --- the CLI, as flux2's .goreleaser.yml builds it ---
(cd flux2 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.VERSION=${FLUX_VERSION}" \
  -o "$KIT_OUT/bin/flux" ./cmd/flux)
# tasks/tools.py reads the version from `flux version --client`
[ "$("$KIT_OUT/bin/flux" version --client)" = "flux: v${FLUX_VERSION}" ]
cp flux2/cmd/flux/manifests/*.yaml "$KIT_OUT/manifests/"
# what `flux install` (no --version: embedded manifests) applies, for the record and for checks
"$KIT_OUT/bin/flux" install --export > "$KIT_OUT/manifests/install.yaml"

# --- controller images: every image that install deploys ---
refs=$(sed -n 's|^ *image: \(ghcr.io/fluxcd/.*\)$|\1|p' "$KIT_OUT/manifests/install.yaml" | sort -u)
[ -n "$refs" ] || { echo "no controller images in flux install --export" >&2; exit 1; }
for ref in $refs; do
  name=${ref#ghcr.io/fluxcd/}; name=${name%%:*}; tag=${ref##*:}
  read -r _ _ mod < <(grep "^$name $tag " controllers.txt) || {
    echo "$ref: no module for it among flux2's manifests/bases" >&2; exit 1; }
  echo "== $ref from $mod@$tag"
  src="src/$name"
  cp -r "$(moddir "$mod@$tag")" "$src"
  chmod -R u+w "$src"
  python3 "$here/gomod.py" nested "$src" | while read -r sub version path; do
    cp -r "$(moddir "$sub@$version")" "$src/$path"
    chmod -R u+w "$src/$path"
  done
  python3 "$here/gomod.py" substitute "$src" "$here/substitutes"
  mapfile -t args < <(python3 "$here/debianize.py" build-args "$src/Dockerfile")
  # -mod=mod: a substitute needs its checksum added to the scratch copy's go.sum
  (cd "$src" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" go build "${args[@]}")
  rm -rf "ctx/$name"; mkdir -p "ctx/$name"
  mv "$src/$name" "ctx/$name/"
  python3 "$here/debianize.py" dockerfile "$src/Dockerfile" "$base" > "ctx/$name/Dockerfile"
  docker build -q -t "$ref" "ctx/$name"
  # The Deployment's own args must parse: pflag reads them all, then --help exits 0.
  mapfile -t dargs < <(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment" and d["metadata"]["name"] == sys.argv[2]:
        print("\n".join(d["spec"]["template"]["spec"]["containers"][0].get("args", [])))' \
    "$KIT_OUT/manifests/install.yaml" "$name")
  docker run --rm "$ref" "${dargs[@]}" --help > "ctx/$name/help.txt" 2>&1 ||
    { cat "ctx/$name/help.txt"; exit 1; }
  echo "$ref" >> "$KIT_OUT/images.txt"
  rm -rf "$src"
done
# one archive: the controllers share the Debian layers
# shellcheck disable=SC2046
docker save -o "$KIT_OUT/images/flux-controllers.tar" $(cat "$KIT_OUT/images.txt")
