"""Shared fixtures: fail on leaked asyncio tasks and on session processes left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.store import SessionStore

pytest_plugins = ["kubesim.pytest_plugin"]

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip visibly when ``condition`` is false, or fail under CI where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _no_env_leaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the developer's environment (RAWORC_*, KUBERNETES_*) out of every test."""
    for name in list(os.environ):
        ours = name.startswith(("RAWORC_", "KUBERNETES_")) or name == "RUST_LOG"
        if ours and name != "RAWORC_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    yield


@pytest_asyncio.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if it leaves asyncio tasks running."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    leaked = [t for t in leaked if t is not asyncio.current_task()]
    assert not leaked, f"leaked tasks: {leaked}"


@pytest.fixture
def local_backend(tmp_path: Path) -> LocalBackend:
    """The local backend ``local_manager`` runs on (fast readiness), to configure in a test."""
    return LocalBackend(data_dir=str(tmp_path), ready_after_seconds=0.05, stop_grace_seconds=2)


@pytest_asyncio.fixture
async def local_store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    """The SQLite store ``local_manager`` keeps its records in (to write behind its back)."""
    store = SessionStore.sqlite_in(tmp_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture
async def local_manager(
    local_store: SessionStore, local_backend: LocalBackend
) -> AsyncIterator[SessionManager]:
    """A session manager over a SQLite store and the local backend, in a temporary directory."""
    manager = SessionManager(store=local_store, backend=local_backend)
    await manager.start()
    try:
        yield manager
    finally:
        for pid in await _session_pids(manager):
            _kill_group(pid)
        await manager.close()


async def _session_pids(manager: SessionManager) -> list[int]:
    """The process ids of every session still recorded, as the status endpoint shows them."""
    pids = []
    for session in (await manager.list(SYSTEM, limit=1000)).items:
        pid = (await manager.status(SYSTEM, session.id))["backend"]["compute"]["pid"]
        if pid is not None:
            pids.append(pid)
    return pids


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
