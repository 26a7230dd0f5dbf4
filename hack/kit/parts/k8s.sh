#!/usr/bin/env bash
# Kubernetes binaries at K8S_VERSION from the k8s.io/kubernetes Go module.
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with ./staging
# paths that are not in its module zip; a small main module replaces each with the
# published k8s.io/<name> v0.<minor>.<patch> instead, the documented way to build
# against k8s.io/kubernetes. Version stamps as upstream's hack/lib/version.sh sets them.
set -o errexit -o nounset -o pipefail
V="$K8S_VERSION"                       # v1.36.1
STAGING="v0.${V#v1.}"                  # v0.36.1
MINOR=$(echo "$V" | cut -d. -f2)

mkdir -p build && cd build
src=$(go mod download -json "k8s.io/kubernetes@$V" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
{
  printf 'module kitbuild/k8s\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' \
    "$(awk '$1=="go"{print $2; exit}' "$src/go.mod")" "$V"
  awk '$2=="=>" && $3 ~ /^\.\/staging/ {printf "\t%s => %s '"$STAGING"'\n", $1, $1}' "$src/go.mod"
  printf ')\n'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
go mod tidy

LD="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD="$LD -X $p.gitVersion=$V -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  LD="$LD -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
done
# kubectl goes on PATH (bin/); the node's binaries stay out of it (node-bin/).
mkdir -p "$KIT_OUT/bin" "$KIT_OUT/node-bin"
CGO_ENABLED=0 go build -trimpath -ldflags "$LD" -o "$KIT_OUT/node-bin/" \
  k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
cp "$KIT_OUT/node-bin/kubectl" "$KIT_OUT/bin/kubectl"
"$KIT_OUT/node-bin/kubeadm" version -o short | grep -qx "$V"
