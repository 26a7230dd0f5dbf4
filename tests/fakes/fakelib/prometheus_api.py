"""The Prometheus behind the fakes' port-forward to a kube-prometheus-stack Prometheus pod.

It answers Prometheus 3.14's HTTP API in its JSON shapes (web/api/v1/api.go), computed from the
fake cluster at each request, as the real server sees the cluster through the operator's config:
- /api/v1/targets: one target per pod port behind each Service that a ServiceMonitor selected by the
  Prometheus CR (serviceMonitorSelector / serviceMonitorNamespaceSelector) names; health "up" while the
  pod's containers run and NetworkPolicy lets the Prometheus pod reach that port, else "down" with the
  error a scrape gets (a dropped packet times out, a stopped pod refuses);
- /api/v1/rules and /api/v1/alerts: the groups of the PrometheusRules the CR's ruleSelector picks, one
  file per rule object, every rule health "ok"; an alerting rule is evaluated at each request: pending
  when its condition holds, firing once it has held for its `for`, inactive again when it stops holding
  (keep_firing_for is not modelled). Conditions the fake can judge (see `_condition`): the lab's
  error-budget alert (the app's running FAIL_RATE above the group's recorded budget while the namespace
  has load and its target is up), replicas unavailable (kube-state-metrics), an HPA at its maximum. Any
  other expression stays inactive. `for` is counted on Prometheus' clock: wall-clock time plus what
  the test advanced it by (FakeWorld.advance_prometheus_clock), so a 5-minute `for` takes no 5 minutes;
- /-/ready, /-/healthy, the UI's pages (/query, /alerts, /targets, /rules, ...), 404 elsewhere.

Usage: python -m fakelib.prometheus_api PORT STATE_DIR CLUSTER NAMESPACE POD
"""

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from . import appnet
from . import cluster as K
from .common import State, now_iso

UI_PAGES = ("/", "/query", "/graph", "/alerts", "/targets", "/rules", "/service-discovery", "/status", "/flags",
            "/config", "/tsdb-status", "/alertmanager-discovery", "/agent")
UI_HTML = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"/>"
           "<title>Prometheus Time Series Collection and Processing Server</title></head>"
           "<body><div id=\"root\"></div></body></html>\n")


# ---------------------------------------------------------------- what the Prometheus CR selects

def _prometheus_cr(cl, ns, pod):
    name = (pod["metadata"].get("labels") or {}).get("operator.prometheus.io/name", "")
    return K.find(cl, "Prometheus", ns, name) or {"spec": {}}


def _selected(cl, kind, selector, ns_selector, own_ns):
    """Objects of KIND the CR selects: label selector (None selects nothing), namespace selector ({}: all;
    absent: the Prometheus' own namespace)."""
    if selector is None:
        return []
    out = []
    for o in K.objs_of_kind(cl, kind):
        ons = o["metadata"]["namespace"]
        if ns_selector is None and ons != own_ns:
            continue
        if ns_selector is not None and not K.match_label_selector(appnet.ns_labels(cl, ons), ns_selector):
            continue
        if K.match_label_selector(o["metadata"].get("labels"), selector):
            out.append(o)
    return sorted(out, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


# ---------------------------------------------------------------- targets

def _running(pod):
    cs = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(cs) and all("running" in (c.get("state") or {}) for c in cs)


def _targets(cl, prom_pod, cr):
    spec = cr.get("spec") or {}
    own_ns = prom_pod["metadata"]["namespace"]
    active, dropped_counts = [], {}
    interval = spec.get("scrapeInterval") or "30s"
    for sm in _selected(cl, "ServiceMonitor", spec.get("serviceMonitorSelector"),
                        spec.get("serviceMonitorNamespaceSelector"), own_ns):
        sm_ns = sm["metadata"]["namespace"]
        nsel = (sm.get("spec") or {}).get("namespaceSelector") or {}
        if nsel.get("any"):
            namespaces = None
        else:
            namespaces = set(nsel.get("matchNames") or [sm_ns])
        for idx, ep in enumerate((sm.get("spec") or {}).get("endpoints") or []):
            pool = "serviceMonitor/%s/%s/%d" % (sm_ns, sm["metadata"]["name"], idx)
            dropped = 0
            for svc in K.objs_of_kind(cl, "Service"):
                sns = svc["metadata"]["namespace"]
                if namespaces is not None and sns not in namespaces:
                    continue
                sel = (svc.get("spec") or {}).get("selector") or {}
                pods = [p for p in K.objs_of_kind(cl, "Pod", sns)
                        if sel and (p.get("status") or {}).get("podIP")
                        and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
                svc_ports = svc["spec"].get("ports") or []
                matches = K.match_label_selector(svc["metadata"].get("labels"), sm["spec"].get("selector") or {})
                for sp in svc_ports:
                    wanted = matches and (sp.get("name") == ep.get("port") or
                                          (ep.get("targetPort") is not None and
                                           str(sp.get("targetPort")) == str(ep.get("targetPort"))))
                    for p in pods:
                        if not wanted:
                            dropped += 1  # discovered by the endpoints role, dropped by the operator's relabeling
                            continue
                        active.append(_target(cl, prom_pod, pool, sm, ep, svc, sp, p, interval))
            dropped_counts[pool] = dropped
    return active, dropped_counts


def _target(cl, prom_pod, pool, sm, ep, svc, sp, pod, interval):
    tp = sp.get("targetPort", sp["port"])
    port = appnet.named_port(pod, tp) if isinstance(tp, str) and not tp.isdigit() else int(tp)
    container = next((c["name"] for c in pod["spec"].get("containers") or []
                      for cp in c.get("ports") or [] if cp.get("containerPort") == port), "")
    ip = pod["status"]["podIP"]
    path = ep.get("path") or "/metrics"
    scheme = ep.get("scheme") or "http"
    url = "%s://%s:%d%s" % (scheme, ip, port, path)
    if not _running(pod):
        health, error = "down", 'Get "%s": dial tcp %s:%d: connect: connection refused' % (url, ip, port)
    elif not appnet.connection_allowed(cl, prom_pod, pod, port):
        health, error = "down", 'Get "%s": context deadline exceeded' % url
    else:
        health, error = "up", ""
    ns = pod["metadata"]["namespace"]
    job = svc["metadata"]["name"]
    job_label = (sm.get("spec") or {}).get("jobLabel")
    if job_label and (svc["metadata"].get("labels") or {}).get(job_label):
        job = svc["metadata"]["labels"][job_label]
    labels = {"container": container, "endpoint": ep.get("port") or str(ep.get("targetPort", "")),
              "instance": "%s:%d" % (ip, port), "job": job, "namespace": ns, "pod": pod["metadata"]["name"],
              "service": svc["metadata"]["name"]}
    discovered = {"__address__": "%s:%d" % (ip, port), "__meta_kubernetes_namespace": ns,
                  "__meta_kubernetes_service_name": svc["metadata"]["name"],
                  "__meta_kubernetes_pod_name": pod["metadata"]["name"],
                  "__meta_kubernetes_pod_ip": ip, "__meta_kubernetes_pod_node_name": pod["spec"].get("nodeName", ""),
                  "__meta_kubernetes_endpointslice_port_name": sp.get("name", ""),
                  "__meta_kubernetes_pod_ready": "true" if _pod_ready(pod) else "false",
                  "__metrics_path__": path, "__scheme__": scheme,
                  "__scrape_interval__": ep.get("interval") or interval,
                  "__scrape_timeout__": ep.get("scrapeTimeout") or "10s", "job": pool}
    return {"discoveredLabels": discovered, "labels": labels, "scrapePool": pool, "scrapeUrl": url,
            "globalUrl": url, "lastError": error,
            "lastScrape": now_iso(time.time() - 3).replace("Z", ".000000000Z"),
            "lastScrapeDuration": 0.002 if health == "up" else 10.0, "health": health,
            "scrapeInterval": ep.get("interval") or interval, "scrapeTimeout": ep.get("scrapeTimeout") or "10s"}


def _pod_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


# ---------------------------------------------------------------- rules

BUDGET = re.compile(r"^\s*vector\(\s*([0-9.+*/() -]+)\)\s*$")


def _number(expr):
    m = BUDGET.match(expr or "")
    if not m or not re.fullmatch(r"[0-9.+*/() -]+", m.group(1)):
        return None
    try:
        return float(eval(m.group(1), {"__builtins__": {}}, {}))  # digits and + - * / ( ) only
    except (SyntaxError, ZeroDivisionError, TypeError):
        return None


def _selector_value(expr, label):
    m = re.search(r'%s\s*=\s*"([^"]*)"' % re.escape(label), expr)
    return m.group(1) if m else None


def _condition(cl, st, ns, group, rule, up_namespaces):
    """-> (holds, value) for the alert's series in NS, as far as the fake can judge it."""
    expr = rule.get("expr", "")
    if "kube_deployment_status_replicas_unavailable" in expr:
        dep = K.find(cl, "Deployment", _selector_value(expr, "namespace") or ns,
                     _selector_value(expr, "deployment") or "")
        n = ((dep or {}).get("status") or {}).get("unavailableReplicas", 0)
        return n > 0, float(n)
    if "kube_horizontalpodautoscaler_status_current_replicas" in expr:
        hpa = K.find(cl, "HorizontalPodAutoscaler", _selector_value(expr, "namespace") or ns,
                     _selector_value(expr, "horizontalpodautoscaler") or "")
        cur = ((hpa or {}).get("status") or {}).get("currentReplicas", 0)
        return bool(hpa) and cur >= hpa["spec"].get("maxReplicas", 1), float(cur)
    if "errors:ratio" in expr or "error_budget" in expr:
        budget = next((_number(r.get("expr")) for r in group.get("rules") or []
                       if "error_budget" in r.get("record", "")), None)
        load = ((st.data.get("load") or {}).get(cl["name"]) or {}).get(ns)
        if budget is None or not load or ns not in up_namespaces:
            return False, 0.0
        rate = _fail_rate(cl, ns)
        return rate > budget, rate
    return False, 0.0


def _fail_rate(cl, ns):
    """FAIL_RATE as the app's running pods see it (env and envFrom resolved)."""
    for p in K.objs_of_kind(cl, "Pod", ns):
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "app" and _running(p):
            env = appnet.container_env(cl, p, (p["spec"].get("containers") or [{}])[0])
            try:
                return float(env.get("FAIL_RATE", "0") or 0)
            except ValueError:
                return 0.0
    return 0.0


def _template(text, labels, value):
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), text)
    return re.sub(r"\{\{\s*\$value[^}]*\}\}", "%g" % value, text)


def _duration_seconds(d):
    total = 0.0
    for n, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d or "0s"):
        total += int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[unit]
    return total


def _groups(cl, st, prom_pod, cr, up_namespaces, memory, clock):
    spec = cr.get("spec") or {}
    own_ns = prom_pod["metadata"]["namespace"]
    now = now_iso(clock).replace("Z", ".000000000Z")
    out = []
    for pr in _selected(cl, "PrometheusRule", spec.get("ruleSelector"), spec.get("ruleNamespaceSelector"), own_ns):
        ns, name = pr["metadata"]["namespace"], pr["metadata"]["name"]
        path = "/etc/prometheus/rules/prometheus-%s-rulefiles-0/%s-%s-%s.yaml" % (
            cr.get("metadata", {}).get("name", ""), ns, name, pr["metadata"].get("uid", ""))
        for group in (pr.get("spec") or {}).get("groups") or []:
            rules = []
            for rule in group.get("rules") or []:
                query = " ".join((rule.get("expr") or "").split())
                if "record" in rule:
                    rules.append({"name": rule["record"], "query": query, "labels": dict(rule.get("labels") or {}),
                                  "health": "ok", "evaluationTime": 0.000412, "lastEvaluation": now,
                                  "type": "recording"})
                    continue
                holds, value = _condition(cl, st, ns, group, rule, up_namespaces)
                key = "%s/%s/%s/%s" % (ns, name, group.get("name"), rule["alert"])
                labels = dict(rule.get("labels") or {}, alertname=rule["alert"], namespace=ns)
                seen = memory.get(key)
                hold = _duration_seconds(rule.get("for"))
                if not holds:
                    memory.pop(key, None)
                    alerts, state = [], "inactive"
                else:
                    if seen is None:
                        seen = memory[key] = {"activeAt": now, "since": clock}
                    state = "firing" if clock - seen["since"] >= hold else "pending"
                    alerts = [{"labels": labels,
                               "annotations": {k: _template(v, labels, value)
                                               for k, v in (rule.get("annotations") or {}).items()},
                               "state": state, "activeAt": seen["activeAt"], "value": _go_float(value)}]
                rules.append({"state": state, "name": rule["alert"], "query": query, "duration": hold,
                              "keepFiringFor": _duration_seconds(rule.get("keep_firing_for")),
                              "labels": dict(rule.get("labels") or {}),
                              "annotations": dict(rule.get("annotations") or {}), "alerts": alerts,
                              "health": "ok", "evaluationTime": 0.000731, "lastEvaluation": now,
                              "type": "alerting"})
            out.append({"name": group.get("name"), "file": path, "rules": rules,
                        "interval": _duration_seconds(group.get("interval") or spec.get("evaluationInterval")
                                                      or "30s"),
                        "limit": int(group.get("limit") or 0), "evaluationTime": 0.0021, "lastEvaluation": now})
    return out


def _go_float(v):
    """strconv.FormatFloat(v, 'e', -1, 64): the shortest digits that read back as v (5e-02, 1.25e+00)."""
    for p in range(17):
        text = "%.*e" % (p, v)
        if float(text) == v:
            return text
    return "%.16e" % v


# ---------------------------------------------------------------- the server

def main():
    port, sdir, cname, ns, pod_name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

    def read(evaluate):
        st = State(sdir)
        st.acquire()
        try:
            cl = st.data["clusters"][cname]
            pod = K.find(cl, "Pod", ns, pod_name)
            if pod is None:
                return None
            cr = _prometheus_cr(cl, ns, pod)
            active, dropped = _targets(cl, pod, cr)
            if not evaluate:
                return active, dropped, None
            up = {t["labels"]["namespace"] for t in active if t["health"] == "up"}
            prom = st.data.setdefault("prometheus", {}).setdefault(cname, {})
            clock = time.time() + prom.get("clock_offset", 0)
            groups = _groups(cl, st, pod, cr, up, prom.setdefault("alerts", {}), clock)
            return active, dropped, groups
        finally:
            st.release(save=evaluate)

    class H(BaseHTTPRequestHandler):
        server_version = "Prometheus"
        sys_version = ""

        def log_message(self, fmt, *args):
            sys.stderr.write(fmt % args + "\n")

        def send(self, code, body, ctype="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def api(self, data=None, error=None, error_type="bad_data", code=400):
            if error is not None:
                self.send(code, json.dumps({"status": "error", "errorType": error_type, "error": error}))
            else:
                self.send(200, json.dumps({"status": "success", "data": data}))

        def do_GET(self):
            u = urlparse(self.path)
            q = parse_qs(u.query)
            path = u.path
            if path == "/-/ready":
                return self.send(200, "Prometheus Server is Ready.\n", "text/plain; charset=utf-8")
            if path == "/-/healthy":
                return self.send(200, "Prometheus Server is Healthy.\n", "text/plain; charset=utf-8")
            if path in UI_PAGES:
                return self.send(200, UI_HTML, "text/html; charset=utf-8")
            if path == "/api/v1/targets":
                got = read(False)
                if got is None:
                    return self.api(error="prometheus pod gone", error_type="unavailable", code=503)
                active, dropped, _ = got
                state = (q.get("state") or [""])[0].lower()
                pool = (q.get("scrapePool") or [""])[0]
                show_active = state in ("", "any", "active")
                show_dropped = state in ("", "any", "dropped")
                return self.api({"activeTargets": [t for t in active if not pool or t["scrapePool"] == pool]
                                 if show_active else [],
                                 "droppedTargets": [], "droppedTargetCounts": dropped if show_dropped else None})
            if path in ("/api/v1/rules", "/api/v1/alerts"):
                typ = (q.get("type") or [""])[0].lower()
                if path == "/api/v1/rules" and typ not in ("", "alert", "record"):
                    return self.api(error='invalid parameter "type": not supported value "%s"' % typ)
                excl = (q.get("exclude_alerts") or [""])[0].lower()
                if excl not in ("", "true", "false", "1", "0", "t", "f"):
                    return self.api(error='invalid parameter "exclude_alerts": error converting exclude_alerts: '
                                          'strconv.ParseBool: parsing "%s": invalid syntax' % excl)
                got = read(True)
                if got is None:
                    return self.api(error="prometheus pod gone", error_type="unavailable", code=503)
                groups = got[2]
                if path == "/api/v1/alerts":
                    return self.api({"alerts": [a for g in groups for r in g["rules"] if r["type"] == "alerting"
                                                for a in r["alerts"]]})
                names = set(q.get("rule_name[]") or [])
                gnames = set(q.get("rule_group[]") or [])
                files = set(q.get("file[]") or [])
                out = []
                for g in groups:
                    if (gnames and g["name"] not in gnames) or (files and g["file"] not in files):
                        continue
                    rules = [dict(r, alerts=None) if excl in ("true", "1", "t") and r["type"] == "alerting" else r
                             for r in g["rules"]
                             if (not names or r["name"] in names)
                             and (typ == "" or (typ == "alert") == (r["type"] == "alerting"))]
                    if rules:
                        out.append(dict(g, rules=rules))
                return self.api({"groups": out})
            self.send(404, "404 page not found\n", "text/plain; charset=utf-8")

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    srv.daemon_threads = True
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
