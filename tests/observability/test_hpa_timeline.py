"""`doit hpa_demo`'s SVG timeline, from a recorded sample series: one <path> per
series, one point per sample that has a value, written into the state directory."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from obs_names import HERE

SERIES = {"replicas": "replicas", "desired": "desired", "cpu": "cpu", "target": "cpu_target", "rps": "rps",
          "p99": "p99"}
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def recorded():
    from tasks.day2.hpa import Sample

    doc = json.loads((HERE / "data" / "hpa_samples.json").read_text())
    return doc["namespace"], [Sample(**s) for s in doc["samples"]]


def _points(d: str) -> list[tuple[float, float]]:
    cmds = re.findall(r"([ML])(-?[\d.]+),(-?[\d.]+)", d)
    assert cmds and cmds[0][0] == "M" and all(c == "L" for c, _, _ in cmds[1:])
    assert re.sub(r"[ML]-?[\d.]+,-?[\d.]+", "", d).strip() == ""
    return [(float(x), float(y)) for _, x, y in cmds]


def test_one_path_per_series_with_one_point_per_sample(recorded):
    from tasks.core import svg

    _, samples = recorded
    root = ET.fromstring(svg.render(samples, "HPA app in dev"))
    assert root.tag == f"{SVG}svg"
    paths = {p.get("data-series"): p for p in root.iter(f"{SVG}path")}
    assert set(paths) == set(SERIES), "replicas, desired, CPU, CPU target, req/s and p99 each get one path"
    assert len(list(root.iter(f"{SVG}path"))) == len(SERIES)
    for name, field in SERIES.items():
        expected = [s for s in samples if getattr(s, field) is not None]
        points = _points(paths[name].get("d"))
        assert len(points) == len(expected), name
        xs = [x for x, _ in points]
        assert xs == sorted(xs), f"{name}: time runs left to right"


def test_points_follow_the_values(recorded):
    """Higher values are drawn higher (smaller y) within a panel."""
    from tasks.core import svg

    _, samples = recorded
    root = ET.fromstring(svg.render(samples))
    d = {p.get("data-series"): _points(p.get("d")) for p in root.iter(f"{SVG}path")}
    cpu = [s.cpu for s in samples]
    ys = [y for _, y in d["cpu"]]
    hi, lo = cpu.index(max(cpu)), cpu.index(min(cpu))
    assert ys[hi] < ys[lo]
    assert len({y for _, y in d["target"]}) == 1  # the target is constant


def test_series_without_values_are_left_out(recorded):
    from tasks.core import svg

    _, samples = recorded
    for s in samples:
        s.rps = None
    root = ET.fromstring(svg.render(samples))
    assert "rps" not in {p.get("data-series") for p in root.iter(f"{SVG}path")}


def test_hpa_demo_writes_the_timeline_into_the_state_directory(recorded, tmp_path, monkeypatch, capsys):
    from tasks.day2 import hpa

    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NO_COLOR", "1")
    ns, samples = recorded
    path = hpa._timeline(samples, ns)
    assert path == tmp_path / hpa.TIMELINE
    assert str(path) in capsys.readouterr().out
    root = ET.parse(path).getroot()
    assert len(list(root.iter(f"{SVG}path"))) == len(SERIES)
    assert hpa._timeline(samples[:1], ns) is None  # one sample draws no line
