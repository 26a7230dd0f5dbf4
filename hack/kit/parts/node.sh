#!/usr/bin/env bash
# kindest/node:$K8S_VERSION, assembled the way `kind build node-image` assembles one
# (kind's pkg/build/nodeimage: buildcontext.go, imageimporter.go) from the kit's parts:
# a build container from kindest/base (node-base), kubeadm/kubelet/kubectl in /usr/bin
# (k8s), /kind/version, kind's default CNI and storage manifests and every image a node
# preloads (node-images), imported by the node's own containerd, then `docker commit`.
# One kit-only addition: a kubelet drop-in that lets the kubelet run on cgroup v1 hosts.
set -o errexit -o nounset -o pipefail

base_ref=$(head -n1 "$KIT_DEP_NODE_BASE/images.txt")
node_ref="kindest/node:$K8S_VERSION"
node_bin="$KIT_DEP_K8S/node-bin"
preload="$KIT_DEP_NODE_IMAGES"

cid=$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined "$base_ref" infinity)
trap 'docker rm -f -v "$cid" >/dev/null' EXIT
in_node() { docker exec "$cid" "$@"; }
write_in_node() {  # write_in_node PATH < content (kind's createFile)
  docker exec -i "$cid" sh -c "mkdir -p \"\$(dirname '$1')\" && cp /dev/stdin '$1'"
}

# kind puts only these three on the node; the control plane runs from preloaded images.
for b in kubeadm kubelet kubectl; do
  docker cp "$node_bin/$b" "$cid:/usr/bin/$b"
  in_node chmod +x "/usr/bin/$b"
  in_node chown root:root "/usr/bin/$b"
done
printf '%s' "$K8S_VERSION" | write_in_node /kind/version

# cgroup v1: KubeletConfiguration drop-ins (kubelet --config-dir) override kubeadm's
# /var/lib/kubelet/config.yaml; the flag rides on kind's /etc/default/kubelet, which the
# kubelet unit already reads, so kind's own unit files stay untouched.
write_in_node /etc/kubernetes/kubelet.conf.d/50-kit-cgroup-v1.conf < "$KIT_PARTS/node/50-kit-cgroup-v1.conf"
in_node sed -i '/^KUBELET_EXTRA_ARGS=/ s|$| --config-dir=/etc/kubernetes/kubelet.conf.d|' /etc/default/kubelet
in_node grep -q -- '--config-dir=/etc/kubernetes/kubelet.conf.d' /etc/default/kubelet

# Sandboxes without CAP_SYS_RESOURCE in their bounding set (the kit's CI machines): no
# process in a node may lower an oom_score_adj, so runc fails every pod ("failed to update
# /proc/self/oom_score_adj: Permission denied") when the kubelet asks for -998/-997.
# containerd's restrict_oom_score_adj (what kind's entrypoint turns on for rootless nodes)
# clamps pod scores to containerd's own instead. Where the capability is present, systemd
# puts containerd at -999 (containerd.service OOMScoreAdjust), below every score the kubelet
# asks for, so the clamp changes nothing there.
in_node sed -i 's/^\( *restrict_oom_score_adj *= *\)false/\1true/' /etc/containerd/config.toml
in_node grep -q '^ *restrict_oom_score_adj = true' /etc/containerd/config.toml

write_in_node /kind/manifests/default-cni.yaml < "$preload/manifests/default-cni.yaml"
write_in_node /kind/manifests/default-storage.yaml < "$preload/manifests/default-storage.yaml"

# What a node must hold (kind's prePullImagesAndWriteManifests): kubeadm's list with
# kubeadm's pause swapped for the sandbox image containerd's config names, plus the
# images of the CNI and storage manifests.
normalize() {  # docker-style reference -> containerd's fully qualified name
  awk '{ r=$0; split(r, p, "/"); if (index(r, "/") == 0) r = "docker.io/library/" r;
         else if (p[1] !~ /[.:]/ && p[1] != "localhost") r = "docker.io/" r; print r }'
}
sandbox=$(in_node sed -n 's/^ *sandbox_image *= *"\(.*\)"/\1/p' /etc/containerd/config.toml)
[ -n "$sandbox" ] || { echo "node: no sandbox_image in kind's containerd config" >&2; exit 1; }
{
  in_node kubeadm config images list --kubernetes-version "$K8S_VERSION" | grep -v '/pause:'
  echo "$sandbox"
  sed -n 's/^[ -]*image: *["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' "$preload"/manifests/default-{cni,storage}.yaml
} | normalize | sort -u > required.txt
echo "node: images a node preloads:"; sed 's/^/  /' required.txt

# kind's containerdImporter: containerd started in the build container, archives imported
# pinned and unpacked later by the node itself.
in_node bash -c 'nohup containerd >/var/log/kit-build-containerd.log 2>&1 &'
in_node bash -c 'for i in $(seq 1 60); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.5; done; ctr info >/dev/null' \
  || { in_node cat /var/log/kit-build-containerd.log >&2; exit 1; }
for tar in "$preload"/images/*.tar; do
  docker exec -i "$cid" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - < "$tar"
done
in_node ctr --namespace=k8s.io images list -q | sort -u > imported.txt
missing=$(comm -23 required.txt imported.txt)
if [ -n "$missing" ]; then
  echo "node: node-images does not provide:" >&2; echo "$missing" | sed 's/^/  /' >&2
  echo "node: imported:" >&2; sed 's/^/  /' imported.txt >&2
  exit 1
fi
# containerd must be gone (its bolt database closed) before the snapshot is committed;
# `sleep` as PID 1 reaps nobody, so an exited containerd lingers as a zombie (state Z).
in_node pkill -x containerd
in_node bash -c 'for i in $(seq 1 60); do ps -C containerd -o stat= | grep -qv "^Z" || exit 0; sleep 0.5; done; exit 1'
in_node rm -f /var/log/kit-build-containerd.log

docker commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
  "$cid" "$node_ref"

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/node.tar" "$node_ref"
echo "$node_ref" > "$KIT_OUT/images.txt"
