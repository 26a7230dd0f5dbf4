"""Fixtures for the app tests; the harness itself is app_harness.py."""

from __future__ import annotations

import pytest
from app_harness import Server


@pytest.fixture
def start_server():
    """Factory: start_server(FAIL_RATE="1", ...) -> Server (not yet waited for)."""
    servers: list[Server] = []

    def start(**env: str) -> Server:
        srv = Server(env)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(start_server) -> Server:
    srv = start_server()
    srv.wait_ready()
    return srv
