#!/bin/sh
# curl when the first argument is an option or names no command; anything else as given.
set -e
case "$1" in
  -*) set -- curl "$@" ;;
  *) command -v "$1" >/dev/null 2>&1 || set -- curl "$@" ;;
esac
exec "$@"
