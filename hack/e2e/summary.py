#!/usr/bin/env python3
"""hack/e2e/run.sh's last word: ONE line saying which groups of the e2e suite ran and which did not, and
why; and the exit code. A run fails when pytest failed, when no test ran at all (every one skipped or
none collected), or when a group that ran skipped a test (a skip there is a check that did not happen).

    summary.py SUMMARY_JSON MONITORING WHY_MONITORING_DID_NOT_RUN KIT_SECONDS SUITE_SECONDS PYTEST_RC FILTERED

FILTERED is 1 when the run was given pytest arguments (e.g. -k): then a group may rightly select no test;
without them, every group that was meant to run must have run.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def line_and_rc(counts: dict, monitoring: str, why: str, kit: int, suite: int, pytest_rc: int,
                filtered: bool = False) -> tuple[str, int]:
    rc = pytest_rc
    parts = []
    for group in ("core", "monitoring"):
        c = counts.get(group)
        ran = bool(c) and c["passed"] + c["failed"] > 0
        if group == "monitoring" and why:
            parts.append(f"monitoring NOT run: {why}")
            continue
        if not ran:
            if not filtered:
                rc = rc or 1  # meant to run, and nothing was proven
            parts.append(f"{group} NOT run: " + (f"all {c['skipped']} skipped" if c and c["skipped"]
                                                  else "no test selected"))
            continue
        text = f"{group} ran: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
        if c["errors"]:
            text += f", {c['errors']} errors"
        if group == "monitoring":
            text += f" (MONITORING={monitoring})"
        parts.append(text)
        if c["skipped"]:
            rc = rc or 1
    if not any(c["passed"] + c["failed"] for c in counts.values()):
        rc = rc or 1
    verdict = "PASSED" if rc == 0 else "FAILED"
    return (f"e2e {verdict} (kit {kit // 60}m{kit % 60:02d}s, suite {suite // 60}m{suite % 60:02d}s): "
            + "; ".join(parts)), rc


def main(argv: list[str]) -> int:
    path, monitoring, why, kit, suite, pytest_rc, filtered = argv
    try:
        counts = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        counts = {}
    line, rc = line_and_rc(counts, monitoring, why, int(kit), int(suite), int(pytest_rc), filtered == "1")
    print(line)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
