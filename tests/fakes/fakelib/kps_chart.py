"""kube-prometheus-stack 88.5.3 as helm-controller installs it: the objects, the images and the
hook Jobs the chart renders under a HelmRelease's values.

Read from the chart itself (its values.yaml and templates, subcharts kube-state-metrics 8.4.0,
prometheus-node-exporter 4.56.1 and grafana 12.11.1), and kept here apart from the product's pins
(tasks/versions.py): if the two disagree, the fake cluster's pulls fail in MIRRORS=offline as the
real nodes' would.
"""

# key: (values path of the image, registry, repository, tag); the chart pins tags, no digests.
IMAGES = {
    "operator": ("prometheusOperator.image", "quay.io", "prometheus-operator/prometheus-operator", "v0.93.1"),
    "reloader": ("prometheusOperator.prometheusConfigReloader.image", "quay.io",
                 "prometheus-operator/prometheus-config-reloader", "v0.93.1"),
    "prometheus": ("prometheus.prometheusSpec.image", "quay.io", "prometheus/prometheus", "v3.14.0-distroless"),
    "alertmanager": ("alertmanager.alertmanagerSpec.image", "quay.io", "prometheus/alertmanager", "v0.34.0"),
    "kube-state-metrics": ("kube-state-metrics.image", "registry.k8s.io", "kube-state-metrics/kube-state-metrics",
                           "v2.20.0"),
    # the tag is v<appVersion> plus "-distroless" while image.distroless is true (the parent chart sets it)
    "node-exporter": ("prometheus-node-exporter.image", "quay.io", "prometheus/node-exporter", "v1.12.1"),
    "certgen": ("prometheusOperator.admissionWebhooks.patch.image", "ghcr.io", "jkroepke/kube-webhook-certgen",
                "1.8.7"),
    "grafana": ("grafana.image", "docker.io", "grafana/grafana", "13.2.0"),
    "sidecar": ("grafana.sidecar.image", "quay.io", "kiwigrid/k8s-sidecar", "2.10.1"),
}


def get(vals, path, default):
    cur = vals
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


def image(vals, key):
    path, registry, repository, tag = IMAGES[key]
    o = get(vals, path, {}) or {}
    registry = get(vals, "global.imageRegistry", "") or o.get("registry") or registry
    tag = str(o.get("tag") or tag)
    if key == "node-exporter" and get(vals, "prometheus-node-exporter.image.distroless", True):
        tag += "-distroless"
    ref = "%s/%s:%s" % (registry, o.get("repository") or repository, tag)
    if o.get("digest"):
        ref += "@" + o["digest"]
    elif o.get("sha"):
        ref += "@sha256:" + str(o["sha"]).replace("sha256:", "")
    return ref


def enabled(vals, path, default=True):
    return bool(get(vals, path, default))


def certgen_needed(vals):
    return (enabled(vals, "prometheusOperator.enabled") and enabled(vals, "prometheusOperator.admissionWebhooks.enabled")
            and enabled(vals, "prometheusOperator.admissionWebhooks.patch.enabled")
            and not enabled(vals, "prometheusOperator.admissionWebhooks.certManager.enabled", False))


def hook_jobs(release, vals):
    """The pre-install/pre-upgrade hook Jobs: [(name, image)]. They run before the release's objects."""
    if not certgen_needed(vals):
        return []
    return [("%s-admission-create" % _full(release), image(vals, "certgen"))]


def _full(release):
    return (release if "kube-prometheus-stack" in release else "%s-kube-prometheus-stack" % release)[:26].rstrip("-")


def _sel(labels):
    return {k: v for k, v in labels.items() if k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app")}


def _container(name, img, port=None, pname="http", resources=None):
    c = {"name": name, "image": img}
    if port:
        c["ports"] = [{"containerPort": port, "name": pname, "protocol": "TCP"}]
    if resources:
        c["resources"] = resources
    return c


def _dep(name, ns, labels, containers, replicas=1):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns,
                                                                        "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": _sel(labels)},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers}}}}


def _svc(name, ns, labels, port, target, pname="http", selector=None):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
            "spec": {"type": "ClusterIP", "selector": selector or _sel(labels),
                     "ports": [{"name": pname, "port": port, "targetPort": target, "protocol": "TCP"}]}}


def _smon(name, ns, release, match, port, path="/metrics"):
    """One of the chart's own ServiceMonitors (labelled release=<release>, as the chart does)."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": ns, "labels": {"release": release,
                                                                   "app.kubernetes.io/instance": release}},
            "spec": {"selector": {"matchLabels": dict(match)}, "namespaceSelector": {"matchNames": [ns]},
                     "endpoints": [{"port": port, "path": path}]}}


def _selector(vals, kind, release):
    """The Prometheus CR's selector for ServiceMonitors/PodMonitors/rules/probes: everything when the
    values set <kind>SelectorNilUsesHelmValues false, else only objects labelled release=<release>."""
    if not enabled(vals, "prometheus.prometheusSpec.%sSelectorNilUsesHelmValues" % kind):
        return {}
    return {"matchLabels": {"release": release}}


def objects(release, version, ns, vals):
    """-> (objects, custom resources) the chart renders."""
    objs, crs = [], []
    full = _full(release)
    base = {"release": release, "app.kubernetes.io/instance": release, "app.kubernetes.io/part-of":
            "kube-prometheus-stack", "app.kubernetes.io/version": version, "chart": "kube-prometheus-stack-" + version,
            "heritage": "Helm"}
    operator = enabled(vals, "prometheusOperator.enabled")
    if operator:
        op = dict(base, **{"app": "kube-prometheus-stack-operator", "app.kubernetes.io/name":
                           "kube-prometheus-stack-prometheus-operator", "app.kubernetes.io/component": "prometheus-operator"})
        objs.append(_dep(full + "-operator", ns, op, [_container(
            "kube-prometheus-stack", image(vals, "operator"), 10250, "https",
            get(vals, "prometheusOperator.resources", None))]))
        objs.append(_svc(full + "-operator", ns, op, 443, "https", "https"))
        objs.append(_smon(full + "-operator", ns, release, {"app": "kube-prometheus-stack-operator",
                                                             "release": release}, "https"))
    if enabled(vals, "grafana.enabled"):
        g = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": release}
        containers = []
        # grafana's pod: one k8s-sidecar per loader that is on, then Grafana (the subchart's order)
        for loader, container, default in (("dashboards", "grafana-sc-dashboard", True),
                                           ("datasources", "grafana-sc-datasources", True)):
            if enabled(vals, "grafana.sidecar.%s.enabled" % loader, default):
                containers.append(_container(container, image(vals, "sidecar")))
        containers.append(_container("grafana", image(vals, "grafana"), 3000, "grafana",
                                     get(vals, "grafana.resources", None)))
        objs.append(_dep(release + "-grafana", ns, g, containers))
        objs.append(_svc(release + "-grafana", ns, g, get(vals, "grafana.service.port", 80), 3000, "http-web"))
    if enabled(vals, "kubeStateMetrics.enabled"):
        k = {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": release, "release": release}
        objs.append(_dep(release + "-kube-state-metrics", ns, k, [_container(
            "kube-state-metrics", image(vals, "kube-state-metrics"), 8080, "http",
            get(vals, "kube-state-metrics.resources", None))]))
        objs.append(_svc(release + "-kube-state-metrics", ns, k, 8080, "http"))
        objs.append(_smon(release + "-kube-state-metrics", ns, release,
                          {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": release},
                          "http"))
    if enabled(vals, "nodeExporter.enabled"):
        ne = {"app.kubernetes.io/name": "prometheus-node-exporter", "app.kubernetes.io/instance": release,
              "release": release}
        objs.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                     "metadata": {"name": release + "-prometheus-node-exporter", "namespace": ns, "labels": ne},
                     "spec": {"selector": {"matchLabels": _sel(ne)},
                              "template": {"metadata": {"labels": ne}, "spec": {
                                  "tolerations": [{"effect": "NoSchedule", "operator": "Exists"}],
                                  "containers": [_container("node-exporter", image(vals, "node-exporter"), 9100,
                                                            "http-metrics",
                                                            get(vals, "prometheus-node-exporter.resources", None))]}}}})
        objs.append(_svc(release + "-prometheus-node-exporter", ns, ne, 9100, 9100, "http-metrics"))
        objs.append(_smon(release + "-prometheus-node-exporter", ns, release,
                          {"app.kubernetes.io/name": "prometheus-node-exporter",
                           "app.kubernetes.io/instance": release}, "http-metrics"))
    if operator and enabled(vals, "prometheus.enabled"):
        name = full + "-prometheus"
        p = {"app.kubernetes.io/name": "prometheus", "prometheus": name, "app.kubernetes.io/instance": name,
             "operator.prometheus.io/name": name}
        reloader = image(vals, "reloader")
        # the operator's StatefulSet for the Prometheus CR: Prometheus, the reloader beside it, and
        # the reloader's init container writing the first configuration
        objs.append({"apiVersion": "apps/v1", "kind": "StatefulSet",
                     "metadata": {"name": "prometheus-" + name, "namespace": ns, "labels": dict(p)},
                     "spec": {"replicas": 1, "serviceName": "prometheus-operated", "selector": {"matchLabels": p},
                              "template": {"metadata": {"labels": p}, "spec": {
                                  "initContainers": [_container("init-config-reloader", reloader)],
                                  "containers": [
                                      _container("prometheus", image(vals, "prometheus"), 9090, "http-web",
                                                 get(vals, "prometheus.prometheusSpec.resources", None)),
                                      _container("config-reloader", reloader, 8080, "reloader-web")]}}}})
        svc_labels = dict(base, app="kube-prometheus-stack-prometheus", **{"app.kubernetes.io/name": "prometheus"})
        objs.append(_svc(name, ns, svc_labels, 9090, 9090, "http-web",
                         {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": name}))
        objs.append(_svc("prometheus-operated", ns, {"operated-prometheus": "true"}, 9090, "http-web", "http-web",
                         {"app.kubernetes.io/name": "prometheus"}))
        objs.append(_smon(name, ns, release, {"app": "kube-prometheus-stack-prometheus", "release": release},
                          "http-web"))
        crs.append({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                    "metadata": {"name": name, "namespace": ns, "labels": dict(base)},
                    "spec": {"replicas": 1, "image": image(vals, "prometheus"),
                             "retention": get(vals, "prometheus.prometheusSpec.retention", "10d"),
                             "scrapeInterval": get(vals, "prometheus.prometheusSpec.scrapeInterval", "30s"),
                             "evaluationInterval": get(vals, "prometheus.prometheusSpec.evaluationInterval", "30s"),
                             "serviceMonitorSelector": _selector(vals, "serviceMonitor", release),
                             "serviceMonitorNamespaceSelector": {},
                             "podMonitorSelector": _selector(vals, "podMonitor", release),
                             "podMonitorNamespaceSelector": {},
                             "ruleSelector": _selector(vals, "rule", release),
                             "ruleNamespaceSelector": {},
                             "probeSelector": _selector(vals, "probe", release),
                             "probeNamespaceSelector": {}}})
    if operator and enabled(vals, "alertmanager.enabled"):
        a = {"app.kubernetes.io/name": "alertmanager", "alertmanager": full + "-alertmanager"}
        objs.append({"apiVersion": "apps/v1", "kind": "StatefulSet",
                     "metadata": {"name": "alertmanager-%s-alertmanager" % full, "namespace": ns, "labels": dict(a)},
                     "spec": {"replicas": 1, "serviceName": "alertmanager-operated", "selector": {"matchLabels": a},
                              "template": {"metadata": {"labels": a}, "spec": {"containers": [
                                  _container("alertmanager", image(vals, "alertmanager"), 9093, "http-web"),
                                  _container("config-reloader", image(vals, "reloader"), 8080, "reloader-web")]}}}})
        objs.append(_svc(full + "-alertmanager", ns, a, 9093, 9093, "http-web"))
    return objs, crs
