"""docs/DESIGN.md's numbers table against the rendered manifests: every figure the design note
quotes (`| `layer:Kind/name:dotted.path` | value |`) must be the one Flux will apply."""
from __future__ import annotations

import pathlib
import re
from typing import Any

DESIGN_DOC = "docs/DESIGN.md"

_ROW = re.compile(r"^\|\s*`(?P<sel>[^`]+)`\s*\|\s*(?P<value>[^|]+?)\s*\|")


def design_rows(text: str) -> list[tuple[str, str]]:
    """Rows `| `layer:Kind/name:dotted.path` | value | ... |` of the numbers table."""
    out = []
    in_table = False
    for line in text.splitlines():
        if line.strip().startswith("<!-- numbers:begin"):
            in_table = True
        elif line.strip().startswith("<!-- numbers:end"):
            in_table = False
        elif in_table:
            m = _ROW.match(line.strip())
            if m:
                out.append((m.group("sel"), m.group("value").strip()))
    return out


def lookup(rendered: dict[str, list[dict]], selector: str) -> Any:
    """`apps/dev:HorizontalPodAutoscaler/app:spec.minReplicas` -> value.
    Path segments: dict keys, list indexes, or `[key=value]` list filters."""
    layer, ref, path = selector.split(":", 2)
    kind, _, name = ref.partition("/")
    matches = [o for o in rendered.get(layer, []) if o.get("kind") == kind and o["metadata"].get("name") == name]
    if not matches:
        raise KeyError(f"no {ref} in {layer}")
    value: Any = matches[0]
    segs = re.findall(r"\[[^\]]+\]|[^.\[\]]+", path)
    i = 0
    while i < len(segs):
        seg = segs[i]
        if seg.startswith("["):
            key, _, want = seg[1:-1].partition("=")
            value = next(item for item in value if str(item.get(key)) == want)
        elif isinstance(value, list):
            value = value[int(seg)]
        else:
            # Keys may contain dots (`requests.cpu`): take the longest that exists.
            for j in range(len(segs), i, -1):
                joined = ".".join(segs[i:j])
                if joined in value:
                    value, i = value[joined], j - 1
                    break
            else:
                raise KeyError(seg)
        i += 1
    return value


def design_problems(root: pathlib.Path, rendered: dict[str, list[dict]]) -> list[str]:
    path = root / DESIGN_DOC
    if not path.exists():
        return [f"{DESIGN_DOC}: missing"]
    rows = design_rows(path.read_text())
    if not rows:
        return [f"{DESIGN_DOC}: [design] no numbers table (<!-- numbers:begin --> ... <!-- numbers:end -->)"]
    p = []
    for selector, quoted in rows:
        try:
            actual = lookup(rendered, selector)
        except (KeyError, IndexError, StopIteration, ValueError, TypeError) as exc:
            p.append(f"{DESIGN_DOC}: [design] `{selector}` does not resolve in the rendered manifests ({exc})")
            continue
        if str(actual) != quoted.strip("`"):
            p.append(f"{DESIGN_DOC}: [design] `{selector}` is {actual!r} in the manifests, the note says {quoted}")
    return p
