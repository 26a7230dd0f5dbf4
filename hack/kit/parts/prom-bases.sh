#!/usr/bin/env bash
# The base images the Prometheus projects' own Dockerfiles build FROM, as stand-ins under the
# names those Dockerfiles give them, so the kit's parts use upstream's Dockerfiles unchanged:
#   quay.io/prometheus/busybox-linux-amd64:latest   (prometheus-operator, config-reloader)
#   gcr.io/distroless/static-debian13:nonroot-amd64 (prometheus, node_exporter: Dockerfile.distroless)
#   gcr.io/distroless/static-debian13:latest-amd64  (kube-state-metrics)
# Made from debian:<suite>-slim's packages: busybox-static for busybox; for distroless/static
# what it holds (CA roots, tzdata, passwd/group with root, nobody and nonroot, /tmp, nsswitch).
set -o errexit -o nounset -o pipefail
deb="debian:${DEBIAN_SUITE}-slim"
BUSYBOX=quay.io/prometheus/busybox-linux-amd64:latest
DISTROLESS=gcr.io/distroless/static-debian13
label=(--change "LABEL ${KIT_LABEL}")

# Files from Debian's packages, copied out of a throwaway container (apt reaches the mirror in plain HTTP).
mkdir -p from-debian
docker run --rm -v "$PWD/from-debian:/out" "$deb" bash -ec '
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static tzdata >/dev/null
  cp /bin/busybox /out/busybox
  cp /etc/ssl/certs/ca-certificates.crt /out/
  tar -C / -cf /out/zoneinfo.tar usr/share/zoneinfo
  chown -R '"$(id -u):$(id -g)"' /out'

common() { # common DIR: what both bases share
  mkdir -p "$1"/{etc/ssl/certs,tmp,root,home/nonroot}
  chmod 1777 "$1/tmp"; chmod 0700 "$1/root"
  cp from-debian/ca-certificates.crt "$1/etc/ssl/certs/"
  tar -C "$1" -xf from-debian/zoneinfo.tar
  echo 'hosts: files dns' > "$1/etc/nsswitch.conf"
}
# rootfs DIR: a tar of DIR, every file owned by root
rootfs() { tar --numeric-owner --owner=0 --group=0 -C "$1" -c . ; }

# --- busybox: /bin/busybox and its applets; nobody is 65534 as in upstream's image ---
b=busybox-root
common "$b"
mkdir -p "$b/bin"
install -m 0755 from-debian/busybox "$b/bin/busybox"
for applet in $("$b/bin/busybox" --list); do [ -e "$b/bin/$applet" ] || ln -s busybox "$b/bin/$applet"; done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' > "$b/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' > "$b/etc/group"
rootfs "$b" | docker import "${label[@]}" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["sh"]' - "$BUSYBOX" >/dev/null

# --- distroless/static: no shell; nonroot (65532) owns /home/nonroot ---
d=distroless-root
common "$d"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$d/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' > "$d/etc/group"
printf 'PRETTY_NAME="Distroless (kit stand-in on Debian %s)"\nID=debian\n' "$DEBIAN_SUITE" > "$d/etc/os-release"
rootfs "$d" > distroless.tar
env=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt')
docker import "${label[@]}" "${env[@]}" --change 'USER 0' --change 'WORKDIR /' - "$DISTROLESS:latest-amd64" < distroless.tar >/dev/null
# The nonroot tag: /home/nonroot owned by 65532 (no shell to chown with: the owner is in the tar).
mkdir -p nonroot-ctx
tar --numeric-owner --owner=65532 --group=65532 -C "$d" -cf nonroot-ctx/nonroot-home.tar ./home/nonroot
printf 'FROM %s\nADD nonroot-home.tar /\nUSER 65532\nWORKDIR /home/nonroot\n' "$DISTROLESS:latest-amd64" > nonroot-ctx/Dockerfile
docker build -q --label "$KIT_LABEL" -t "$DISTROLESS:nonroot-amd64" nonroot-ctx >/dev/null

# What their users rely on.
[ "$(docker run --rm "$BUSYBOX" sh -c 'id -u nobody; echo ok')" = "$(printf '65534\nok')" ]
docker run --rm "$BUSYBOX" wget --help 2>&1 | grep -q Usage
[ "$(docker image inspect -f '{{.Config.User}}|{{.Config.WorkingDir}}' "$DISTROLESS:nonroot-amd64")" = "65532|/home/nonroot" ]
[ "$(docker image inspect -f '{{.Config.User}}' "$DISTROLESS:latest-amd64")" = "0" ]
if docker run --rm --entrypoint /bin/sh "$DISTROLESS:nonroot-amd64" -c true 2>/dev/null; then
  echo "distroless stand-in has a shell" >&2; exit 1
fi

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/prom-bases.tar" "$BUSYBOX" "$DISTROLESS:latest-amd64" "$DISTROLESS:nonroot-amd64"
printf '%s\n' "$BUSYBOX" "$DISTROLESS:latest-amd64" "$DISTROLESS:nonroot-amd64" > "$KIT_OUT/images.txt"
