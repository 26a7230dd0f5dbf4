#!/usr/bin/env bash
# Start a Docker engine for the e2e suite on a machine that has none (CI sandboxes).
# Test tooling: a user's laptop already runs Docker Desktop/Engine and never needs this.
#
#   hack/engine/start-engine.sh        install (Debian's docker.io) if missing, start, wait
#
# Idempotent. A Docker daemon that already answers is left exactly as it is: this
# script never rewrites the configuration of a Docker it did not set up.
set -o errexit -o nounset -o pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
WRAPPER=/usr/local/libexec/gitops-lab/runc-wrapper
MARKER=/etc/docker/.gitops-lab-engine
LOG=${DOCKERD_LOG:-/var/log/gitops-lab-dockerd.log}

say() { printf 'engine: %s\n' "$*"; }
die() { printf 'engine: error: %s\n' "$*" >&2; exit 1; }

HOST_CA=/usr/local/libexec/gitops-lab/host-ca.crt
# The wrapper and the host's CA bundle it hands to containers (see runc-wrapper): files dockerd reads
# at each container start, so refreshing them needs no restart.
install_wrapper() {
  install -D -m 0755 "$HERE/runc-wrapper" "$WRAPPER"
  if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$HOST_CA"
  fi
}

if docker info >/dev/null 2>&1; then
  if [ -e "$MARKER" ] && [ "$(id -u)" = 0 ]; then
    install_wrapper
    say "a Docker daemon this script set up already answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null)); its runc wrapper refreshed"
  else
    say "a Docker daemon already answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null)); left as it is"
  fi
  exit 0
fi
[ "$(id -u)" = 0 ] || die "no Docker daemon answers and starting one needs root (sudo $0)"

if ! command -v dockerd >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "no dockerd and no apt-get: install Docker Engine (https://docs.docker.com/engine/install/)"
  say "installing docker.io from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

# runc refuses --privileged (kind's nodes) when the capability bounding set lacks a
# capability Docker asks for (the wrapper then drops it).
missing_cap_sys_resource() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( (16#$bnd >> 24 & 1) == 0 ))
}
mkdir -p /etc/docker
if [ -e /etc/docker/daemon.json ] && [ ! -e "$MARKER" ]; then
  say "/etc/docker/daemon.json exists and is not ours; starting dockerd with it unchanged"
else
  # Always through the wrapper here: it drops capabilities only when the bounding set lacks them, and
  # gives builds the host's CA without putting it in any image.
  install_wrapper
  cat > /etc/docker/daemon.json <<JSON
{
  "runtimes": {"lab-runc": {"path": "$WRAPPER"}},
  "default-runtime": "lab-runc"
}
JSON
  touch "$MARKER"
  if missing_cap_sys_resource; then
    say "CAP_SYS_RESOURCE is not in this sandbox's bounding set: runc goes through $WRAPPER, which drops it"
  fi
  say "containers get the host's CA bundle at /dev/gitops-lab-host-ca.crt (PIP_CERT), outside their images"
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $LOG)"
  nohup dockerd >"$LOG" 2>&1 </dev/null &
fi
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    say "Docker $(docker version -f '{{.Server.Version}}') is up"
    exit 0
  fi
  sleep 0.5
done
die "dockerd did not answer within 60 s; see $LOG"
