"""An in-process raworc-spawner server (local backend, SQLite) and HTTP clients for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from traitlets.config import Config

from raworc_spawner.app import RaworcApp
from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.sessions.manager import SYSTEM

ADMIN_TOKEN = "admintok"
USER_TOKENS = {"alicetok": "alice", "bobtok": "bob"}
#: The session command: records its environment and working directory, then waits.
RECORDING_COMMAND = ["sh", "-c", "env > env.txt; pwd > pwd.txt; echo started; exec sleep 600"]


@dataclass
class Server:
    """A running server and what tests need to talk to it."""

    app: RaworcApp
    data_dir: Path
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The base URL."""
        return self.app.url

    @property
    def admin_token(self) -> str:
        """The admin's bearer token."""
        return ADMIN_TOKEN

    def client(self, token: str | None = ADMIN_TOKEN, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client with ``token`` (None: no Authorization header); closed at teardown."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=50)
        client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=30, limits=limits, **kwargs
        )
        self.clients.append(client)
        return client

    def workspace(self, session_id: str) -> Path:
        """Where the local backend keeps a session's workspace."""
        return self.data_dir / "workspaces" / session_id

    @property
    def backend(self) -> LocalBackend:
        """The server's compute backend (always the local one here)."""
        backend = self.app.core.backend
        assert isinstance(backend, LocalBackend)
        return backend

    def session_pids(self) -> list[int]:
        """Pids of every session process the backend knows of."""
        return list(self.backend.process_ids().values())


def make_config(tmp_path: Path) -> Config:
    """Settings for a fast, isolated server."""
    config = Config()
    config.RaworcApp.admin_token = ADMIN_TOKEN
    config.RaworcApp.api_tokens = dict(USER_TOKENS)
    config.RaworcApp.env_file = ""
    config.RaworcApp.max_body_bytes = 64 * 1024
    config.RaworcApp.log_spec = "warn"
    config.LocalBackend.ready_after_seconds = 0.05
    config.LocalBackend.stop_grace_seconds = 2.0
    config.LocalBackend.command = RECORDING_COMMAND
    config.Reconciler.interval_seconds = 0.0
    return config


@contextlib.asynccontextmanager
async def running_server(config: Config, data_dir: Path) -> AsyncIterator[Server]:
    """Start a server with ``config`` on a free port; afterwards delete every session and stop."""
    app = RaworcApp(config=config)
    app.initialize(["--port=0", "--ip=127.0.0.1", f"--data-dir={data_dir}"])
    await app.start_services()
    app.web_app.settings["sse_heartbeat_seconds"] = 0.2
    srv = Server(app=app, data_dir=data_dir)
    try:
        yield srv
    finally:
        for client in srv.clients:
            await client.aclose()
        await _delete_everything(app)
        pids = srv.session_pids() if not app.kubernetes_enabled else []
        await app.stop_services()
        for pid in pids:
            _kill_group(pid)


@pytest_asyncio.fixture
async def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leaked_tasks: None
) -> AsyncIterator[Server]:
    """A server on a free port with an admin, ``alice`` and ``bob``; every session deleted after."""
    monkeypatch.chdir(tmp_path)
    async with running_server(make_config(tmp_path), tmp_path / "data") as srv:
        yield srv


async def _delete_everything(app: RaworcApp) -> None:
    page = await app.manager.list(SYSTEM, limit=1000)
    results = await asyncio.gather(
        *(app.manager.delete(SYSTEM, s.id) for s in page.items), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, Exception) and "not found" not in str(r)]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def admin_token() -> str:
    """The admin token of :func:`server`."""
    return ADMIN_TOKEN


async def wait_for_state(
    client: httpx.AsyncClient, session_id: str, state: str, *, timeout: float = 2.0
) -> dict[str, Any]:
    """Poll ``GET /sessions/{id}`` until the session is in ``state``; fail after ``timeout``."""
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                response = await client.get(f"/api/v0/sessions/{session_id}")
                body = response.json()
                if response.status_code == 200 and body["state"] == state:
                    return body
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"session {session_id} not {state} after {timeout}s: {body}")


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"
