#!/usr/bin/env bash
# The Prometheus Operator CRDs (monitoring.coreos.com) kube-prometheus-stack installs,
# from the operator's Go module: $KIT_OUT/crds/*.yaml, no images.
set -o errexit -o nounset -o pipefail
# The operator release chart 88.5.3 ships (its Chart.yaml appVersion; the chart's
# hack/update_crds.sh copies example/prometheus-operator-crd/ of that tag into crds/).
# Chart 88.0.0 moved to v0.93.0 and a later 88.x minor to v0.93.1; 91.0.0 moves to v0.94.0.
PROMETHEUS_OPERATOR_VERSION=v0.93.1
PINNED_FOR_CHART=88.5.3
MOD=github.com/prometheus-operator/prometheus-operator

if [ "$KUBE_PROMETHEUS_STACK_CHART" != "$PINNED_FOR_CHART" ]; then
  echo "KUBE_PROMETHEUS_STACK_CHART is $KUBE_PROMETHEUS_STACK_CHART; PROMETHEUS_OPERATOR_VERSION above is the" \
       "operator of chart $PINNED_FOR_CHART: set both to the new chart's appVersion" >&2
  exit 1
fi
src=$(go mod download -json "$MOD@$PROMETHEUS_OPERATOR_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
mkdir -p "$KIT_OUT/crds"
for f in "$src"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml; do
  { echo "# $MOD@$PROMETHEUS_OPERATOR_VERSION example/prometheus-operator-crd/${f##*/}" \
         "(the CRDs of kube-prometheus-stack $KUBE_PROMETHEUS_STACK_CHART)"
    cat "$f"; } > "$KIT_OUT/crds/${f##*/}"
done

# Every file one CRD of the group, stamped with this operator version; the kinds the lab's
# manifests use among them. BaseLoader: AlertmanagerConfig's matchType enum holds a bare `=`,
# which PyYAML's YAML 1.1 resolver types as a "value" tag no safe constructor accepts.
python3 - "$KIT_OUT/crds" "${PROMETHEUS_OPERATOR_VERSION#v}" <<'PY'
import pathlib, sys, yaml
out, version = pathlib.Path(sys.argv[1]), sys.argv[2]
kinds = set()
for path in sorted(out.glob("*.yaml")):
    (doc,) = [d for d in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader)) if d]
    assert doc["kind"] == "CustomResourceDefinition" and doc["spec"]["group"] == "monitoring.coreos.com", path
    assert doc["metadata"]["annotations"]["operator.prometheus.io/version"] == version, path
    kinds.add(doc["spec"]["names"]["kind"])
missing = {"ServiceMonitor", "PrometheusRule", "PodMonitor", "Prometheus"} - kinds
assert not missing, missing
print(f"{len(kinds)} CRDs: {', '.join(sorted(kinds))}")
PY
