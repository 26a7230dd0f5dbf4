"""kubectl JSONPath subset: {.a.b}, [n], [*], [a:b], ..name, [?(@.k=="v")],
{range ...}{end}, quoted literals. Missing keys print nothing (kubectl get
uses AllowMissingKeys)."""

import json
import re


class JPError(Exception):
    pass


def _tokens(tmpl):
    """Split template into ('text', s) and ('expr', s) parts."""
    out = []
    i = 0
    buf = ""
    while i < len(tmpl):
        c = tmpl[i]
        if c == "{":
            if buf:
                out.append(("text", buf))
                buf = ""
            depth = 1
            j = i + 1
            inq = None
            while j < len(tmpl) and depth:
                if inq:
                    if tmpl[j] == "\\":
                        j += 1
                    elif tmpl[j] == inq:
                        inq = None
                elif tmpl[j] in "\"'":
                    inq = tmpl[j]
                elif tmpl[j] == "{":
                    depth += 1
                elif tmpl[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise JPError("unclosed action")
            out.append(("expr", tmpl[i + 1:j - 1].strip()))
            i = j
        else:
            buf += c
            i += 1
    if buf:
        out.append(("text", buf))
    return out


def _parse_path(p):
    steps = []
    i = 0
    if p.startswith("$"):
        p = p[1:]
    while i < len(p):
        if p.startswith("..", i):
            m = re.match(r"\.\.([\w\-/]+)", p[i:])
            if not m:
                raise JPError("bad recursive descent in %s" % p)
            steps.append(("rec", m.group(1)))
            i += m.end()
        elif p[i] == ".":
            m = re.match(r"\.([\w\-/\\.]*?)(?=\.|\[|$)", p[i:])
            name = m.group(1) if m else ""
            # escaped dots \. are part of the name
            m2 = re.match(r"\.((?:[\w\-/]|\\\.)*)", p[i:])
            name = m2.group(1)
            if name:
                steps.append(("field", name.replace("\\.", ".")))
            i += m2.end()
        elif p[i] == "[":
            j = p.index("]", i) if not p.startswith("[?(", i) else p.index(")]", i) + 1
            inner = p[i + 1:j]
            i = j + 1
            if inner == "*":
                steps.append(("all", None))
            elif inner.startswith("?("):
                steps.append(("filter", inner[2:-1]))
            elif ":" in inner:
                a, b = inner.split(":", 1)
                steps.append(("slice", (int(a) if a else None, int(b) if b else None)))
            elif re.fullmatch(r"-?\d+", inner):
                steps.append(("index", int(inner)))
            else:
                steps.append(("field", inner.strip("'\"")))
        elif p[i] == "@":
            i += 1
        else:
            raise JPError("unrecognized character in action: %s" % p[i:])
    return steps


def _cmp(val, op, lit):
    if op == "exists":
        return val is not None
    if isinstance(val, bool):
        val = "true" if val else "false"
    if op == "==":
        return str(val) == str(lit)
    if op == "!=":
        return str(val) != str(lit)
    try:
        a, b = float(val), float(lit)
    except (TypeError, ValueError):
        return False
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _filter(items, expr):
    m = re.fullmatch(r"\s*@((?:\.[\w\-/]+|\[[^\]]*\])*)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*", expr)
    if m:
        path, op, lit = m.group(1), m.group(2), m.group(3)
        lit = lit.strip("'\"")
    else:
        m = re.fullmatch(r"\s*@((?:\.[\w\-/]+)*)\s*", expr)
        if not m:
            raise JPError("unsupported filter %s" % expr)
        path, op, lit = m.group(1), "exists", None
    out = []
    for it in items:
        vals = _eval_steps([it], _parse_path(path)) if path else [it]
        if any(_cmp(v, op, lit) for v in vals) or (op == "exists" and vals):
            out.append(it)
    return out


def _eval_steps(cur, steps):
    for kind, arg in steps:
        nxt = []
        for v in cur:
            if kind == "field":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "index":
                if isinstance(v, list) and -len(v) <= arg < len(v):
                    nxt.append(v[arg])
            elif kind == "all":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            elif kind == "slice":
                if isinstance(v, list):
                    nxt.extend(v[arg[0]:arg[1]])
            elif kind == "filter":
                if isinstance(v, list):
                    nxt.extend(_filter(v, arg))
            elif kind == "rec":
                stack = [v]
                while stack:
                    x = stack.pop(0)
                    if isinstance(x, dict):
                        if arg in x:
                            nxt.append(x[arg])
                        stack.extend(x.values())
                    elif isinstance(x, list):
                        stack.extend(x)
        cur = nxt
    return cur


def fmt(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>" if False else ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True)
    return str(v)


def _literal(e):
    s = e[1:-1]
    return s.encode().decode("unicode_escape") if e[0] == '"' else s


def evaluate(tmpl, data):
    """-> string."""
    toks = _tokens(tmpl)
    out, _ = _run(toks, 0, data, data)
    return out


def _run(toks, i, root, cur):
    out = ""
    while i < len(toks):
        kind, s = toks[i]
        if kind == "text":
            out += s
            i += 1
            continue
        if s == "end":
            return out, i
        if s.startswith("range "):
            items = _eval_expr(s[6:].strip(), root, cur)
            # find matching end
            depth, j = 1, i + 1
            while j < len(toks):
                if toks[j][0] == "expr" and toks[j][1].startswith("range "):
                    depth += 1
                elif toks[j] == ("expr", "end"):
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            body = toks[i + 1:j]
            for it in items:
                o, _ = _run(body, 0, root, it)
                out += o
            i = j + 1
            continue
        parts = _split_expr(s)
        vals = []
        for p in parts:
            if p[:1] in "\"'":
                vals.append(_literal(p))
            else:
                vals.extend(fmt(v) for v in _eval_expr(p, root, cur))
        out += " ".join(vals)
        i += 1
    return out, i


def _split_expr(s):
    parts, buf, inq = [], "", None
    for c in s:
        if inq:
            buf += c
            if c == inq:
                inq = None
        elif c in "\"'" and not buf.strip():
            buf = c
            inq = c
        elif c in "\"'":
            buf += c
            inq = c
        elif c == " " and not buf.startswith(("[", "@")) and "[?(" not in buf:
            if buf.strip():
                parts.append(buf.strip())
            buf = ""
        else:
            buf += c
    if buf.strip():
        parts.append(buf.strip())
    return parts


def _eval_expr(p, root, cur):
    if p.startswith("@"):
        return _eval_steps([cur], _parse_path(p[1:]))
    if p.startswith("$"):
        return _eval_steps([root], _parse_path(p[1:]))
    if p.startswith(".") or p.startswith("["):
        return _eval_steps([cur], _parse_path(p))
    raise JPError('unrecognized identifier %s' % p)
