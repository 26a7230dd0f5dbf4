"""hack/e2e/run.sh's verdict (hack/e2e/summary.py), without a cluster: CI must never end green with no
e2e test run. (Not marked e2e: part of the fast suite.)"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("e2e_summary", Path(__file__).resolve().parents[2] / "hack" / "e2e" / "summary.py")
summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(summary)


def counts(passed=0, failed=0, skipped=0, errors=0):
    return {"passed": passed, "failed": failed, "skipped": skipped, "errors": errors}


def test_every_test_skipped_fails():
    line, rc = summary.line_and_rc({"core": counts(skipped=30)}, "crds", "parts missing", 60, 600, 0)
    assert rc == 1 and "core NOT run: all 30 skipped" in line and line.startswith("e2e FAILED")


def test_nothing_collected_fails():
    assert summary.line_and_rc({}, "crds", "parts missing", 60, 600, 0)[1] == 1


def test_core_run_with_monitoring_left_out_passes_and_says_why_in_one_line():
    line, rc = summary.line_and_rc({"core": counts(passed=30)}, "crds", "kit parts not cached: prometheus", 60, 600, 0)
    assert rc == 0 and "\n" not in line
    assert "core ran: 30 passed" in line and "monitoring NOT run: kit parts not cached: prometheus" in line


@pytest.mark.parametrize("monitoring", [counts(passed=7, skipped=1), counts()])
def test_with_monitoring_full_a_skip_or_a_group_that_did_not_run_fails(monitoring):
    line, rc = summary.line_and_rc({"core": counts(passed=30), "monitoring": monitoring}, "full", "", 60, 600, 0)
    assert rc == 1, line


def test_a_filtered_run_may_select_no_monitoring_test():
    assert summary.line_and_rc({"core": counts(passed=2)}, "full", "", 60, 60, 0, filtered=True)[1] == 0


def test_pytest_failure_is_kept():
    line, rc = summary.line_and_rc({"core": counts(passed=29, failed=1)}, "crds", "x", 60, 600, 1)
    assert rc == 1 and "1 failed" in line
