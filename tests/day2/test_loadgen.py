"""The built-in load generator against real local HTTP servers, and its maths."""
from __future__ import annotations

import math
import re
import time
import urllib.request

import pytest

from tasks.core import loadgen, stats
from tasks.core.metrics_text import summarize_metrics


# --- maths ---------------------------------------------------------------------------------------

def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 90) == 90
    assert stats.percentile(values, 99) == 99
    assert stats.percentile(values, 100) == 100
    assert stats.percentile(values, 0) == 1
    assert stats.percentile([0.3], 99) == 0.3
    assert stats.percentile([], 50) is None
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_histogram_quantile_matches_prometheus():
    buckets = [(0.1, 50), (0.2, 100), (math.inf, 100)]
    assert stats.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert stats.histogram_quantile(0.99, buckets) == pytest.approx(0.198)
    assert stats.histogram_quantile(0.25, buckets) == pytest.approx(0.05)  # from 0 to the first bound
    # rank in the +Inf bucket: the highest finite bound
    assert stats.histogram_quantile(0.99, [(0.1, 10), (math.inf, 20)]) == pytest.approx(0.1)
    assert stats.histogram_quantile(0.5, [(0.1, 0), (math.inf, 0)]) is None
    assert stats.histogram_quantile(0.5, []) is None
    # empty buckets below the rank are skipped
    assert stats.histogram_quantile(0.5, [(0.05, 0), (0.1, 0), (0.2, 10), (math.inf, 10)]) == pytest.approx(0.15)


def test_summary_is_hey_like():
    s = loadgen.Summary(total=5, elapsed=2.0, latencies=[0.1, 0.2, 0.3, 0.4],
                        codes={200: 3, 500: 1}, errors={"timeout": 1})
    text = s.text()
    assert "Requests/sec: 2.5" in text
    for q in ("50% in 0.2000 secs", "90% in 0.4000 secs", "99% in 0.4000 secs"):
        assert q in text
    assert "[200]\t3 responses" in text and "[500]\t1 responses" in text
    assert "Error distribution" in text and "[1]\ttimeout" in text


def test_build_request_rejects_https():
    with pytest.raises(ValueError):
        loadgen.build_request("https://example.invalid/")
    host, port, req = loadgen.build_request("http://127.0.0.1:8123/work?x=1")
    assert (host, port) == ("127.0.0.1", 8123)
    assert req.startswith(b"GET /work?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8123\r\n")


# --- against a real local server ----------------------------------------------------------------------

def test_counts_match_what_the_server_saw(counting_server):
    s = loadgen.run(counting_server.url("/mixed"), 1.5, 8, progress=None)
    assert s.total > 50
    assert not s.errors
    assert s.total == counting_server.total("/mixed")
    assert s.codes[200] == counting_server.counts[("/mixed", 200)]
    assert s.codes[500] == counting_server.counts[("/mixed", 500)]
    assert s.codes[500] > 0
    assert len(s.latencies) == s.total


def test_bounded_by_count(counting_server):
    started = time.monotonic()
    s = loadgen.run(counting_server.url("/ok"), 30, 4, max_requests=100, progress=None)
    assert time.monotonic() - started < 10
    assert s.total == 100 == counting_server.total("/ok")


def test_bounded_by_time_and_stops_by_itself(counting_server):
    started = time.monotonic()
    s = loadgen.run(counting_server.url("/slow"), 1.0, 4, progress=None)
    took = time.monotonic() - started
    assert 0.9 < took < 2.5  # the last in-flight requests finish, then it stops
    assert 8 <= s.total <= 4 * 7
    assert s.total == counting_server.total("/slow")
    assert min(s.latencies) >= 0.19


def test_progress_every_second(counting_server):
    lines = []
    loadgen.run(counting_server.url("/ok"), 2.6, 2, progress=lines.append)
    assert 2 <= len(lines) <= 3
    assert all(re.search(r"\d+ requests\s+\d+ req/s", ln) for ln in lines)


def test_connection_close_and_chunked(counting_server):
    s = loadgen.run(counting_server.url("/close"), 30, 3, max_requests=60, progress=None)
    assert s.total == 60 and s.codes[200] == 60 and not s.errors
    s = loadgen.run(counting_server.url("/chunked"), 30, 3, max_requests=60, progress=None)
    assert s.total == 60 and s.codes[200] == 60 and not s.errors


def test_errors_by_kind_when_nothing_listens():
    from tests.day2.conftest import free_port
    s = loadgen.run(f"http://127.0.0.1:{free_port()}/work", 0.5, 2, progress=None)
    assert s.codes == {} and s.total > 0
    assert set(s.errors) == {"connection refused"}
    assert "Error distribution" in s.text()


def test_stop_ends_early(counting_server):
    gen = loadgen.LoadGen(counting_server.url("/ok"), 30, 4).start()
    time.sleep(0.3)
    gen.stop()
    assert gen.wait(5)
    assert gen.summary().total == counting_server.total("/ok")


def test_against_the_real_app(app_server):
    """The generator's counts equal the app's own http_requests_total for /work."""
    def work_counts():
        text = urllib.request.urlopen(app_server + "/metrics", timeout=5).read().decode()
        summary = summarize_metrics(text)
        return summary, text

    before, _ = work_counts()
    s = loadgen.run(app_server + "/work", 1.5, 20, progress=None)
    after, text = work_counts()
    seen = {}
    for m in re.finditer(r'http_requests_total\{code="(\d+)",endpoint="/work",method="GET"\} ([\d.e+]+)', text):
        seen[int(m.group(1))] = float(m.group(2))
    assert not s.errors
    assert sum(seen.values()) >= s.total
    assert after["by_endpoint"]["/work"] - before["by_endpoint"].get("/work", 0) == s.total
    assert s.codes[500] > 0 and s.codes[200] > 0
    assert s.codes[200] + s.codes[500] == s.total
    q = s.quantiles()
    assert 0.04 < q[50] < 0.2 and 0.15 < q[99] < 0.5


@pytest.mark.skipif(not __import__("shutil").which("hey"), reason="hey is not installed")
def test_hey_load_reports_and_windows(app_server, tmp_path, monkeypatch):
    """hpa_demo's hey path: bounded run, report kept, req/s and p99 from the pod's /metrics."""
    from tasks.day2 import hpa
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    load = hpa.make_load(app_server + "/work", 2, 10, use_hey=True).start()
    assert load.wait(10)
    rps, p99 = load.window(2)
    load.stop()
    report = load.report()
    assert "Requests/sec" in report and "Latency distribution" in report and "histogram" not in report
    assert 30 < rps < 120  # 10 clients / 0.125 s = 80 req/s
    assert 0.15 < p99 <= 0.25


def test_builtin_load_object(app_server):
    from tasks.day2 import hpa
    load = hpa.make_load(app_server + "/work", 1, 10, use_hey=False).start()
    assert load.wait(5)
    assert "Requests/sec" in load.report()
    rps, p99 = load.window(5)
    assert rps > 0 and p99 is not None
