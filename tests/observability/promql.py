"""A strict PromQL parser for the tests: enough of the language to prove that an
expression is well formed and to list the metric names and label matchers it uses.

It rejects unbalanced parentheses/braces/brackets, unknown functions and
aggregations, wrong argument counts, range-vector functions given an instant
vector (`rate(x)`), bad label matchers and durations, and trailing garbage.
Grafana's template variables are expanded first (`expand_grafana`).

    tree = parse('sum by (ns) (rate(x_total{a="b"}[5m])) > 0.1')
    selectors(tree)  -> [Selector(name="x_total", matchers=[("a", "=", "b")], range="5m")]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = {
    # name: takes a parameter before the vector
    "sum": False, "min": False, "max": False, "avg": False, "group": False, "stddev": False,
    "stdvar": False, "count": False, "count_values": True, "bottomk": True, "topk": True,
    "quantile": True, "limitk": True, "limit_ratio": True,
}
# name: (argument types, minimum count); "v" instant vector, "m" range vector, "s" scalar,
# "str" string, "*" repeat the previous type.
FUNCTIONS = {
    "abs": (["v"], 1), "absent": (["v"], 1), "absent_over_time": (["m"], 1), "ceil": (["v"], 1),
    "changes": (["m"], 1), "clamp": (["v", "s", "s"], 3), "clamp_max": (["v", "s"], 2),
    "clamp_min": (["v", "s"], 2), "day_of_month": (["v"], 0), "day_of_week": (["v"], 0),
    "day_of_year": (["v"], 0), "days_in_month": (["v"], 0), "delta": (["m"], 1), "deriv": (["m"], 1),
    "exp": (["v"], 1), "floor": (["v"], 1), "histogram_avg": (["v"], 1), "histogram_count": (["v"], 1),
    "histogram_sum": (["v"], 1), "histogram_stddev": (["v"], 1), "histogram_stdvar": (["v"], 1),
    "histogram_fraction": (["s", "s", "v"], 3), "histogram_quantile": (["s", "v"], 2),
    "double_exponential_smoothing": (["m", "s", "s"], 3), "holt_winters": (["m", "s", "s"], 3),
    "hour": (["v"], 0), "idelta": (["m"], 1), "increase": (["m"], 1), "irate": (["m"], 1),
    "label_join": (["v", "str", "str", "str", "*"], 3), "label_replace": (["v", "str", "str", "str", "str"], 5),
    "ln": (["v"], 1), "log2": (["v"], 1), "log10": (["v"], 1), "minute": (["v"], 0), "month": (["v"], 0),
    "predict_linear": (["m", "s"], 2), "rate": (["m"], 1), "resets": (["m"], 1), "round": (["v", "s"], 1),
    "scalar": (["v"], 1), "sgn": (["v"], 1), "sort": (["v"], 1), "sort_desc": (["v"], 1),
    "sort_by_label": (["v", "str", "*"], 1), "sort_by_label_desc": (["v", "str", "*"], 1),
    "sqrt": (["v"], 1), "time": ([], 0), "timestamp": (["v"], 1), "vector": (["s"], 1), "year": (["v"], 0),
    "pi": ([], 0), "deg": (["v"], 1), "rad": (["v"], 1),
    **{f: (["v"], 1) for f in ("acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin",
                               "sinh", "tan", "tanh")},
    **{f"{a}_over_time": (["m"], 1) for a in ("avg", "min", "max", "sum", "count", "stddev", "stdvar",
                                              "last", "present", "mad")},
    "quantile_over_time": (["s", "m"], 2),
}
RETURNS_SCALAR = {"scalar", "time", "pi"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "offset", "atan2"}
# Lowest to highest; "^" is right-associative.
PRECEDENCE = [("or",), ("and", "unless"), ("==", "!=", "<=", "<", ">=", ">"), ("+", "-"),
              ("*", "/", "%", "atan2"), ("^",)]
COMPARISONS = {"==", "!=", "<=", "<", ">=", ">"}
SET_OPS = {"and", "or", "unless"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+(?![A-Za-z0-9_]))
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_:]))
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|==|!=|<=|>=|[-+*/%^<>=(){}\[\],:@])
""", re.VERBOSE)


class PromQLError(ValueError):
    pass


@dataclass
class Token:
    kind: str
    text: str
    pos: int


@dataclass
class Selector:
    name: str | None
    matchers: list[tuple[str, str, str]] = field(default_factory=list)
    range: str | None = None

    def label(self, key: str) -> tuple[str, str] | None:
        return next(((op, v) for k, op, v in self.matchers if k == key), None)


@dataclass
class Node:
    kind: str        # selector, number, string, call, agg, binary, unary, paren, subquery
    type: str        # v (instant vector), m (range vector), s (scalar), str
    children: list[Node] = field(default_factory=list)
    name: str = ""
    selector: Selector | None = None


def tokenize(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise PromQLError(f"unexpected character {text[pos]!r} at {pos}")
        if m.lastgroup != "ws":
            out.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    out.append(Token("eof", "", pos))
    return out


def _rejects_empty(op: str, value: str) -> bool:
    """True when the matcher does not match the empty label value."""
    matches = {"=": value == "", "!=": value != "", "=~": re.fullmatch(value, "") is not None,
               "!~": re.fullmatch(value, "") is None}[op]
    return not matches


def _unquote(s: str) -> str:
    if s[0] == "`":
        return s[1:-1]
    return re.sub(r"\\(.)", r"\1", s[1:-1])


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    # -- token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "ident") and tok.text in texts

    def expect(self, text: str) -> Token:
        tok = self.next()
        if tok.text != text or tok.kind not in ("op", "ident"):
            raise PromQLError(f"expected {text!r} at {tok.pos}, found {tok.text or 'end of input'!r}")
        return tok

    def fail(self, what: str):
        tok = self.peek()
        raise PromQLError(f"{what} at {tok.pos} (found {tok.text or 'end of input'!r}) in {self.text!r}")

    # -- grammar
    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek().kind != "eof":
            self.fail("unexpected trailing input")
        return node

    def expr(self, level: int) -> Node:
        if level == len(PRECEDENCE):
            return self.unary()
        left = self.expr(level + 1)
        while self.at(*PRECEDENCE[level]):
            op = self.next().text
            if op in COMPARISONS and self.at("bool"):
                self.next()
            self.vector_matching(op)
            # "^" is right-associative: parse the right side at the same level.
            right = self.expr(level if op == "^" else level + 1)
            for side in (left, right):
                if side.type not in ("v", "s"):
                    raise PromQLError(f"operator {op!r} needs instant vectors or scalars, got {side.type}"
                                      f" in {self.text!r}")
            if op in SET_OPS and "s" in (left.type, right.type):
                raise PromQLError(f"set operator {op!r} needs two instant vectors in {self.text!r}")
            kind = "v" if "v" in (left.type, right.type) else "s"
            left = Node("binary", kind, [left, right], name=op)
        return left

    def labels(self) -> list[str]:
        self.expect("(")
        names = []
        while not self.at(")"):
            tok = self.next()
            if tok.kind != "ident":
                raise PromQLError(f"expected a label name at {tok.pos}, found {tok.text!r}")
            names.append(tok.text)
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        return names

    def vector_matching(self, op: str) -> None:
        if self.at("on", "ignoring"):
            self.next()
            self.labels()
            if self.at("group_left", "group_right"):
                if op in SET_OPS:
                    self.fail("no grouping allowed for set operations")
                self.next()
                if self.at("("):
                    self.labels()
        elif self.at("group_left", "group_right"):
            self.fail("group_left/group_right need on(...) or ignoring(...)")

    def unary(self) -> Node:
        if self.at("-", "+"):
            self.next()
            inner = self.unary()
            if inner.type not in ("v", "s"):
                self.fail("unary operator on a non-numeric value")
            return Node("unary", inner.type, [inner])
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.at("["):
                self.next()
                first = self.next()
                if first.kind != "duration":
                    raise PromQLError(f"expected a duration at {first.pos}, found {first.text!r}")
                if self.at(":"):
                    self.next()
                    if self.peek().kind == "duration":
                        self.next()
                    self.expect("]")
                    if node.type != "v":
                        self.fail("subquery on a non-instant-vector")
                    node = Node("subquery", "m", [node])
                else:
                    self.expect("]")
                    if node.kind != "selector" or node.selector.range is not None:
                        self.fail("range only allowed on a plain vector selector")
                    node.selector.range = first.text
                    node.type = "m"
            elif self.at("offset"):
                if node.kind not in ("selector", "subquery"):
                    self.fail("offset must follow a vector selector, a range or a subquery")
                self.next()
                if self.at("-"):
                    self.next()
                if self.next().kind != "duration":
                    self.fail("offset needs a duration")
            elif self.at("@"):
                if node.kind not in ("selector", "subquery"):
                    self.fail("@ must follow a vector selector, a range or a subquery")
                self.next()
                if self.at("start", "end"):
                    self.next()
                    self.expect("(")
                    self.expect(")")
                elif self.next().kind != "number":
                    self.fail("@ needs a timestamp, start() or end()")
            else:
                return node

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.next()
            return Node("number", "s")
        if tok.kind == "duration":  # a bare duration is a number of seconds in Prometheus 3
            self.next()
            return Node("number", "s")
        if tok.kind == "string":
            self.next()
            return Node("string", "str", name=_unquote(tok.text))
        if tok.kind == "ident" and tok.text.lower() in ("inf", "nan") and not self.peek(1).text in ("{", "("):
            self.next()
            return Node("number", "s")
        if self.at("("):
            self.next()
            inner = self.expr(0)
            self.expect(")")
            return Node("paren", inner.type, [inner])
        if self.at("{"):
            return self.selector(None)
        if tok.kind == "ident":
            if tok.text in AGGREGATIONS and (self.peek(1).text in ("(", "by", "without")):
                return self.aggregation()
            if self.peek(1).text == "(" and self.peek(1).kind == "op":
                return self.call()
            if tok.text in KEYWORDS:
                self.fail(f"unexpected keyword {tok.text!r}")
            self.next()
            return self.selector(tok.text)
        self.fail("expected an expression")
        raise AssertionError  # unreachable

    def selector(self, name: str | None) -> Node:
        matchers = []
        if self.at("{"):
            self.next()
            while not self.at("}"):
                label = self.next()
                if label.kind != "ident" or label.text in ("{", "}"):
                    raise PromQLError(f"expected a label name at {label.pos}, found {label.text!r}")
                op = self.next()
                if op.text not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"expected a label matcher operator at {op.pos}, found {op.text!r}")
                value = self.next()
                if value.kind != "string":
                    raise PromQLError(f"label value must be a quoted string at {value.pos}, found {value.text!r}")
                text = _unquote(value.text)
                if op.text in ("=~", "!~"):
                    try:
                        re.compile(text)
                    except re.error as exc:
                        raise PromQLError(f"bad regex {text!r}: {exc}") from None
                if label.text == "__name__":
                    if name is not None:
                        self.fail("metric name given twice")
                    if op.text == "=":
                        name = text
                matchers.append((label.text, op.text, text))
                if not self.at("}"):
                    self.expect(",")
            self.expect("}")
            if name is None and not any(_rejects_empty(op, v) for _, op, v in matchers):
                self.fail("vector selector must contain at least one non-empty matcher")
        return Node("selector", "v", selector=Selector(name, matchers))

    def aggregation(self) -> Node:
        name = self.next().text
        if self.at("by", "without"):
            self.next()
            self.labels()
        self.expect("(")
        if AGGREGATIONS[name]:
            param = self.expr(0)
            want = "str" if name == "count_values" else "s"
            if param.type != want:
                self.fail(f"{name} needs a {want} parameter")
            self.expect(",")
        inner = self.expr(0)
        if inner.type != "v":
            self.fail(f"{name} needs an instant vector, got {inner.type}")
        self.expect(")")
        if self.at("by", "without"):
            self.next()
            self.labels()
        return Node("agg", "v", [inner], name=name)

    def call(self) -> Node:
        tok = self.next()
        if tok.text not in FUNCTIONS:
            raise PromQLError(f"unknown function {tok.text!r} at {tok.pos} in {self.text!r}")
        types, minimum = FUNCTIONS[tok.text]
        self.expect("(")
        args = []
        while not self.at(")"):
            args.append(self.expr(0))
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        if len(args) < minimum or ("*" not in types and len(args) > len(types)):
            raise PromQLError(f"{tok.text}() takes {minimum}..{len(types)} arguments, got {len(args)}"
                              f" in {self.text!r}")
        for i, arg in enumerate(args):
            want = types[i] if i < len(types) and types[i] != "*" else types[types.index("*") - 1]
            got = arg.type
            if want == "s" and got == "s" or want == got:
                continue
            raise PromQLError(f"{tok.text}() argument {i + 1} must be {want}, got {got} in {self.text!r}")
        return Node("call", "s" if tok.text in RETURNS_SCALAR else "v", args, name=tok.text)


def parse(text: str) -> Node:
    return _Parser(text).parse()


def walk(node: Node):
    yield node
    for child in node.children:
        yield from walk(child)


def selectors(node: Node) -> list[Selector]:
    return [n.selector for n in walk(node) if n.kind == "selector"]


def functions(node: Node) -> set[str]:
    return {n.name for n in walk(node) if n.kind in ("call", "agg")}


GRAFANA_DEFAULTS = {"__rate_interval": "2m", "__interval": "30s", "__range": "1h", "__range_s": "3600",
                    "__interval_ms": "30000"}


def expand_grafana(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana's `$var`, `${var}` and `[[var]]` with values (built-ins have defaults)."""
    values = {**GRAFANA_DEFAULTS, **variables}

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise PromQLError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", sub, expr)
