"""Fixtures for the observability tests: the rendered GitOps tree, the dashboard,
and the metric names the real app exports (the app is started for real)."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (str(REPO), str(HERE), str(REPO / "tests" / "app")):
    if p not in sys.path:
        sys.path.insert(0, p)

from obs_names import DASHBOARD_FILE


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """layer -> objects, rendered like Flux does (tasks.validation.render_all)."""
    if not (os.environ.get("KUBECTL") or shutil.which("kubectl")):
        pytest.skip("kubectl (with kustomize v5) not on PATH")
    from tasks import validation

    return validation.render_all(REPO)[1]


@pytest.fixture(scope="session")
def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


@pytest.fixture(scope="session")
def app_metrics() -> dict[str, dict[str, set[str]]]:
    """{sample name: {label: values seen}} from the real app's /metrics after real traffic.

    FAIL_RATE=0.5 so that /work answers some 500s and the code="500" series exists.
    """
    from app_harness import Server
    from prometheus_client.parser import text_string_to_metric_families

    server = Server({"FAIL_RATE": "0.5"})
    try:
        server.wait_ready()
        for _ in range(12):
            server.get("/work")
        server.get("/healthz")
        server.get("/no-such-path")
        status, _, body = server.get("/metrics")
        assert status == 200
    finally:
        server.stop()
    out: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = out.setdefault(sample.name, {})
            for key, value in sample.labels.items():
                labels.setdefault(key, set()).add(value)
    return out
