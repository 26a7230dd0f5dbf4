"""Tiny Go text/template subset for docker --format.

Supported actions: {{.A.B}}, {{json .A.B}}, {{json .}}, {{index .A "k"}},
{{.Label "k"}} (ps), {{with .A}}...{{end}} (not nested). Anything else raises Unsupported (the CLI exits 2 with
"fake docker: unsupported template" so the limitation is loud)."""

import json
import re


class Unsupported(Exception):
    pass


_MISSING = object()
GO_MAPS = {"Networks", "Labels", "PortBindings", "Ports", "ExposedPorts", "Options", "Containers"}


def _walk(doc, path):
    cur = doc
    if path == ".":
        return cur
    parent = None
    for part in path.strip(".").split("."):
        if isinstance(cur, dict) and part in cur:
            parent, cur = part, cur[part]
        elif isinstance(cur, dict) and parent in GO_MAPS:
            return None  # missing key of a Go map: <no value> / json null
        else:
            return _MISSING
    return cur


def go_str(v):
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        raise Unsupported("map/slice printed without json")
    return str(v)


def go_json(v):
    s = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(template, doc, label_fn=None):
    template = template.replace("\\t", "\t").replace("\\n", "\n")

    def with_block(m):
        # {{with .X}}...{{end}}: the body with dot = .X, nothing when .X is empty or nil (docker version's
        # Server when no daemon answers)
        v = _walk(doc, m.group(1))
        if v is _MISSING:
            raise Unsupported("with " + m.group(1))
        return render(m.group(2), v, label_fn) if v not in (None, "", {}, [], False) else ""

    template = re.sub(r"\{\{\s*with\s+(\.[\w.]*)\s*\}\}(.*?)\{\{\s*end\s*\}\}", with_block, template,
                      flags=re.S)

    def action(m):
        body = m.group(1).strip()
        mm = re.fullmatch(r"json\s+(\.[\w.]*)", body)
        if mm:
            v = _walk(doc, mm.group(1))
            if v is _MISSING:
                raise Unsupported(body)
            return "null" if v is None else go_json(v)
        mm = re.fullmatch(r"(\.[\w.]*)", body)
        if mm:
            v = _walk(doc, mm.group(1))
            if v is _MISSING:
                raise Unsupported(body)
            return go_str(v)
        mm = re.fullmatch(r'index\s+(\.[\w.]*)\s+"([^"]*)"', body)
        if mm:
            v = _walk(doc, mm.group(1))
            if not isinstance(v, dict):
                raise Unsupported(body)
            return go_str(v.get(mm.group(2), ""))
        mm = re.fullmatch(r'\.Label\s+"([^"]*)"', body)
        if mm and label_fn:
            return label_fn(mm.group(1))
        raise Unsupported(body)

    return re.sub(r"\{\{(.*?)\}\}", action, template)
