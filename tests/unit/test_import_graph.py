"""The day-2 operations share helpers through the core (tasks/stats.py, signals.py, metrics_text.py,
debugpods.py, names.py, ...), never by importing one another: each can be read, changed or removed
alone. Read from the source (every import, also those inside functions), so nothing is executed."""
from __future__ import annotations

import ast
from pathlib import Path

TASKS = Path(__file__).resolve().parents[2] / "tasks"
DAY2 = {"hpa", "debug", "loadgen", "grafana", "status", "teardown", "info"}
# The HPA demo runs its load with the built-in generator when hey is missing: loadgen is the demo's
# engine (no task of its own), not a helper borrowed from another operation.
DECLARED = {("hpa", "loadgen")}
# Modules that assemble the operations into commands: they import them all by design.
ASSEMBLERS = {"graph", "inv", "operations"}


def tasks_imports(path: Path) -> set[str]:
    """The tasks modules PATH imports (first component under tasks/)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "tasks":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tasks" and len(parts) > 1:
                    found.add(parts[1])
    return found


def graph() -> dict[str, set[str]]:
    out = {}
    for path in TASKS.rglob("*.py"):
        rel = path.relative_to(TASKS)
        module = rel.parts[0].removesuffix(".py")
        out.setdefault(module, set()).update(tasks_imports(path) - {module})
    return out


def test_every_day2_module_exists():
    assert DAY2 <= set(graph())


def test_no_day2_module_imports_another():
    edges = {(a, b) for a, deps in graph().items() if a in DAY2 for b in deps if b in DAY2}
    assert edges == DECLARED, "day-2 modules share helpers through the core only"


def test_the_core_imports_no_day2_module():
    edges = {(a, b) for a, deps in graph().items() if a not in DAY2 | ASSEMBLERS for b in deps if b in DAY2}
    assert edges == set()
