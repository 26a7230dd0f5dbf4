"""The strict PromQL parser the other tests rely on: it must reject what Prometheus rejects."""
from __future__ import annotations

import promql
import pytest

GOOD = [
    'sum by (namespace) (rate(http_requests_total{namespace="dev", exported_endpoint="/work"}[5m]))',
    'histogram_quantile(0.99, sum by (namespace, le) (rate(x_bucket{a=~"b|c"}[5m])))',
    '(a > on (namespace) b) and on (namespace) c > 0.1',
    "vector(2 * 0.05 + 0.01)",
    "a >= on (x, y) group_left (z) b",
    "max_over_time(x[5m:30s] offset 1h)",
    '{__name__="x", job!=""}',
    "app:error_budget:ratio",
    "sum(x) by (a) / ignoring (b) sum(y) without (c)",
    "-x ^ 2 ^ 3",
    "x > bool 1",
]
BAD = [
    "sum(rate(x[5m])",          # unbalanced parenthesis
    "sum(rate(x[5m])))",
    'x{a="b"',                  # unbalanced brace
    "rate(x[5m]",
    "rate(x)",                  # range function on an instant vector
    "nosuchfn(x)",              # unknown function
    "x{a=b}",                   # unquoted label value
    'x{a~"b"}',                 # bad matcher operator
    'x{a=~"("}',                # bad regex
    "x[5q]",                    # bad duration
    "x[5m][5m]",
    "sum(x) by",
    "histogram_quantile(x)",    # argument count
    '{a=""}',                   # selector matching everything
    "x y",                      # trailing garbage
    "a and 1",                  # set operator with a scalar
    "a + on (b) group_left c and on (d) group_left e",
    "topk(x)",
    "sum(x) offset 5m",         # offset only after a selector or subquery
    "",
]


@pytest.mark.parametrize("expr", GOOD)
def test_parser_accepts_valid_promql(expr):
    promql.parse(expr)


@pytest.mark.parametrize("expr", BAD)
def test_parser_rejects_invalid_promql(expr):
    with pytest.raises(promql.PromQLError):
        promql.parse(expr)


def test_parser_lists_selectors_and_ranges():
    tree = promql.parse('sum by (ns) (rate(x_total{a="b", c=~"d|e"}[5m])) / on (ns) group_left y')
    sels = promql.selectors(tree)
    assert [(s.name, s.range) for s in sels] == [("x_total", "5m"), ("y", None)]
    assert sels[0].matchers == [("a", "=", "b"), ("c", "=~", "d|e")]
    assert promql.functions(tree) == {"sum", "rate"}


def test_grafana_variables_are_expanded():
    out = promql.expand_grafana('rate(x{namespace=~"$namespace"}[$__rate_interval])', {"namespace": "dev|staging"})
    assert out == 'rate(x{namespace=~"dev|staging"}[2m])'
    with pytest.raises(promql.PromQLError):
        promql.expand_grafana("x{a=\"$nope\"}", {})


@pytest.mark.parametrize("expr", GOOD)
def test_reference_parser_agrees_on_valid(expr):
    """Cross-check with promql-parser (the Rust parser's bindings) when it is installed."""
    ref = pytest.importorskip("promql_parser")
    ref.parse(expr)


@pytest.mark.parametrize("expr", [b for b in BAD if b not in ('x{a=~"("}',)])
def test_reference_parser_agrees_on_invalid(expr):
    ref = pytest.importorskip("promql_parser")
    with pytest.raises(ValueError):
        ref.parse(expr)
