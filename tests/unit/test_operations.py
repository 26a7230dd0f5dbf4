"""The table of operations is the one declaration: dodo.py, invoke and README follow it."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tasks import operations

ROOT = Path(__file__).resolve().parents[2]


def _doit_list() -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "doit", "list", "--all"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0]: line.split(None, 1)[1] if len(line.split()) > 1 else ""
            for line in proc.stdout.splitlines() if line.strip()}


def test_readme_makefile_table_is_the_table_of_operations():
    readme = (ROOT / "README.md").read_text()
    table = operations.makefile_table()
    assert table in readme, "README's Makefile table differs: paste `python -m tasks.operations` into it"


def test_doit_offers_every_operation_and_alias_with_its_doc_and_nothing_else():
    listed = _doit_list()
    expected = {op.name: op.doc for op in operations.OPERATIONS}
    expected |= {alias: f"Alias of `{op.name}`." for op in operations.OPERATIONS for alias in op.aliases}
    assert listed == expected


def test_invoke_offers_the_operations_marked_invoke_with_their_options():
    from tasks.inv import ns
    offered = {name: ns.tasks[name] for name in ns.task_names}
    assert set(offered) == {op.inv_name for op in operations.OPERATIONS if op.invoke}
    for op in operations.OPERATIONS:
        if op.invoke:
            task = offered[op.inv_name]
            assert task.__doc__ == op.doc or task.body.__doc__ == op.doc
            args = {a.name for a in task.get_arguments()}
            assert {o.name for o in op.options} <= args


def test_every_makefile_target_is_answered_once_and_names_are_unique():
    names = [op.name for op in operations.OPERATIONS] + [a for op in operations.OPERATIONS for a in op.aliases]
    assert len(names) == len(set(names))
    targets = [t for op in operations.OPERATIONS for t in op.make]
    assert len(targets) == len(set(targets))


def _graph() -> tuple[str, ...]:
    # Read, not imported: importing dodo.py takes the run lock.
    tree = ast.parse((ROOT / "dodo.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "GRAPH":
            return ast.literal_eval(node.value)
    raise AssertionError("dodo.py declares no GRAPH")


def test_graph_steps_are_operations_and_only_they_decide_up_to_date_from_reality():
    graph = _graph()
    assert graph[0] == "preflight" and graph[-1] == "verify"
    for name in graph:
        assert name in operations.BY_NAME
    for op in operations.OPERATIONS:
        if op.ready:
            assert op.name in graph, f"{op.name} checks reality but `doit setup` never runs it"
