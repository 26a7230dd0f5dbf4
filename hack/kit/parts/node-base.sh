#!/usr/bin/env bash
# kindest/base:<tag kind KIND_VERSION defaults to>, built the way kind's images/base/Dockerfile
# builds it: Debian slim + kind's package list and systemd tweaks + kind's base files, plus
# containerd, runc, crictl, CNI plugins and containerd-fuse-overlayfs from their Go modules.
# Upstream starts FROM debian:trixie-slim; the kit starts FROM debian:$DEBIAN_SUITE-slim
# (the `debian` part), because bookworm is what this machine's package mirror serves.
# kind's base files (entrypoint, units, containerd config, kubelet drop-ins) are read at
# build time from the sigs.k8s.io/kind module at KIND_VERSION, never copied into this repo.
set -o errexit -o nounset -o pipefail

# kind v0.32.0's own pins (images/base/Dockerfile ARGs). Every one is served by the Go
# module proxy (checked below with `go list -m`), so no substitute versions are needed.
CONTAINERD_VERSION=v2.3.1
RUNC_VERSION=v1.4.2
CRICTL_VERSION=v1.36.0
CNI_PLUGINS_VERSION=v1.9.1
CONTAINERD_FUSE_OVERLAYFS_VERSION=v2.1.7

kind_dir=$(go mod download -json "sigs.k8s.io/kind@v${KIND_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
dockerfile="$kind_dir/images/base/Dockerfile"
# The pins above must be the ones this kind release builds with: a kind bump fails here
# instead of silently shipping another release's runtime.
for pin in CONTAINERD_VERSION RUNC_VERSION CRICTL_VERSION CNI_PLUGINS_VERSION CONTAINERD_FUSE_OVERLAYFS_VERSION; do
  grep -qx "ARG ${pin}=\"${!pin}\"" "$dockerfile" \
    || { echo "node-base: kind v${KIND_VERSION}'s Dockerfile does not pin ${pin}=${!pin}:" >&2; grep "ARG ${pin}=" "$dockerfile" >&2; exit 1; }
done
# The image name kind's node-image build starts FROM (`kind build node-image` default).
base_ref=$(sed -n 's/^const DefaultBaseImage = "\(docker\.io\/\)\{0,1\}\(.*\)"$/\2/p' "$kind_dir/pkg/build/nodeimage/defaults.go")
[[ "$base_ref" == kindest/base:v* ]] || { echo "node-base: no DefaultBaseImage in kind's defaults.go" >&2; exit 1; }

# --- binaries, built on the host: containerd, ctr and runc use cgo, so the host must be the
# image's Debian release (the same glibc and libseccomp the image installs).
. /etc/os-release
[ "${VERSION_CODENAME:-}" = "$DEBIAN_SUITE" ] \
  || { echo "node-base: builds on Debian $DEBIAN_SUITE hosts only (this is ${PRETTY_NAME:-unknown})" >&2; exit 1; }
command -v pkg-config >/dev/null && dpkg -s libseccomp-dev >/dev/null 2>&1 \
  || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libseccomp-dev pkg-config >/dev/null; }

origin_hash() {  # the release commit, where the proxy records it (version stamps)
  go mod download -json "$1" | python3 -c 'import json,sys; print((json.load(sys.stdin).get("Origin") or {}).get("Hash", ""))'
}
for m in "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" "github.com/opencontainers/runc@$RUNC_VERSION" \
         "sigs.k8s.io/cri-tools@$CRICTL_VERSION" "github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION" \
         "github.com/containerd/fuse-overlayfs-snapshotter/v2@$CONTAINERD_FUSE_OVERLAYFS_VERSION"; do
  go list -m "$m" >/dev/null
done

root="$KIT_WORK/ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/usr/local/sbin" "$root/opt/cni/bin"
# None of these modules has replace directives, so `go install MODULE/PKG@VERSION` builds
# exactly the release's go.mod/go.sum. Flags follow each project's Makefile.
export GOFLAGS="${GOFLAGS:-} -trimpath"

# containerd: Makefile (kind's BUILDTAGS; cgo on for containerd/ctr, a static cgo-less shim).
ctrd=github.com/containerd/containerd/v2
ctrd_ld="-s -w -X $ctrd/version.Version=$CONTAINERD_VERSION -X $ctrd/version.Revision=$(origin_hash "$ctrd@$CONTAINERD_VERSION") -X $ctrd/version.Package=$ctrd"
ctrd_tags="no_aufs no_zfs no_btrfs no_devmapper urfave_cli_no_docs"
GOBIN="$root/usr/local/bin" CGO_ENABLED=1 go install -tags "$ctrd_tags" -ldflags "$ctrd_ld" \
  "$ctrd/cmd/containerd@$CONTAINERD_VERSION" "$ctrd/cmd/ctr@$CONTAINERD_VERSION"
GOBIN="$root/usr/local/bin" CGO_ENABLED=0 go install -tags "$ctrd_tags no_grpc" -ldflags "$ctrd_ld -extldflags -static" \
  "$ctrd/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"

# runc: Makefile `make runc` (seccomp needs cgo + libseccomp; the version is embedded from VERSION).
GOBIN="$root/usr/local/sbin" CGO_ENABLED=1 go install -buildmode=pie -tags "seccomp urfave_cli_no_docs" \
  "github.com/opencontainers/runc@$RUNC_VERSION"

# crictl: Makefile (VERSION without the leading v).
GOBIN="$root/usr/local/bin" CGO_ENABLED=0 go install \
  -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION#v}" \
  "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"

# CNI plugins: only the four kind ships.
cni=github.com/containernetworking/plugins
GOBIN="$root/opt/cni/bin" CGO_ENABLED=0 go install \
  -ldflags "-X $cni/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
  "$cni/plugins/ipam/host-local@$CNI_PLUGINS_VERSION" "$cni/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
  "$cni/plugins/main/ptp@$CNI_PLUGINS_VERSION" "$cni/plugins/meta/portmap@$CNI_PLUGINS_VERSION"

# containerd-fuse-overlayfs (kind's rootless / fuse snapshotter): Makefile.
fo=github.com/containerd/fuse-overlayfs-snapshotter/v2
fo_ver=$fo/cmd/containerd-fuse-overlayfs-grpc/version
GOBIN="$root/usr/local/bin" CGO_ENABLED=0 go install \
  -ldflags "-s -w -X $fo_ver.Version=$CONTAINERD_FUSE_OVERLAYFS_VERSION -X $fo_ver.Revision=$(origin_hash "$fo@$CONTAINERD_FUSE_OVERLAYFS_VERSION")" \
  "$fo/cmd/containerd-fuse-overlayfs-grpc@$CONTAINERD_FUSE_OVERLAYFS_VERSION"

# Licenses of every module linked into those binaries (kind runs go-licenses for this):
# `go version -m` names each linked module; its LICENSE/NOTICE/COPYING files go to
# /LICENSES/<module path>/.
modcache=$(go env GOMODCACHE)
for bin in "$root"/usr/local/bin/* "$root"/usr/local/sbin/* "$root"/opt/cni/bin/*; do
  go version -m "$bin" | awk '$1=="mod" || $1=="dep" {print $2, $3}'
done | sort -u | while read -r path version; do
  # the module cache spells upper-case letters as !lower-case
  dir="$modcache/$(sed 's/[A-Z]/!\L&/g' <<<"$path")@$version"
  [ -d "$dir" ] || { echo "node-base: $path@$version is not in the module cache" >&2; exit 1; }
  for f in "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/COPYING* "$dir"/NOTICE*; do
    if [ -f "$f" ]; then install -D -m 0644 "$f" "$root/LICENSES/$path/$(basename "$f")"; fi
  done
done

# --- kind's base files, with the modes kind's Dockerfile gives them ---
files="$kind_dir/images/base/files"
cp -r "$files/etc" "$files/kind" "$root/"
install -m 0755 "$files"/usr/local/bin/* "$root/usr/local/bin/"
install -D -m 0644 "$files/LICENSES/README.txt" "$root/LICENSES/README.txt"
chmod -R u+w,go-w "$root"
find "$root/etc" "$root/kind" -type f -exec chmod 0644 {} +
find "$root" -type d -exec chmod 0755 {} +
chmod 0755 "$root"/kind/bin/*

# --- the image: kind's RUN steps, then squashed to one layer like kind's `FROM scratch` stage ---
# Docker's classic builder: FROM resolves in the local image store, no registry is asked.
cat > "$KIT_WORK/ctx/Dockerfile" <<DOCKERFILE
FROM debian:${DEBIAN_SUITE}-slim AS build
COPY rootfs/ /
RUN echo "Installing Packages ..." \\
    && DEBIAN_FRONTEND=noninteractive clean-install \\
      systemd \\
      conntrack iptables nftables iproute2 ethtool util-linux mount kmod \\
      libseccomp2 pigz fuse-overlayfs \\
      nfs-common open-iscsi \\
      e2fsprogs \\
      bash ca-certificates curl jq procps \\
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
    && rm -f /lib/systemd/system/multi-user.target.wants/* \\
    && rm -f /etc/systemd/system/*.wants/* \\
    && rm -f /lib/systemd/system/local-fs.target.wants/* \\
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \\
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \\
    && rm -f /lib/systemd/system/basic.target.wants/* \\
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
    && ln -s /usr/lib/systemd/systemd /sbin/init
RUN systemctl enable kubelet.service \\
    && systemctl enable containerd.service \\
    && systemctl enable undo-mount-hacks.service \\
    && systemctl mask systemd-binfmt.service
RUN mkdir -p /etc/kubernetes/manifests
RUN ctr oci spec \\
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
        | jq 'del(.process.rlimits)' \\
        > /etc/containerd/cri-base.json \\
    && containerd --version && runc --version && crictl --version

FROM scratch
COPY --from=build / /
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build --force-rm -t "$base_ref" "$KIT_WORK/ctx"

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/base.tar" "$base_ref"
echo "$base_ref" > "$KIT_OUT/images.txt"
