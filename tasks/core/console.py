"""Everything the lab prints: steps with timings, echoed commands, tables.

Colour only on a TTY and never when NO_COLOR is set (https://no-color.org).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

_CODES = {"dim": "2", "bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def colour_enabled(stream=None) -> bool:
    stream = stream or sys.stdout
    if "NO_COLOR" in os.environ:
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def style(text: str, *names: str, stream=None) -> str:
    if not names or not colour_enabled(stream):
        return text
    codes = ";".join(_CODES[n] for n in names)
    return f"\033[{codes}m{text}\033[0m"


_LINES = threading.Lock()  # one whole line at a time, whichever thread prints it (tasks/core/parallel.py)


def say(text: str = "", *names: str) -> None:
    with _LINES:
        print(style(text, *names), flush=True)


def info(text: str) -> None:
    say(f"  {text}")


def ok(text: str) -> None:
    say(f"  {style('✓', 'green')} {text}")


def warn(text: str) -> None:
    say(f"  {style('!', 'yellow')} {text}")


def error(text: str) -> None:
    stream = sys.stderr
    print(f"{style('✗', 'red', stream=stream)} {text}", file=stream, flush=True)


def seconds(elapsed: float) -> str:
    if elapsed < 1:
        return f"{elapsed * 1000:.0f}ms"
    if elapsed < 90:
        return f"{elapsed:.1f}s"
    return f"{int(elapsed // 60)}m{int(elapsed % 60):02d}s"


@contextmanager
def step(name: str, doing: str):
    """Frame one step: what it does, then how long it took (or that it failed)."""
    say(f"▶ {style(name, 'bold')}: {doing}")
    started = time.monotonic()
    try:
        yield
    except BaseException:
        say(f"  {style('✗', 'red')} {name} failed after {seconds(time.monotonic() - started)}")
        raise
    say(f"  {style('✓', 'green')} {name} done in {seconds(time.monotonic() - started)}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        line = "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
        lines.append(style(line, "bold") if n == 0 else line)
    return "\n".join(lines)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    print(table(headers, rows), flush=True)
