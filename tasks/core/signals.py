"""Signals: SIGTERM and SIGHUP as Ctrl-C, so the `finally` blocks that end port-forwards and loads run."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


@contextmanager
def interrupt_on_sigterm():
    """SIGTERM/SIGHUP behave like Ctrl-C while we hold port-forwards, so `finally` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            saved[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
