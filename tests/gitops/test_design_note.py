"""docs/DESIGN.md stays true to the manifests: each row of its numbers table is
compared with the rendered objects."""

from __future__ import annotations

import re

from gitops_helpers import requires_kubectl

from tasks.core import names
from tasks import validation as v
from tasks.validation import design

pytestmark = requires_kubectl


def test_design_table_has_rows_for_every_environment(repo_root):
    rows = design.design_rows((repo_root / design.DESIGN_DOC).read_text())
    assert len(rows) >= 40
    for env in names.ENVIRONMENTS:
        assert any(sel.startswith(f"apps/{env}:HorizontalPodAutoscaler") for sel, _ in rows)
        assert any(sel.startswith(f"apps/{env}:ResourceQuota") for sel, _ in rows)


def test_every_row_matches_the_manifests(repo_root):
    _, rendered = v.render_all(repo_root)
    assert design.design_problems(repo_root, rendered) == []


def test_a_changed_manifest_number_is_caught(tree):
    path = tree / "flux-cd/apps/production/hpa-patch.yaml"
    path.write_text(path.read_text().replace("maxReplicas: 6", "maxReplicas: 5"))
    problems = v.validate(tree)
    assert any("[design]" in p and "HorizontalPodAutoscaler/app:spec.maxReplicas" in p for p in problems), problems


def test_a_changed_note_number_is_caught(tree):
    path = tree / design.DESIGN_DOC
    text = path.read_text()
    path.write_text(re.sub(r"(retention` \| )24h", r"\g<1>48h", text))
    problems = v.validate(tree)
    assert any("[design]" in p and "retention" in p for p in problems), problems


def test_prose_quotes_no_manifest_quantity_outside_the_table(repo_root):
    """Kubernetes quantities (Mi, Gi, m CPU) in the prose must be table values."""
    text = (repo_root / design.DESIGN_DOC).read_text()
    table_values = {value for _, value in design.design_rows(text)}
    prose = re.sub(r"<!-- numbers:begin -->.*<!-- numbers:end -->", "", text, flags=re.S)
    for quantity in re.findall(r"\b\d+(?:Mi|Gi|m)\b", prose):
        assert quantity in table_values, quantity
