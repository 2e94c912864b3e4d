"""A restarted server re-adopts running processes, idles dead ones and kills orphans."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.reconcile import Reconciler
from raworc_spawner.sessions.requests import parse_create
from raworc_spawner.store import SessionStore
from tests.core.test_manager import pid_alive, wait_state

ALICE = Principal("alice")


@asynccontextmanager
async def server(data_dir: Path) -> AsyncIterator[SessionManager]:
    """One 'server lifetime': store, backend, manager and start-up reconciliation."""
    store = SessionStore.sqlite_in(data_dir)
    await store.open()
    backend = LocalBackend(data_dir=str(data_dir), ready_after_seconds=0.05)
    manager = SessionManager(store=store, backend=backend)
    await manager.start()
    reconciler = Reconciler(manager=manager, interval_seconds=0)
    await reconciler.start()
    try:
        yield manager
    finally:
        await reconciler.close()
        await manager.close()
        await store.close()


@asynccontextmanager
async def behind_its_back(data_dir: Path) -> AsyncIterator[SessionStore]:
    """The server's store opened by someone else (to change records behind its back)."""
    store = SessionStore.sqlite_in(data_dir)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def pid_of(manager: SessionManager, session_id: str) -> int:
    """The session's process id, as the status endpoint shows it."""
    status = await manager.status(SYSTEM, session_id)
    pid = status["backend"]["compute"]["pid"]
    assert isinstance(pid, int), status
    return pid


@pytest.mark.asyncio
async def test_running_processes_are_readopted_after_a_restart(tmp_path: Path) -> None:
    async with server(tmp_path) as manager:
        session = await manager.create(ALICE, parse_create({"name": "survivor"}))
        await wait_state(manager, session.id, "ready")
        pid = await pid_of(manager, session.id)
    assert pid_alive(pid)  # a server stop leaves compute running
    async with server(tmp_path) as manager:
        assert (await manager.get(ALICE, session.id)).state == "ready"
        assert await pid_of(manager, session.id) == pid
        await manager.delete(ALICE, session.id)
        assert not pid_alive(pid)


@pytest.mark.asyncio
async def test_sessions_whose_process_died_with_the_server_become_idle(tmp_path: Path) -> None:
    async with server(tmp_path) as manager:
        session = await manager.create(ALICE, parse_create({"name": "lost"}))
        await wait_state(manager, session.id, "ready")
        pid = await pid_of(manager, session.id)
    os.killpg(pid, signal.SIGKILL)
    await asyncio.sleep(0.1)
    async with server(tmp_path) as manager:
        restarted = await manager.get(ALICE, session.id)
        assert restarted.state == "idle" and restarted.termination_reason == "ComputeLost"
        assert Path(
            (await manager.status(SYSTEM, session.id))["backend"]["workspace"]["path"]
        ).is_dir()
        await manager.set_state(ALICE, session.id, "ready")
        await wait_state(manager, session.id, "ready")
        await manager.delete(ALICE, session.id)


@pytest.mark.asyncio
async def test_a_session_whose_record_was_lost_is_re_adopted_at_restart(tmp_path: Path) -> None:
    async with server(tmp_path) as manager:
        session = await manager.create(
            ALICE, parse_create({"name": "orphan", "namespace": "team-a"})
        )
        await wait_state(manager, session.id, "ready")
        pid = await pid_of(manager, session.id)
        async with behind_its_back(tmp_path) as store:
            await store.delete(session.id)  # the store lost it (restored from an old backup)
    async with server(tmp_path) as manager:
        await wait_state(manager, session.id, "ready")
        adopted = await manager.get(ALICE, session.id)
        assert (adopted.name, adopted.owner, adopted.namespace) == ("orphan", "alice", "team-a")
        assert adopted.created_at == session.created_at
        assert adopted.backend == "local"
        assert await pid_of(manager, session.id) == pid  # the same process, never restarted
        events = await manager.events(ALICE, session.id)
        assert [(e.kind, e.reason) for e in events][:1] == [("adopted", "Adopted")]
        await manager.delete(ALICE, session.id)  # its process must not outlive the test


@pytest.mark.asyncio
async def test_a_session_left_deleting_finishes_its_delete_at_start_up(tmp_path: Path) -> None:
    async with server(tmp_path) as manager:
        session = await manager.create(ALICE, parse_create({"name": "half"}))
        await wait_state(manager, session.id, "ready")
        pid = await pid_of(manager, session.id)
        async with behind_its_back(tmp_path) as store:
            fresh = await store.get(session.id)
            assert fresh is not None
            await store.update(fresh.evolve(state="deleting"))
    async with server(tmp_path) as manager:
        assert (await manager.list(Principal("x", admin=True))).items == []
        assert not pid_alive(pid)
