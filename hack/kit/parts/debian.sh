#!/usr/bin/env bash
# debian:<suite>-slim stand-in: a minbase rootfs from Debian's packages (debootstrap),
# the base every other stand-in image starts FROM. apt inside it works as on the host.
set -o errexit -o nounset -o pipefail
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" rootfs "${mirror:-http://deb.debian.org/debian}"
rm -rf rootfs/var/lib/apt/lists/* rootfs/var/cache/apt/archives/*.deb
# Like the official image: no recommends, no docs.
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > rootfs/etc/apt/apt.conf.d/99-kit-norecommends
ref="debian:${DEBIAN_SUITE}-slim"
tar -C rootfs -c . | docker import --change 'CMD ["bash"]' - "$ref"
mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/debian.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
