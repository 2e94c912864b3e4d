"""The session manager over the real SQLite store and the local backend."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.errors import InvalidTransition, QuotaExceeded, SessionNotFound
from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.sessions.model import Principal, SessionState
from raworc_spawner.sessions.requests import parse_create
from raworc_spawner.store import SessionStore
from tests.waiting import until_state

ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", admin=True)


async def wait_state(manager: SessionManager, session_id: str, state: str, timeout: float = 5):
    """The session once in ``state`` (the shared helper, under this module's old name)."""
    return await until_state(manager, session_id, state, timeout=timeout)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2] != "Z"


async def session_pid(manager: SessionManager, session_id: str) -> int:
    """The session's process id, as the status endpoint shows it."""
    status = await manager.status(SYSTEM, session_id)
    pid = status["backend"]["compute"]["pid"]
    assert isinstance(pid, int), status
    return pid


async def workspace_of(manager: SessionManager, session_id: str) -> Path:
    """The session's workspace directory, as the status endpoint shows it."""
    status = await manager.status(SYSTEM, session_id)
    return Path(status["backend"]["workspace"]["path"])


@pytest.mark.asyncio
async def test_create_returns_ids_at_once_and_becomes_ready(local_manager: SessionManager) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "ml-training-session"}))
    assert session.state == SessionState.INIT
    assert session.container_id and session.persistent_volume_id.startswith("pvc-")
    ready = await wait_state(local_manager, session.id, "ready")
    assert ready.started_at is not None and ready.last_activity_at is not None
    kinds = [e.kind for e in await local_manager.events(ALICE, session.id)]
    assert kinds[0] == "created" and "ready" in kinds


@pytest.mark.asyncio
async def test_pause_stops_process_keeps_workspace_and_resume_restarts(
    local_manager: SessionManager,
) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "p"}))
    await wait_state(local_manager, session.id, "ready")
    pid = await session_pid(local_manager, session.id)
    workspace = await workspace_of(local_manager, session.id)
    (workspace / "notes.txt").write_text("kept")
    paused = await local_manager.set_state(ALICE, session.id, "idle")
    assert paused.state == "idle" and not pid_alive(pid)
    assert (workspace / "notes.txt").read_text() == "kept"
    resumed = await local_manager.set_state(ALICE, session.id, "ready")
    assert resumed.state == "init" and resumed.container_id != session.container_id
    assert resumed.persistent_volume_id == session.persistent_volume_id
    await wait_state(local_manager, session.id, "ready")
    assert pid_alive(await session_pid(local_manager, session.id))


@pytest.mark.asyncio
async def test_delete_removes_process_workspace_and_record(local_manager: SessionManager) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "d"}))
    await wait_state(local_manager, session.id, "ready")
    pid = await session_pid(local_manager, session.id)
    workspace = await workspace_of(local_manager, session.id)
    await local_manager.delete(ALICE, session.id)
    assert not pid_alive(pid) and not workspace.exists()
    with pytest.raises(SessionNotFound):
        await local_manager.get(ALICE, session.id)


@pytest.mark.asyncio
async def test_other_users_cannot_see_or_touch_a_session(local_manager: SessionManager) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "mine"}))
    with pytest.raises(SessionNotFound):
        await local_manager.get(BOB, session.id)
    with pytest.raises(SessionNotFound):
        await local_manager.delete(BOB, session.id)
    assert (await local_manager.list(BOB)).items == []
    assert [s.id for s in (await local_manager.list(ADMIN)).items] == [session.id]


@pytest.mark.asyncio
async def test_busy_is_set_by_the_agent_and_only_from_ready(local_manager: SessionManager) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "agent"}))
    await wait_state(local_manager, session.id, "ready")
    assert (await local_manager.set_state(ALICE, session.id, "busy")).state == "busy"
    assert (await local_manager.set_state(ALICE, session.id, "ready")).state == "ready"
    await local_manager.set_state(ALICE, session.id, "idle")
    with pytest.raises(InvalidTransition):
        await local_manager.set_state(ALICE, session.id, "busy")


@pytest.mark.asyncio
async def test_concurrent_double_delete_deletes_once(local_manager: SessionManager) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "twice"}))
    results = await asyncio.gather(
        local_manager.delete(ALICE, session.id),
        local_manager.delete(ALICE, session.id),
        return_exceptions=True,
    )
    assert results.count(None) == 1
    assert sum(isinstance(r, SessionNotFound) for r in results) == 1
    assert await local_manager.inventory() == type(await local_manager.inventory())()


@pytest.mark.asyncio
async def test_delete_during_create_leaves_nothing_behind(local_manager: SessionManager) -> None:
    create = asyncio.create_task(local_manager.create(ALICE, parse_create({"name": "racing"})))
    await asyncio.sleep(0)
    session = await create if create.done() else None
    if session is None:
        # The record is inserted before the backend call: find it and delete concurrently.
        async with asyncio.timeout(5):
            while not (page := await local_manager.list(ADMIN)).items:
                await asyncio.sleep(0)
        delete = asyncio.create_task(local_manager.delete(ALICE, page.items[0].id))
        session = await create
        await delete
    else:
        await local_manager.delete(ALICE, session.id)
    inventory = await local_manager.inventory()
    assert not inventory.compute and not inventory.workspaces
    assert (await local_manager.list(ADMIN)).items == []


@pytest.mark.asyncio
async def test_pause_during_create_ends_idle_with_no_process(local_manager: SessionManager) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "sleepy"}))
    paused = await local_manager.set_state(ALICE, session.id, "idle")
    assert paused.state == "idle"
    await asyncio.sleep(0.2)  # the readiness watcher must not resurrect it
    assert (await local_manager.get(ALICE, session.id)).state == "idle"
    assert not (await local_manager.inventory()).compute


@pytest.mark.asyncio
async def test_two_hundred_concurrent_creates_make_two_hundred_sessions(
    local_manager: SessionManager,
) -> None:
    requests = [parse_create({"name": f"s{i}"}) for i in range(200)]
    sessions = await asyncio.gather(*(local_manager.create(ALICE, r) for r in requests))
    assert len({s.id for s in sessions}) == 200
    for s in sessions:
        await wait_state(local_manager, s.id, "ready", timeout=30)
    assert len((await local_manager.inventory()).compute) == 200
    pids = {await session_pid(local_manager, s.id) for s in sessions}
    assert len(pids) == 200
    await asyncio.gather(*(local_manager.delete(ALICE, s.id) for s in sessions))
    assert not (await local_manager.inventory()).compute


@pytest.mark.asyncio
async def test_a_process_that_exits_at_once_fails_the_session_with_its_output(
    local_manager: SessionManager,
    local_backend: LocalBackend,
) -> None:
    local_backend.command = ["sh", "-c", "echo boom >&2; exit 3"]
    session = await local_manager.create(ALICE, parse_create({"name": "broken"}))
    failed = await wait_state(local_manager, session.id, "error")
    assert "exit status 3" in failed.error and "boom" in failed.error
    assert failed.termination_reason == "ProcessExited"
    retried = await local_manager.set_state(ALICE, session.id, "ready")
    assert retried.state in ("init", "error")


@pytest.mark.asyncio
async def test_a_running_process_that_dies_moves_the_session_to_error(
    local_manager: SessionManager,
) -> None:
    import signal

    session = await local_manager.create(ALICE, parse_create({"name": "mortal"}))
    await wait_state(local_manager, session.id, "ready")
    os.killpg(await session_pid(local_manager, session.id), signal.SIGKILL)
    failed = await wait_state(local_manager, session.id, "error")
    assert failed.termination_reason == "Killed"
    assert failed.error is not None and "SIGKILL (9) (exit code 137)" in failed.error


@pytest.mark.asyncio
async def test_live_subscribers_see_every_transition(local_manager: SessionManager) -> None:
    seen: list[str] = []

    async def listen() -> None:
        async with local_manager.subscribe(ADMIN) as events:
            async for event in events:
                seen.append(event.kind)
                if event.kind == "deleted":
                    return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0)
    session = await local_manager.create(ALICE, parse_create({"name": "watched"}))
    await wait_state(local_manager, session.id, "ready")
    await local_manager.delete(ALICE, session.id)
    await asyncio.wait_for(listener, 5)
    assert seen[0] == "created" and "ready" in seen and seen[-1] == "deleted"


@pytest.mark.asyncio
async def test_reads_come_from_the_cache_only_when_it_is_on(
    local_manager: SessionManager, local_store: SessionStore
) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "cached"}))
    stored = await local_store.get(session.id)
    assert stored is not None
    await local_store.update(stored.evolve(name="renamed elsewhere"))
    assert (await local_manager.get(ALICE, session.id)).name == "cached"  # this server's view
    local_manager.cache_sessions = False
    assert (await local_manager.get(ALICE, session.id)).name == "renamed elsewhere"
    await local_manager.delete(ALICE, session.id)


@pytest.mark.asyncio
async def test_max_sessions_per_user_holds_under_20_concurrent_creates(
    local_manager: SessionManager,
) -> None:
    local_manager.max_sessions_per_user = 3
    results = await asyncio.gather(
        *(local_manager.create(ALICE, parse_create({"name": f"q{i}"})) for i in range(20)),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert (len(created), len(refused)) == (3, 17)
    assert len((await local_manager.list(ALICE, limit=100)).items) == 3
    for session in created:
        await local_manager.delete(ALICE, session.id)


@pytest.mark.asyncio
async def test_a_start_that_times_out_removes_its_compute_and_keeps_its_workspace(
    local_manager: SessionManager, local_backend: LocalBackend
) -> None:
    local_backend.ready_after_seconds = 30  # never ready within the manager's timeout
    local_manager.ready_timeout_seconds = 0.5
    session = await local_manager.create(ALICE, parse_create({"name": "slow"}))
    pid = await session_pid(local_manager, session.id)
    failed = await wait_state(local_manager, session.id, "error")
    assert failed.termination_reason == "Timeout"
    assert failed.error is not None and failed.error.startswith("Timeout: not ready after 0.5 s")
    for _ in range(100):  # the compute is removed right after the error is recorded
        status = await local_manager.status(ALICE, session.id)
        if status["backend"]["compute"]["pid"] is None and not pid_alive(pid):
            break
        await asyncio.sleep(0.05)
    assert status["backend"]["compute"]["pid"] is None
    assert status["backend"]["workspace"]["exists"] is True
    assert not pid_alive(pid)


@pytest.mark.asyncio
async def test_keep_failed_compute_leaves_a_failed_start_running_for_debugging(
    local_manager: SessionManager, local_backend: LocalBackend
) -> None:
    local_backend.ready_after_seconds = 30
    local_manager.ready_timeout_seconds = 0.5
    local_manager.keep_failed_compute = True
    session = await local_manager.create(ALICE, parse_create({"name": "kept"}))
    pid = await session_pid(local_manager, session.id)
    await wait_state(local_manager, session.id, "error")
    assert pid_alive(pid)
    assert (await local_manager.status(ALICE, session.id))["backend"]["compute"]["pid"] == pid
    await local_manager.delete(ALICE, session.id)
    assert not pid_alive(pid)
