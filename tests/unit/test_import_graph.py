"""The layout is the architecture: the day-2 operations (tasks/day2/) share helpers through the core
(tasks/core/), never by importing one another, so each can be read, changed or removed alone; the core
depends on nothing above it; the graph's steps (tasks/steps/) never reach into day-2 operations.
Read from the source (every import, also those inside functions), so nothing is executed."""
from __future__ import annotations

import ast
from pathlib import Path

TASKS = Path(__file__).resolve().parents[2] / "tasks"
# Modules that assemble the operations into commands: they import them all by design.
ASSEMBLERS = {"graph", "operations", "inv"}


def module_of(path: Path) -> str:
    """tasks/day2/hpa.py -> day2.hpa; tasks/graph.py -> graph; tasks/inv/common.py -> inv."""
    rel = path.relative_to(TASKS).with_suffix("")
    parts = rel.parts
    if parts[0] in ("core", "steps", "day2") and len(parts) > 1 and parts[1] != "__init__":
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def imports(path: Path) -> set[str]:
    """The tasks modules PATH imports, named as module_of names them."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "tasks" or len(parts) == 1:
                continue
            if parts[1] in ("core", "steps", "day2"):
                if len(parts) > 2:
                    found.add(f"{parts[1]}.{parts[2]}")
                else:
                    found.update(f"{parts[1]}.{alias.name}" for alias in node.names)
            else:
                found.add(parts[1])
    return found


def graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in TASKS.rglob("*.py"):
        module = module_of(path)
        out.setdefault(module, set()).update(imports(path) - {module})
    return out


def layer(module: str) -> str:
    return module.split(".")[0]


def test_every_part_has_modules():
    parts = {layer(m) for m in graph()}
    assert {"core", "steps", "day2", "validation", "operations", "graph", "inv", "versions"} <= parts


def test_no_day2_module_imports_another():
    edges = {(a, b) for a, deps in graph().items() if layer(a) == "day2" for b in deps if layer(b) == "day2"}
    assert edges == set(), "day-2 modules share helpers through tasks/core only"


def test_the_core_imports_nothing_above_it():
    edges = {(a, b) for a, deps in graph().items() if layer(a) == "core"
             for b in deps if layer(b) not in ("core", "versions")}
    assert edges == set()


def test_the_steps_never_reach_into_day2_operations():
    edges = {(a, b) for a, deps in graph().items() if layer(a) == "steps" for b in deps if layer(b) == "day2"}
    assert edges == set()
