"""A server whose sessions run a small web app on a known port, for the proxy and culler."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.api.conftest import Server, make_config, running_server

UPSTREAM = Path(__file__).with_name("upstream.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def upstream_port() -> int:
    """The port session processes listen on."""
    return free_port()


@pytest_asyncio.fixture
async def server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    upstream_port: int,
    no_leaked_tasks: None,
) -> AsyncIterator[Server]:
    """A server whose sessions serve ``upstream.py`` on ``upstream_port``; culler manual."""
    monkeypatch.chdir(tmp_path)
    config = make_config(tmp_path)
    config.LocalBackend.command = [sys.executable, str(UPSTREAM), str(upstream_port)]
    config.LocalBackend.port = upstream_port  # ready once the web app accepts connections
    config.Culler.interval_seconds = 0.0
    config.SessionManager.activity_flush_seconds = 0.1
    config.RaworcApp.proxy_wake_timeout_seconds = 20.0
    async with running_server(config, tmp_path / "data") as srv:
        yield srv
