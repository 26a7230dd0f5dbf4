#!/usr/bin/env bash
# The e2e suite on this kind of machine: a Docker engine, the kit's tools and images, and the settings
# a lab needs where no container registry is reachable. See hack/e2e/README.md.
#
#   hack/e2e/run.sh [pytest args]     e.g. hack/e2e/run.sh -x -k hpa
#
# - Builds the kit parts the core suite needs when they are missing (cold: about 35 min on 2 cores).
# - MONITORING=full (the lab's default) when the monitoring stack's kit parts are cached, or built here
#   when E2E_BUILD_MONITORING=1 (or =auto and the time left before E2E_DEADLINE, epoch seconds, allows);
#   else MONITORING=crds and the `monitoring` tests are deselected, said in the summary line.
# - Runs the suite in a throwaway clone of this checkout (tests/e2e/conftest.py) with E2E_REQUIRED=1:
#   missing tools are an error, not a skip.
# - Ends with ONE line saying which groups ran and which did not and why; exits non-zero when the suite
#   failed, when no test ran, or when a group that ran skipped a test.
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
HERE=hack/e2e
started=$(date +%s)

# The parts the core suite needs (MONITORING=crds); every other part of the kit is the monitoring stack's.
CORE_PARTS="debian kind k8s node-base node-images node flux registry python metrics-server tools prom-crds"
# Cold build of the monitoring parts measured on 2 cores (hack/kit, issue 22), for E2E_BUILD_MONITORING=auto;
# and what the suite takes on top of that with MONITORING=full.
MONITORING_COLD_MIN=${MONITORING_COLD_MIN:-45}
E2E_FULL_MIN=${E2E_FULL_MIN:-60}

hack/engine/start-engine.sh

part_state() {  # "<part> <cached|MISSING|NOT>" for every part the kit declares
  python3 hack/kit/kit.py status 2>/dev/null | awk '$2 ~ /^(cached|MISSING|NOT)$/ {print $1, $2}' || true
}

missing_core=$(part_state | awk -v core=" $CORE_PARTS " 'index(core, " " $1 " ") && $2 != "cached" {print $1}' | xargs)
if [ -n "$missing_core" ]; then
  echo "e2e: kit parts missing for the core suite: $missing_core; building them (cold: about 35 min on 2 cores)"
fi
# Warm: checks keys and re-loads any image Docker lost; cold: builds. Either way the core's parts, always.
# shellcheck disable=SC2086
python3 hack/kit/kit.py build $CORE_PARTS

monitoring_parts=$(part_state | awk -v core=" $CORE_PARTS " '!index(core, " " $1 " ") {print $1}' | xargs)
monitoring_missing=$(part_state | awk -v core=" $CORE_PARTS " '!index(core, " " $1 " ") && $2 != "cached" {print $1}' | xargs)
monitoring_why=""
if [ -z "$monitoring_parts" ]; then
  monitoring_why="the kit declares no monitoring parts (hack/kit/kit.py PARTS)"
elif [ -n "$monitoring_missing" ]; then
  build=${E2E_BUILD_MONITORING:-0}
  if [ "$build" = auto ]; then
    left=$(( (${E2E_DEADLINE:-0} - $(date +%s)) / 60 ))
    if [ "${E2E_DEADLINE:-0}" -gt 0 ] && [ "$left" -ge $((MONITORING_COLD_MIN + E2E_FULL_MIN)) ]; then build=1; else
      monitoring_why="kit parts not cached: $monitoring_missing (building them takes ~${MONITORING_COLD_MIN} min cold; ${left} min left of CI's budget, ${E2E_FULL_MIN} min needed after them for the suite; run \`python3 hack/kit/kit.py build\`)"
    fi
  elif [ "$build" != 1 ]; then
    monitoring_why="kit parts not cached: $monitoring_missing (run \`python3 hack/kit/kit.py build\`, or E2E_BUILD_MONITORING=1)"
  fi
  if [ "$build" = 1 ]; then
    echo "e2e: building the monitoring stack's kit parts: $monitoring_missing"
    # shellcheck disable=SC2086
    python3 hack/kit/kit.py build $monitoring_parts || monitoring_why="building kit parts $monitoring_missing failed (see its log above)"
  fi
fi
if [ -z "$monitoring_why" ] && [ -n "$monitoring_parts" ]; then
  # shellcheck disable=SC2086
  python3 hack/kit/kit.py build $monitoring_parts >/dev/null   # warm: re-loads images Docker lost
fi
export PATH="$(python3 hack/kit/kit.py bin):$PATH"
kit_seconds=$(( $(date +%s) - started ))
echo "e2e: engine and kit ready in ${kit_seconds}s"

# Where nothing can be pulled: the nodes pull from local mirrors filled from the kit's images (kind's
# "working offline" way: containerd hosts.toml); the kit's node image has no registry digest.
export MIRRORS=${MIRRORS:-offline}
if [ -z "${MONITORING:-}" ]; then
  if [ -z "$monitoring_why" ]; then MONITORING=full; else MONITORING=crds; fi
fi
export MONITORING
if [ "$MONITORING" = full ]; then
  # Sandbox-only Helm values merged into the throwaway clone's HelmRelease (README.md: which and why).
  export E2E_HELM_VALUES=${E2E_HELM_VALUES:-$PWD/$HERE/sandbox-values.yaml}
  # The chart comes from the kit's loopback chart server, read as the ghcr.io upstream by `doit mirror_fill`
  # (a user's mirror_fill reads ghcr.io itself): hack/kit/README.md, "The chart".
  export MIRROR_REMOTES=${MIRROR_REMOTES:-$(python3 hack/kit/kit.py chart-remote)}
  marks="e2e"
  [ -z "$monitoring_why" ] || echo "e2e: MONITORING=full by request, although: $monitoring_why"
  monitoring_why=""
else
  marks="e2e and not monitoring"
  monitoring_why=${monitoring_why:-"MONITORING=$MONITORING was asked for"}
fi
export CREATE_WAIT=${CREATE_WAIT:-600s}   # three nodes booting on two shared cores
export KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-$(python3 -c 'from tasks import versions; print(f"{versions.KIND_NODE_IMAGE_REPO}:{versions.K8S_VERSION}")')}
export E2E_REQUIRED=1
work=${LAB_E2E_WORK:-${TMPDIR:-/tmp}/gitops-lab-e2e}
summary=$(mktemp "${TMPDIR:-/tmp}/e2e-summary.XXXXXX.json")
export E2E_SUMMARY=$summary

echo "e2e: kind $(kind version | awk '{print $2}'), flux $(flux version --client | awk '{print $2}'), kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), docker $(docker version -f '{{.Server.Version}}')"
echo "e2e: MIRRORS=$MIRRORS MONITORING=$MONITORING KIND_NODE_IMAGE=$KIND_NODE_IMAGE CREATE_WAIT=$CREATE_WAIT; clone and state under $work"
rc=0
suite_started=$(date +%s)
"$PYTHON" -m pytest -m "$marks" tests/e2e -v --durations=0 "$@" || rc=$?
"$PYTHON" "$HERE/summary.py" "$summary" "$MONITORING" "$monitoring_why" "$kit_seconds" \
  "$(( $(date +%s) - suite_started ))" "$rc" "$([ $# -gt 0 ] && echo 1 || echo 0)" || rc=$?
rm -f "$summary"
exit "$rc"
