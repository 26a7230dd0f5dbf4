#!/usr/bin/env bash
# Stand-in for GRAFANA_SIDECAR_IMAGE (quay.io/kiwigrid/k8s-sidecar), which is not on PyPI:
# k8s-sidecar/sidecar.py (Python: the kubernetes client, hash-pinned) watching labelled
# ConfigMaps/Secrets and writing their keys as files, configured by the environment Grafana's
# chart sets. See hack/kit/README.md (Stand-ins).
set -o errexit -o nounset -o pipefail
ref="$GRAFANA_SIDECAR_IMAGE"
base="debian:${DEBIAN_SUITE}-slim"
mkdir -p ctx/extra-ca
cp "$KIT_PARTS"/k8s-sidecar/{Dockerfile,requirements.txt,sidecar.py} ctx/
# The host's trusted CAs that Debian's bundle lacks, for the Dockerfile's build stage only.
docker run --rm "$base" cat /etc/ssl/certs/ca-certificates.crt > debian-bundle.crt
python3 - /etc/ssl/certs/ca-certificates.crt debian-bundle.crt ctx/extra-ca <<'PY'
import re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
host, debian, out = sys.argv[1:]
known = {" ".join(c.split()) for c in pem.findall(open(debian).read())}
for i, c in enumerate(c for c in pem.findall(open(host).read()) if " ".join(c.split()) not in known):
    open(f"{out}/kit-build-{i}.crt", "w").write(c + "\n")
PY
docker build -q --build-arg "BASE=$base" --label "$KIT_LABEL" -t "$ref" ctx >/dev/null

cmp <(docker run --rm --entrypoint cat "$ref" /etc/ssl/certs/ca-certificates.crt) debian-bundle.crt
# Without its settings it says what is missing and stops.
out=$(docker run --rm --read-only --cap-drop ALL "$ref" 2>&1) && { echo "sidecar started without LABEL" >&2; exit 1; }
grep -q 'LABEL must be set' <<<"$out"
# The files it writes, from a ConfigMap and a Secret as the API returns them (no cluster needed).
docker run --rm --read-only --tmpfs /tmp --cap-drop ALL -e LABEL=grafana_dashboard -e FOLDER=/tmp/dashboards \
  -e UNIQUE_FILENAMES=false "$ref" /opt/venv/bin/python3 -c '
import base64, os, sys
sys.path.insert(0, "/app")
import sidecar
from kubernetes import client
w = sidecar.Writer(sidecar.Settings())
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(namespace="monitoring", name="lab",
     annotations={"k8s-sidecar-target-directory": "lab"}), data={"lab.json": "{\"title\": \"lab\"}"})
assert w.apply("configmap", "ADDED", cm)
assert open("/tmp/dashboards/lab/lab.json").read() == "{\"title\": \"lab\"}"
assert not w.apply("configmap", "MODIFIED", cm)  # unchanged: nothing written, no reload
cm.data = {"other.json": "{}"}
assert w.apply("configmap", "MODIFIED", cm)
assert sorted(os.listdir("/tmp/dashboards/lab")) == ["other.json"]
secret = client.V1Secret(metadata=client.V1ObjectMeta(namespace="monitoring", name="ds"),
                         data={"ds.yaml": base64.b64encode(b"apiVersion: 1").decode()})
assert w.apply("secret", "ADDED", secret)
assert open("/tmp/dashboards/ds.yaml").read() == "apiVersion: 1"
assert w.apply("configmap", "DELETED", cm) and not os.path.exists("/tmp/dashboards/lab/other.json")
print("files ok")'

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/k8s-sidecar.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
