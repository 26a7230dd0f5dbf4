#!/usr/bin/env bash
# Proof that the kit's kind node image makes the lab's cluster: kind at the lab's pin, the
# lab's own kind-three-node.yaml, then what the lab relies on (3 nodes Ready, workers
# labelled, control plane tainted, CNI, CoreDNS, kube-proxy and storage running).
# Test tooling, like the rest of hack/kit.
#
#   hack/kit/prove-node.sh [CLUSTER_NAME]     (default kit-proof; KEEP=1 keeps the cluster)
set -o errexit -o nounset -o pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NAME=${1:-kit-proof}
cd "$ROOT"
python3 hack/kit/kit.py build kind k8s node
eval "$(python3 hack/kit/kit.py env)"
image="$(python3 -c 'from tasks import versions as v; print(f"{v.KIND_NODE_IMAGE_REPO}:{v.K8S_VERSION}")')"
ctx="kind-$NAME"
k() { kubectl --context "$ctx" "$@"; }
fail() { echo "prove-node: FAIL: $*" >&2; exit 1; }

[ "${KEEP:-0}" = 1 ] || trap 'kind delete cluster --name "$NAME"' EXIT
kind version
kind create cluster --name "$NAME" --image "$image" --config kind-three-node.yaml --wait 5m

k get nodes -o wide
[ "$(k get nodes -o name | wc -l)" = 3 ] || fail "expected 3 nodes"
k wait --for=condition=Ready nodes --all --timeout=60s
[ "$(k get nodes -l gitops-lab/tier=worker -o name | wc -l)" = 2 ] || fail "expected 2 nodes labelled gitops-lab/tier=worker"
taints=$(k get node "$NAME-control-plane" -o jsonpath='{range .spec.taints[*]}{.key}:{.effect}{"\n"}{end}')
grep -qx 'node-role.kubernetes.io/control-plane:NoSchedule' <<<"$taints" || fail "control plane not tainted: $taints"
[ "$(k get node "$NAME-control-plane" -o jsonpath='{.status.nodeInfo.kubeletVersion}')" = "${image##*:}" ] \
  || fail "kubelet is not ${image##*:}"

k -n kube-system rollout status daemonset/kindnet --timeout=180s
k -n kube-system rollout status daemonset/kube-proxy --timeout=180s
k -n kube-system rollout status deployment/coredns --timeout=180s
k -n local-path-storage rollout status deployment/local-path-provisioner --timeout=180s
k get pods -A -o wide
notrunning=$(k get pods -A --no-headers | awk '$4 != "Running" {print $1 "/" $2 " " $4}')
[ -z "$notrunning" ] || fail "pods not Running: $notrunning"
# kind's default StorageClass provisions on a worker (provisioner + helper image), and a
# pod there writes to it; shell builtins only, so any helper image with a shell does.
helper=$(sed -n 's/^ *image: *\(.*local-path-helper.*\)/\1/p' <(k -n local-path-storage get configmap local-path-config -o jsonpath='{.data.helperPod\.yaml}'))
k apply -f - <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: prove-node}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: prove-node}
spec:
  restartPolicy: Never
  nodeSelector: {gitops-lab/tier: worker}
  containers:
  - name: write
    image: $helper
    imagePullPolicy: Never
    command: [sh, -c, 'echo ok > /data/f && read -r l < /data/f && [ "\$l" = ok ]']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: prove-node}}]
YAML
k wait --for=jsonpath='{.status.phase}'=Succeeded pod/prove-node --timeout=120s || { k describe pod prove-node; fail "PVC pod"; }
k delete pod/prove-node pvc/prove-node --wait=false
echo "prove-node: OK: $image makes the lab's cluster ($NAME)"
