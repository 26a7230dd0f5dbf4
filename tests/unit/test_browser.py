"""A browser is opened only for a person at a terminal with a graphical session, never a console one."""
from __future__ import annotations

import io
import sys
import webbrowser

import pytest

from tasks.core import browser


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("env, stream, expected", [
    ({"DISPLAY": ":0"}, Tty(), True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, Tty(), True),
    ({"DISPLAY": ":0"}, io.StringIO(), False),           # piped, a CI log, a test
    ({"DISPLAY": ":0", "CI": "true"}, Tty(), False),
    ({"DISPLAY": ":0", "NO_BROWSER": "1"}, Tty(), False),
])
def test_available_only_at_a_terminal_with_a_display(env, stream, expected):
    assert browser.available(env, stream) is expected


def test_without_a_display_only_macos_has_one():
    assert browser.available({}, Tty()) is (sys.platform == "darwin")


def test_a_console_browser_is_never_started(monkeypatch):
    opened = []

    class Console(webbrowser.GenericBrowser):
        def open(self, url, new=0, autoraise=True):
            opened.append(url)
            return True

    monkeypatch.setattr(browser, "available", lambda: True)
    monkeypatch.setattr(webbrowser, "get", lambda: Console("lynx"))
    assert browser.open_url("http://127.0.0.1:1/") is False and opened == []

    class Gui(webbrowser.BackgroundBrowser):
        def open(self, url, new=0, autoraise=True):
            opened.append(url)
            return True

    monkeypatch.setattr(webbrowser, "get", lambda: Gui("firefox"))
    assert browser.open_url("http://127.0.0.1:1/") is True and opened == ["http://127.0.0.1:1/"]
