#!/usr/bin/env bash
# Stand-in for the app's base image (KIT_PYTHON_BASE, app/Dockerfile's FROM line):
# Debian's Python 3.11 on debian:<suite>-slim, tagged with the official name.
set -o errexit -o nounset -o pipefail
ref="$KIT_PYTHON_BASE"
base="debian:${DEBIAN_SUITE}-slim"
mkdir -p ctx/extra-ca
cp "$KIT_PARTS/python/Dockerfile" ctx/
# The host's trusted CAs that Debian's bundle lacks, one file each (update-ca-certificates
# reads one certificate per file and keeps them across later runs).
docker run --rm "$base" cat /etc/ssl/certs/ca-certificates.crt > debian-bundle.crt
python3 - /etc/ssl/certs/ca-certificates.crt debian-bundle.crt ctx/extra-ca <<'PY'
import re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
host, debian, out = sys.argv[1:]
known = {" ".join(c.split()) for c in pem.findall(open(debian).read())}
extra = [c for c in pem.findall(open(host).read()) if " ".join(c.split()) not in known]
for i, c in enumerate(extra):
    open(f"{out}/kit-host-{i}.crt", "w").write(c + "\n")
print(f"{len(extra)} host CA certificate(s) added")
PY
docker build -q --build-arg "BASE=$base" -t "$ref" ctx

docker run --rm "$ref" sh -c 'command -v python && python --version && python -m venv /tmp/v && /tmp/v/bin/pip --version'

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/python.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
