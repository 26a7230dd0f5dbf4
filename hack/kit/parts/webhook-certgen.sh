#!/usr/bin/env bash
# Stand-in for KUBE_WEBHOOK_CERTGEN_IMAGE (ghcr.io/jkroepke/kube-webhook-certgen), which no registry
# reachable here serves: webhook-certgen/kube-webhook-certgen (Python: the kubernetes client and
# cryptography, hash-pinned) with the `create` and `patch` command lines kube-prometheus-stack's
# admission webhook Jobs pass. See hack/kit/README.md (Stand-ins).
set -o errexit -o nounset -o pipefail
ref="$KUBE_WEBHOOK_CERTGEN_IMAGE"
base="debian:${DEBIAN_SUITE}-slim"
mkdir -p ctx/extra-ca
cp "$KIT_PARTS"/webhook-certgen/{Dockerfile,requirements.txt,kube-webhook-certgen} ctx/
chmod 755 ctx/kube-webhook-certgen
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

# The image trusts what Debian trusts, nothing of the build machine's.
cmp <(docker run --rm --entrypoint cat "$ref" /etc/ssl/certs/ca-certificates.crt) debian-bundle.crt
[ -z "$(docker run --rm --entrypoint ls "$ref" /usr/local/share/ca-certificates)" ]
# The Jobs' command lines parse (read-only root, a non-root user, as the chart runs them) ...
run=(docker run --rm --read-only --user 2000:2000 --cap-drop ALL "$ref")
grep -q -- '--secret-name' <<<"$("${run[@]}" create --help)"
grep -q -- '--patch-failure-policy' <<<"$("${run[@]}" patch --help)"
# ... and a missing flag is refused as cobra refuses it (non-zero exit).
if "${run[@]}" create --namespace x 2>/dev/null; then echo "create without --host succeeded" >&2; exit 1; fi
# The certificates: a CA, and a serving certificate for the hosts signed by it.
docker run --rm --read-only --user 2000:2000 --entrypoint /opt/venv/bin/python3 "$ref" -c '
import importlib.machinery, importlib.util, ipaddress
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
loader = importlib.machinery.SourceFileLoader("certgen", "/kube-webhook-certgen")
spec = importlib.util.spec_from_loader("certgen", loader)
m = importlib.util.module_from_spec(spec); loader.exec_module(m)
ca_pem, cert_pem, key_pem = m.certificates("op,op.monitoring.svc,10.96.0.10")
ca, cert = x509.load_pem_x509_certificate(ca_pem), x509.load_pem_x509_certificate(cert_pem)
cert.verify_directly_issued_by(ca)
sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
assert sans.get_values_for_type(x509.DNSName) == ["op", "op.monitoring.svc"], sans
assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.96.0.10")], sans
assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
key = load_pem_private_key(key_pem, None)
assert key.public_key().public_numbers() == cert.public_key().public_numbers()
assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
print("certificates ok")'

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/webhook-certgen.tar" "$ref"
echo "$ref" > "$KIT_OUT/images.txt"
