#!/usr/bin/env bash
# Stand-ins for DEBUG_IMAGE (nicolaka/netshoot) and CURL_IMAGE (curlimages/curl) on
# debian:<suite>-slim, under the exact names tasks/versions.py pins. Debian's tool
# versions, not upstream's (its curl is 7.88, not 8.10): the lab only needs the tools.
set -o errexit -o nounset -o pipefail
base="debian:${DEBIAN_SUITE}-slim"
mkdir -p ctx
cp "$KIT_PARTS"/tools/* ctx/
# The legacy builder has no COPY --chmod: the mode comes from the context.
chmod 755 ctx/curl-entrypoint.sh
docker build -q --build-arg "BASE=$base" -f ctx/netshoot.Dockerfile -t "$DEBUG_IMAGE" ctx
docker build -q --build-arg "BASE=$base" -f ctx/curl.Dockerfile -t "$CURL_IMAGE" ctx

# What tasks/debug.py runs: `bash -l` in the debug image, as root and as the restricted
# Pod Security user (10001, no capabilities); `sleep` then `curl -sS -m 5 URL` in the curl image.
docker run --rm "$DEBUG_IMAGE" bash -lc 'for t in curl dig nc ping ip tcpdump jq; do command -v "$t"; done'
docker run --rm --user 10001:10001 --cap-drop ALL "$DEBUG_IMAGE" bash -lc 'curl --version | head -n1; dig -v 2>&1'
[ "$(docker run --rm "$CURL_IMAGE" id -u)" = 100 ]
docker run --rm "$CURL_IMAGE" --version | head -n1
docker run --rm --read-only --user 10001:10001 --cap-drop ALL --entrypoint sleep "$CURL_IMAGE" 0
# The exit codes the lab maps (7 refused, 28 timed out) are curl's own.
rc=0; docker run --rm --network none "$CURL_IMAGE" -sS -m 2 http://127.0.0.1:9/ || rc=$?
[ "$rc" = 7 ]

mkdir -p "$KIT_OUT/images"
docker save -o "$KIT_OUT/images/tools.tar" "$DEBUG_IMAGE" "$CURL_IMAGE"
printf '%s\n' "$DEBUG_IMAGE" "$CURL_IMAGE" > "$KIT_OUT/images.txt"
