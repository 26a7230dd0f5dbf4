#!/usr/bin/env bash
# Stand-in for the app's base image (KIT_PYTHON_BASE, app/Dockerfile's FROM line):
# Debian's Python 3.11 on debian:<suite>-slim, tagged with the official name.
set -o errexit -o nounset -o pipefail
ref="$KIT_PYTHON_BASE"
base="debian:${DEBIAN_SUITE}-slim"
mkdir -p ctx
cp "$KIT_PARTS/python/Dockerfile" ctx/
docker build -q --build-arg "BASE=$base" -t "$ref" ctx

docker run --rm "$ref" sh -c 'command -v python && python --version && python -m venv /tmp/v && /tmp/v/bin/pip --version'
# No CA beyond Debian's in the image (read from a created container's files: a running one would
# show the engine's mount). The app image built FROM it inherits its bundle as it is.
docker run --rm "$base" cat /etc/ssl/certs/ca-certificates.crt > debian-bundle.crt
cid=$(docker create "$ref")
docker cp "$cid:/etc/ssl/certs/ca-certificates.crt" image-bundle.crt
docker rm "$cid" >/dev/null
[ -z "$(docker run --rm "$ref" ls /usr/local/share/ca-certificates)" ] \
  || { echo "python stand-in: /usr/local/share/ca-certificates is not empty" >&2; exit 1; }
python3 - debian-bundle.crt image-bundle.crt <<'PY'
import re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
debian, image = ({" ".join(c.split()) for c in pem.findall(open(p).read())} for p in sys.argv[1:])
if image - debian:
    sys.exit(f"python stand-in: {len(image - debian)} CA certificate(s) beyond Debian's in the image")
print("python stand-in: Debian's CA bundle only")
PY
# pip reaches the index in a container of it through the engine's CA (hack/engine/runc-wrapper), as
# the app's Dockerfile does in a build.
docker run --rm "$ref" sh -c 'python -m venv /tmp/v && /tmp/v/bin/pip download -q --no-deps -d /tmp/d pip' \
  || { echo "python stand-in: pip cannot reach the package index; is the engine hack/engine/start-engine.sh's?" >&2; exit 1; }

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/python.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
