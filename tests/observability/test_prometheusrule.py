"""The app's PrometheusRule, as each environment renders it: valid against the
Prometheus Operator CRD schema, every expression parses, every selector is
scoped to its own namespace and uses series that exist, and the error budget
follows that environment's FAIL_RATE."""
from __future__ import annotations

import promql
import pytest
from obs_names import ENVIRONMENTS, label_values, stored_series

REQUIRED_ALERTS = {"AppErrorBudgetExceeded", "AppLatencyP99High", "AppHPAAtMaxReplicas", "AppPodsNotReady"}


def _one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"want one {kind}/{name}, got {len(found)}"
    return found[0]


def _rules(objs):
    rule = _one(objs, "PrometheusRule", "app")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def _honor_labels(objs) -> bool:
    monitor = _one(objs, "ServiceMonitor", "app")
    return bool(monitor["spec"]["endpoints"][0].get("honorLabels", False))


def _fail_rate(objs) -> float:
    config = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("app-config"))
    return float(config["data"]["FAIL_RATE"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rule_validates_against_the_crd_schema(rendered, env):
    from tasks.validation import schemas

    rule = _one(rendered[f"apps/{env}"], "PrometheusRule", "app")
    assert ("monitoring.coreos.com/v1", "PrometheusRule") in schemas.crd_validators()
    assert schemas.schema_problems([rule], env) == []
    assert rule["metadata"]["namespace"] == env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_expression_parses_and_is_scoped_to_its_namespace(rendered, env):
    for rule in _rules(rendered[f"apps/{env}"]):
        assert "$(" not in rule["expr"], f"unresolved kustomize var in {rule['expr']!r}"
        tree = promql.parse(rule["expr"])
        for sel in promql.selectors(tree):
            assert sel.label("namespace") == ("=", env), \
                f"{rule.get('alert') or rule.get('record')}: {sel.name} is not limited to namespace {env}"
        if "labels" in rule and "namespace" in rule["labels"]:
            assert rule["labels"]["namespace"] == env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_expressions_use_only_series_that_exist(rendered, env, app_metrics):
    objs = rendered[f"apps/{env}"]
    rules = _rules(objs)
    honor = _honor_labels(objs)
    recorded = {r["record"]: {"namespace"} | set(r.get("labels") or {}) for r in rules if "record" in r}
    series = stored_series(app_metrics, honor, recorded)
    port = _one(objs, "ServiceMonitor", "app")["spec"]["endpoints"][0]["port"]
    targets = {"endpoint": {port}, "namespace": {env}, "job": {"app"}, "service": {"app"}, "container": {"app"}}
    for rule in rules:
        for sel in promql.selectors(promql.parse(rule["expr"])):
            assert sel.name in series, f"{sel.name} is neither exported by the app nor allow-listed"
            for label, op, value in sel.matchers:
                assert label in series[sel.name], f"{sel.name} has no label {label} in Prometheus"
                exported = label_values(app_metrics, sel.name, label, honor, targets)
                if exported is not None and op == "=":
                    assert value in exported, f"{sel.name}{{{label}={value!r}}}: Prometheus holds {sorted(exported)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_required_alerts_with_runbooks(rendered, env):
    rules = _rules(rendered[f"apps/{env}"])
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert REQUIRED_ALERTS <= set(alerts)
    for name, alert in alerts.items():
        notes = alert.get("annotations") or {}
        assert notes.get("runbook", "").strip() or notes.get("runbook_url", "").strip(), f"{name} has no runbook"
        assert notes.get("summary"), f"{name} has no summary"
        assert alert["labels"]["severity"]
    assert alerts["AppHPAAtMaxReplicas"]["for"] == "10m"
    assert "0.3" in alerts["AppLatencyP99High"]["expr"]
    assert "histogram_quantile" in {f for r in rules for f in promql.functions(promql.parse(r["expr"]))}
    assert "[5m]" in next(r["expr"] for r in rules if r.get("record") == "app:http_work_errors:ratio_rate5m")


def test_error_budget_follows_each_environments_fail_rate(rendered):
    budgets = {}
    for env in ENVIRONMENTS:
        objs = rendered[f"apps/{env}"]
        budget = next(r for r in _rules(objs) if r.get("record") == "app:error_budget:ratio")
        tree = promql.parse(budget["expr"])
        assert tree.kind == "call" and tree.name == "vector"
        # vector(2 * FAIL_RATE + 0.01): evaluate the scalar arithmetic.
        inner = budget["expr"][len("vector("):-1]
        value = eval(inner, {"__builtins__": {}})
        assert value == pytest.approx(2 * _fail_rate(objs) + 0.01)
        budgets[env] = value
    # FAIL_RATE differs per overlay (dev 0.05, staging 0.01, production 0): so do the budgets.
    assert budgets["dev"] > budgets["staging"] > budgets["production"] > 0
    # One rule text for all: the base holds it once, the overlays hold no PrometheusRule patch and
    # no rule text; what names it in an overlay is only the replacements that copy the overlay's
    # namespace and FAIL_RATE into it, and that block is the same in every overlay.
    import yaml
    from obs_names import REPO

    blocks = []
    for env in ENVIRONMENTS:
        overlay = REPO / "flux-cd" / "apps" / env
        kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        blocks.append(kustomization.pop("replacements", None))
        assert "PrometheusRule" not in yaml.safe_dump(kustomization), env
        assert "PrometheusRule" not in "".join(p.read_text() for p in overlay.glob("*.yaml")
                                               if p.name != "kustomization.yaml"), env
        for key in ("groups:", "expr:", "record:", "alert:"):
            assert key not in "".join(p.read_text() for p in overlay.glob("*.yaml")), (env, key)
    assert blocks[0] and all(block == blocks[0] for block in blocks)


def test_validate_reports_unresolved_vars_and_broken_dashboards(rendered):
    import copy

    from tasks.validation import stack

    assert stack.observability_problems(rendered) == []
    broken = copy.deepcopy(rendered)
    rule = _one(broken["apps/dev"], "PrometheusRule", "app")
    rule["spec"]["groups"][0]["rules"][0]["expr"] = 'vector($(APP_FAIL_RATE))'
    cm = next(o for o in broken["infrastructure"] if o["kind"] == "ConfigMap")
    cm["data"] = {"x.json": "{not json"}
    cm["metadata"]["annotations"] = {}
    problems = stack.observability_problems(broken)
    assert any("[alerts]" in p and "apps/dev" in p for p in problems)
    assert any("[dashboard]" in p and "not JSON" in p for p in problems)
    assert any("[dashboard]" in p and "substitute" in p for p in problems)
