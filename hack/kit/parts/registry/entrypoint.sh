#!/bin/sh
# The official registry:3's argument handling: a file is a config to serve, `sh` a shell,
# anything else a registry subcommand (`docker run registry:3 garbage-collect CONFIG`).
set -e
if [ "${1:-}" = sh ]; then shift; exec /bin/sh "$@"; fi
if [ -f "${1:-}" ]; then exec registry serve "$@"; fi
exec registry "$@"
