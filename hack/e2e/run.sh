#!/usr/bin/env bash
# The e2e suite on this kind of machine: a Docker engine, the kit's tools and images, and
# the settings a lab needs where no container registry is reachable.
#
#   hack/e2e/run.sh [pytest args]     e.g. hack/e2e/run.sh -x -k hpa
#
# Exit 0 with one loud line when the kit is not cached (building it cold takes long; run
# `python3 hack/kit/kit.py build`); otherwise the suite's own exit code.
# On a laptop with internet: `pytest -m e2e tests/e2e` with your own kind/flux/kubectl is enough.
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}

if ! python3 hack/kit/kit.py check; then
  echo "################################################################################"
  echo "## E2E SKIPPED: the kit is not cached on this machine (python3 hack/kit/kit.py status)"
  echo "################################################################################"
  exit 0
fi
hack/engine/start-engine.sh
python3 hack/kit/kit.py build          # warm: checks keys, re-loads any image Docker lost
export PATH="$(python3 hack/kit/kit.py bin):$PATH"

# Where nothing can be pulled: the nodes pull from local mirrors filled from the kit's
# images (kind's "working offline" way: containerd hosts.toml); kube-prometheus-stack's
# images can't be built here, so only its CRDs; the kit's node image has no registry digest.
export MIRRORS=${MIRRORS:-offline}
export MONITORING=${MONITORING:-crds}
export CREATE_WAIT=${CREATE_WAIT:-600s}   # three nodes booting on two shared cores
export KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-$(python3 -c 'from tasks import versions; print(f"{versions.KIND_NODE_IMAGE_REPO}:{versions.K8S_VERSION}")')}

echo "e2e: kind $(kind version | awk '{print $2}'), flux $(flux version --client | awk '{print $2}'), kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), docker $(docker version -f '{{.Server.Version}}')"
echo "e2e: MIRRORS=$MIRRORS MONITORING=$MONITORING KIND_NODE_IMAGE=$KIND_NODE_IMAGE CREATE_WAIT=$CREATE_WAIT"
exec "$PYTHON" -m pytest -m e2e tests/e2e -v "$@"
