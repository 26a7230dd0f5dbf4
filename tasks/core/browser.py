"""Open a URL in the person's browser, only when there is one to open.

Never in a pipe, a CI job or a test (stdout not a terminal), never over SSH without a display,
and never a text-mode browser that would take over the terminal the port-forward runs in:
the URL is printed in any case. NO_BROWSER=1 turns it off.
"""
from __future__ import annotations

import os
import sys
import webbrowser


def available(env=None, stream=None) -> bool:
    env = os.environ if env is None else env
    stream = sys.stdout if stream is None else stream
    if env.get("NO_BROWSER") or env.get("CI") or not (hasattr(stream, "isatty") and stream.isatty()):
        return False
    if sys.platform == "darwin":
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def open_url(url: str) -> bool:
    """True if a graphical browser was asked to open URL."""
    if not available():
        return False
    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        return False
    # console browsers (lynx, w3m, www-browser...) are GenericBrowser: they would block the terminal
    if isinstance(controller, webbrowser.GenericBrowser) and not isinstance(controller, webbrowser.BackgroundBrowser):
        return False
    try:
        return bool(controller.open(url, new=2))
    except OSError:
        return False
