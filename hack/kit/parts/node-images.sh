#!/usr/bin/env bash
# Every image a kind node preloads into its containerd, under the names kubeadm and kind
# reference, plus kind's two default manifests (CNI, storage) for /kind/manifests/.
# Control plane and kube-proxy: the k8s part's binaries. etcd, CoreDNS,
# local-path-provisioner: built from their Go modules. pause: upstream's pause.c.
# kindnetd: the kit's own stand-in (node-images/kindnetd), as its source is not served,
# plus the NetworkPolicy enforcer the real kindnetd embeds (sigs.k8s.io/kube-network-policies)
# as /bin/netpol in the same image, run by the CNI DaemonSet's second container.
set -o errexit -o nounset -o pipefail

# Versions only the kit needs; each is what upstream pins at K8S_VERSION / KIND_VERSION.
ETCD_VERSION=v3.6.8       # kubeadm constants.go DefaultEtcdVersion "3.6.8-0" (k8s v1.36.1)
ETCD_TAG=3.6.8-0
COREDNS_VERSION=v1.14.2   # kubeadm constants.go CoreDNSVersion
PAUSE_VERSION=3.10.2      # kubeadm constants.go PauseVersion (= build/pause/Makefile TAG)
KIND_PAUSE_VERSION=3.10   # kind v0.32.0 images/base/files/etc/containerd/config.toml sandbox_image
KINDNETD_IMAGE=docker.io/kindest/kindnetd:v20260528-9350166c                          # kind v0.32.0 const_cni.go
STORAGE_PROVISIONER_IMAGE=docker.io/kindest/local-path-provisioner:v20260521-9fb22683 # kind v0.32.0 const_storage.go
STORAGE_HELPER_IMAGE=docker.io/kindest/local-path-helper:v20260131-7181c60a           # kind v0.32.0 const_storage.go
# kind v0.32.0 builds v0.0.34 (images/local-path-provisioner/Makefile); the Go module
# proxy serves github.com/rancher/local-path-provisioner only up to v0.0.30, which has
# every flag and config key kind's manifest uses.
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30
# The real kindnetd embeds sigs.k8s.io/kube-network-policies; the Go module proxy serves
# v0.7.0 and v0.8.0: the newest.
KUBE_NETWORK_POLICIES_VERSION=v0.8.0

HERE="$KIT_PARTS/node-images"
NODE_BIN="$KIT_DEP_K8S/node-bin"
R=registry.k8s.io
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false DOCKER_BUILDKIT=0
mkdir -p "$KIT_OUT/images" "$KIT_OUT/manifests" bin
BIN="$PWD/bin"

# kubeadm decides the control-plane images; fail here, not at `kind create`, when a
# K8S_VERSION bump moves etcd, CoreDNS or pause.
expected=$(printf '%s\n' "$R/kube-apiserver:$K8S_VERSION" "$R/kube-controller-manager:$K8S_VERSION" \
  "$R/kube-scheduler:$K8S_VERSION" "$R/kube-proxy:$K8S_VERSION" "$R/coredns/coredns:$COREDNS_VERSION" \
  "$R/pause:$PAUSE_VERSION" "$R/etcd:$ETCD_TAG" | sort)
wanted=$("$NODE_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" | sort)
if [ "$expected" != "$wanted" ]; then
  printf 'node-images: kubeadm %s wants other images; update the pins at the top of %s\n' "$K8S_VERSION" "$0" >&2
  diff <(echo "$expected") <(echo "$wanted") >&2 || true
  exit 1
fi

# --- binaries ------------------------------------------------------------------------
echo "== etcd $ETCD_VERSION"
# etcd's modules replace each other with ../ paths that are not in their zips: a small
# main module requires the published versions instead.
mkdir -p etcd && (
  cd etcd
  printf 'module kitbuild/etcd\n\ngo 1.24\n\nrequire (\n' > go.mod
  for m in server etcdctl etcdutl api client/pkg client pkg; do
    case $m in client) p=go.etcd.io/etcd/client/v3 ;; *) p=go.etcd.io/etcd/$m/v3 ;; esac
    printf '\t%s %s\n' "$p" "$ETCD_VERSION" >> go.mod
  done
  printf ')\n' >> go.mod
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3"\n\t_ "go.etcd.io/etcd/etcdctl/v3"\n\t_ "go.etcd.io/etcd/etcdutl/v3"\n)\n' > tools.go
  go mod tidy
  grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION\$" go.mod  # tidy must not have moved it
  # one by one: `go build -o dir/` would name all three "v3"
  for b in server:etcd etcdctl:etcdctl etcdutl:etcdutl; do
    go build -trimpath -ldflags "-s -w" -o "$BIN/${b#*:}" "go.etcd.io/etcd/${b%%:*}/v3"
  done
)

echo "== coredns $COREDNS_VERSION"
GOBIN="$BIN" go install -trimpath \
  -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=kit-$COREDNS_VERSION" \
  "github.com/coredns/coredns@$COREDNS_VERSION"

echo "== local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION"
GOBIN="$BIN" go install -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" \
  "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"

echo "== kindnetd (kit stand-in)"
cp -r "$HERE/kindnetd" kindnetd-src
# the tests also render default-cni.yaml the way kind does
(cd kindnetd-src && go vet ./... && KIT_CNI_MANIFEST="$HERE/default-cni.yaml" go test -count=1 ./... && go build -trimpath -ldflags "-s -w" -o "$BIN/kindnetd" .)

echo "== kube-network-policies $KUBE_NETWORK_POLICIES_VERSION (the kindnetd image's /bin/netpol)"
# upstream's build (its Makefile and Dockerfile: CGO_ENABLED=0 go build ./cmd), from a copy
# of the module with the kit's one addition (node-images/netpol/kit_nfqueue.go): every
# queue expression a rule gets goes through kitVerdict, for kernels without nft_queue
np_mod=$(go mod download -json "sigs.k8s.io/kube-network-policies@$KUBE_NETWORK_POLICIES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$np_mod" netpol-src && chmod -R u+w netpol-src
cp "$HERE/netpol/kit_nfqueue.go" netpol-src/pkg/networkpolicy/
# a rule's expression list holds the queue as a line of its own: `queue,` or `&expr.Queue{...},`
tab=$'\t'
queue_line="^(${tab}+)(queue|&expr\.Queue\{[^}]*\}),\$"
np_go=$(ls netpol-src/pkg/networkpolicy/*.go | grep -v -e '_test\.go$' -e '/kit_nfqueue\.go$')
wrapped=$(cat $np_go | grep -cE "$queue_line" || true)
sed -i -E "s/$queue_line/\1kitVerdict(\2),/" $np_go
left=$(grep -n 'expr\.Queue{' $np_go | grep -v -e 'queue := &expr\.Queue{' -e 'kitVerdict(&expr\.Queue{' || true)
if [ "$wrapped" -lt 1 ] || [ -n "$left" ]; then
  printf 'node-images: kube-network-policies %s builds its queue rules another way; wrapped %s, left:\n%s\n' \
    "$KUBE_NETWORK_POLICIES_VERSION" "$wrapped" "$left" >&2
  exit 1
fi
echo "wrapped $wrapped queue expression(s)"
(cd netpol-src && go vet ./pkg/networkpolicy/ && go build -trimpath -ldflags "-s -w" -o "$BIN/netpol" ./cmd)
# the kit's harness for the image test below (node-images/netpol-smoke.sh)
cp -r "$HERE/netpol-smoke" netpol-smoke-src
(cd netpol-smoke-src && go vet ./... && go build -trimpath -ldflags "-s -w" -o "$BIN/netpol-smoke" .)

echo "== pause $PAUSE_VERSION"
command -v gcc >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; }
k8s_src=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
# upstream's flags (build/pause/Makefile); its REV is the git describe of the k8s tree
gcc -Os -Wall -Werror -static "-DVERSION=v$PAUSE_VERSION-$K8S_VERSION" -o "$BIN/pause" "$k8s_src/build/pause/linux/pause.c"
strip "$BIN/pause"

# --- images ----------------------------------------------------------------------------
# says TEXT CMD...: CMD's output holds TEXT (shown when it does not); says_line: a whole line
says() { local out; out=$("${@:2}" 2>&1) && grep -qF -- "$1" <<<"$out" || { printf 'expected %q from: %s\n%s\n' "$1" "${*:2}" "$out" >&2; return 1; }; }
says_line() { local out; out=$("${@:2}" 2>&1) && grep -qxF -- "$1" <<<"$out" || { printf 'expected the line %q from: %s\n%s\n' "$1" "${*:2}" "$out" >&2; return 1; }; }

refs=()
save() { # save TARNAME REF... : one archive per image, every tag listed
  docker save -o "$KIT_OUT/images/$1.tar" "${@:2}"
  refs+=("${@:2}")
}

# What distroless/static gives upstream's images: users, /tmp, CA roots, nsswitch.
base=$PWD/static-base
mkdir -p "$base"/{etc/ssl/certs,tmp,home/nonroot,root}
chmod 1777 "$base/tmp" && chmod 0700 "$base/root"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$base/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$base/etc/group"
echo 'hosts: files dns' > "$base/etc/nsswitch.conf"
docker run --rm "debian:${DEBIAN_SUITE}-slim" cat /etc/ssl/certs/ca-certificates.crt > "$base/etc/ssl/certs/ca-certificates.crt"
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# static_image REF DIR [rootfs-tar.py options] -- [docker import --change lines]
static_image() {
  local ref=$1 dir=$2 tar_opts=() changes=() change
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do tar_opts+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for change in "$@"; do changes+=(--change "$change"); done
  python3 "$HERE/rootfs-tar.py" "$dir" "${tar_opts[@]}" | docker import "${changes[@]}" - "$ref" >/dev/null
}
stage() { # stage NAME: a fresh copy of the static base
  rm -rf "img/$1" && mkdir -p img && cp -a "$base" "img/$1" && echo "$PWD/img/$1"
}

for c in kube-apiserver kube-controller-manager kube-scheduler; do
  d=$(stage "$c")
  install -D -m 0755 "$NODE_BIN/$c" "$d/usr/local/bin/$c"
  caps=()
  # as upstream's image, so a non-root apiserver can still serve on a port below 1024
  [ "$c" = kube-apiserver ] && caps=(--cap "usr/local/bin/$c=cap_net_bind_service")
  static_image "$R/$c:$K8S_VERSION" "$d" "${caps[@]}" -- "$PATH_ENV" "ENTRYPOINT [\"/usr/local/bin/$c\"]"
  says_line "Kubernetes $K8S_VERSION" docker run --rm "$R/$c:$K8S_VERSION" --version
  save "$c" "$R/$c:$K8S_VERSION"
done

d=$(stage etcd)
for b in etcd etcdctl etcdutl; do install -D -m 0755 "$BIN/$b" "$d/usr/local/bin/$b"; done
mkdir -p "$d/var/lib/etcd" && chmod 0700 "$d/var/lib/etcd"
static_image "$R/etcd:$ETCD_TAG" "$d" -- "$PATH_ENV" 'ENTRYPOINT ["/usr/local/bin/etcd"]'
says "etcd Version: ${ETCD_VERSION#v}" docker run --rm "$R/etcd:$ETCD_TAG" --version
says "etcdctl version: ${ETCD_VERSION#v}" docker run --rm --entrypoint etcdctl "$R/etcd:$ETCD_TAG" version
save etcd "$R/etcd:$ETCD_TAG"

d=$(stage coredns)
install -m 0755 "$BIN/coredns" "$d/coredns"
static_image "$R/coredns/coredns:$COREDNS_VERSION" "$d" --cap coredns=cap_net_bind_service --owner home/nonroot=65532:65532 -- \
  'USER 65532:65532' 'WORKDIR /' 'EXPOSE 53 53/udp' 'ENTRYPOINT ["/coredns"]'
says "CoreDNS-${COREDNS_VERSION#v}" docker run --rm "$R/coredns/coredns:$COREDNS_VERSION" -version
# kubeadm runs it as non-root with only NET_BIND_SERVICE: the file capability must survive
# into the image, or port 53 is refused. Docker opens low ports to everyone by default
# (ip_unprivileged_port_start=0), which would hide a lost capability: close them here.
cid=$(docker run -d --cap-drop ALL --cap-add NET_BIND_SERVICE --sysctl net.ipv4.ip_unprivileged_port_start=1024 \
  "$R/coredns/coredns:$COREDNS_VERSION" -dns.port 53)
sleep 3
logs=$(docker logs "$cid" 2>&1); running=$(docker inspect -f '{{.State.Running}}' "$cid")
docker rm -f "$cid" >/dev/null
[ "$running" = true ] || { echo "coredns as non-root could not serve :53: $logs" >&2; exit 1; }
save coredns "$R/coredns/coredns:$COREDNS_VERSION"

mkdir -p img/pause && install -m 0755 "$BIN/pause" img/pause/pause  # upstream: FROM scratch, the binary only
static_image "$R/pause:$PAUSE_VERSION" img/pause -- 'USER 65535:65535' 'ENTRYPOINT ["/pause"]'
docker tag "$R/pause:$PAUSE_VERSION" "$R/pause:$KIND_PAUSE_VERSION"
says "pause.c v$PAUSE_VERSION" docker run --rm "$R/pause:$PAUSE_VERSION" -v
# kubeadm's tag and the sandbox image kind's containerd config names
save pause "$R/pause:$PAUSE_VERSION" "$R/pause:$KIND_PAUSE_VERSION"

d=$(stage local-path-provisioner)
install -D -m 0755 "$BIN/local-path-provisioner" "$d/usr/local/bin/local-path-provisioner"
static_image "$STORAGE_PROVISIONER_IMAGE" "$d" -- "$PATH_ENV" 'ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]'
says "$LOCAL_PATH_PROVISIONER_VERSION" docker run --rm "$STORAGE_PROVISIONER_IMAGE" --version
save local-path-provisioner "$STORAGE_PROVISIONER_IMAGE"

# The helper pod runs the provisioner's setup/teardown scripts: sh, mkdir, rm. kind's
# image stages bash and coreutils onto distroless; one static busybox does the same job.
d=$(stage local-path-helper)
mkdir -p "$d/bin" debs
docker run --rm -v "$PWD/debs:/out" "debian:${DEBIAN_SUITE}-slim" sh -c \
  'apt-get update -qq && cd /tmp && apt-get download -qq busybox-static 2>/dev/null && dpkg-deb -x busybox-static_*.deb x && cp x/bin/busybox /out/'
install -m 0755 debs/busybox "$d/bin/busybox"
for a in sh mkdir rm; do ln -s busybox "$d/bin/$a"; done
static_image "$STORAGE_HELPER_IMAGE" "$d" -- "$PATH_ENV"
docker run --rm "$STORAGE_HELPER_IMAGE" sh -c 'set -eu; VOL_DIR=/tmp/pvc-x/data; mkdir -m 0777 -p "$VOL_DIR"; rm -rf /tmp/pvc-x; test ! -e /tmp/pvc-x'
save local-path-helper "$STORAGE_HELPER_IMAGE"

# kube-proxy and kindnetd: Debian with netfilter tools (net.Dockerfile)
mkdir -p net && cp "$HERE/net.Dockerfile" "$HERE/iptables-wrapper" net/ && chmod 0755 net/iptables-wrapper
cp "$NODE_BIN/kube-proxy" "$BIN/kindnetd" "$BIN/netpol" net/
docker build -q -f net/net.Dockerfile --target kube-proxy -t "$R/kube-proxy:$K8S_VERSION" net >/dev/null
docker build -q -f net/net.Dockerfile --target kindnetd -t "$KINDNETD_IMAGE" net >/dev/null
says_line "Kubernetes $K8S_VERSION" docker run --rm "$R/kube-proxy:$K8S_VERSION" --version
docker run --rm --cap-add NET_ADMIN --entrypoint sh "$R/kube-proxy:$K8S_VERSION" -c \
  'iptables-save >/dev/null && iptables --version && ip6tables --version && conntrack --version && ipset --version && nft --version'
docker run --rm --cap-add NET_ADMIN --cap-add NET_RAW -v "$HERE/kindnetd-smoke.sh:/smoke.sh:ro" "$KINDNETD_IMAGE" sh /smoke.sh
# NetworkPolicy enforcement in a throwaway node of three namespaces (privileged, as the
# DaemonSet's container is: it creates network namespaces)
docker run --rm --privileged -v "$BIN/netpol-smoke:/smoke/netpol-smoke:ro" \
  -v "$HERE/netpol-smoke.sh:/smoke/netpol-smoke.sh:ro" "$KINDNETD_IMAGE" sh /smoke/netpol-smoke.sh
save kube-proxy "$R/kube-proxy:$K8S_VERSION"
save kindnetd "$KINDNETD_IMAGE"

# --- manifests -------------------------------------------------------------------------
sed "s|@KINDNETD_IMAGE@|$KINDNETD_IMAGE|" "$HERE/default-cni.yaml" > "$KIT_OUT/manifests/default-cni.yaml"
sed -e "s|@STORAGE_PROVISIONER_IMAGE@|$STORAGE_PROVISIONER_IMAGE|" -e "s|@STORAGE_HELPER_IMAGE@|$STORAGE_HELPER_IMAGE|" \
  "$HERE/default-storage.yaml" > "$KIT_OUT/manifests/default-storage.yaml"
if grep -n '@[A-Z_]*@' "$KIT_OUT"/manifests/*.yaml; then exit 1; fi

printf '%s\n' "${refs[@]}" > "$KIT_OUT/images.txt"
cat "$KIT_OUT/images.txt"
