"""Suite-wide safety net: no process started under this run's temporary directories outlives it."""
from __future__ import annotations

import os
import signal

import pytest

# A shell starts `cmd &` with SIGINT ignored, and every child inherits that: then no test could
# press Ctrl-C on anything. Take the normal handler back; children exec with the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): two workers per CPU, since a test against the fakes spends
    about a third of its time waiting on its subprocesses (on 2 cores: 4 workers ~5 min, 2 ~7 min).
    The real-cluster suite (`-m e2e`) shares one cluster and one registry, so it runs in this
    process, one test after the other."""
    markexpr = config.getoption("markexpr", "") or ""
    if "e2e" in markexpr and "not e2e" not in markexpr:
        return 0
    return 2 * (os.cpu_count() or 1)


# Longest first, so that no worker is left with a long test while the others are idle: the task
# graph against the fakes (tests/graph) takes tens of seconds per test, most others well under one.
SLOW_FIRST = ("graph", "day2", "observability")


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the order does not change the total
    def rank(item):
        parts = item.path.relative_to(config.rootpath).parts
        return SLOW_FIRST.index(parts[1]) if len(parts) > 2 and parts[1] in SLOW_FIRST else len(SLOW_FIRST)
    items.sort(key=rank)  # stable: a module's tests stay together and in order


def _processes_under(path: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes(tmp_path_factory):
    base = str(tmp_path_factory.getbasetemp())
    yield
    for pid in _processes_under(base):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
