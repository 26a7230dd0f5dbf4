"""Suite-wide safety net: no process started under this run's temporary directories outlives it."""
from __future__ import annotations

import os
import signal

import pytest

# A shell starts `cmd &` with SIGINT ignored, and every child inherits that: then no test could
# press Ctrl-C on anything. Take the normal handler back; children exec with the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
