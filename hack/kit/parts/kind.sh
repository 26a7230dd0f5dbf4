#!/usr/bin/env bash
# kind CLI at KIND_VERSION, from its Go module.
set -o errexit -o nounset -o pipefail
mkdir -p "$KIT_OUT/bin"
GOBIN="$KIT_OUT/bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@v${KIND_VERSION}"
"$KIT_OUT/bin/kind" version
