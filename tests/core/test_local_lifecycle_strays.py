"""Nothing a local session started outlives its compute: processes that left its process
group, children of a process that exited while no server watched, a start found by another
server on the same data directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from raworc_spawner.backends.base import ComputeState, SessionSpec
from raworc_spawner.backends.local import LocalBackend
from tests.core.test_manager import pid_alive

SID = "00000000-0000-4000-8000-000000000005"
SPEC = SessionSpec(session_id=SID, name="strays", owner="alice")
#: Starts a daemon in a session (and process group) of its own, notes its pid, then waits.
WITH_DAEMON = ["sh", "-c", "setsid sleep 600 & echo $! > daemon.pid; exec sleep 600"]


def backend_in(data_dir: Path) -> LocalBackend:
    return LocalBackend(data_dir=str(data_dir), ready_after_seconds=0.05, stop_grace_seconds=2)


async def pid_in(path: Path, timeout: float = 5.0) -> int:
    """The pid a session wrote to ``path`` (fails after ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not (path.exists() and path.read_text().strip()):
            await asyncio.sleep(0.02)
    return int(path.read_text())


async def until_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` has exited (bounded by ``timeout`` seconds)."""
    try:
        async with asyncio.timeout(timeout):
            while pid_alive(pid):
                await asyncio.sleep(0.02)
    except TimeoutError:
        return False
    return True


@pytest_asyncio.fixture
async def backend(tmp_path: Path) -> AsyncIterator[LocalBackend]:
    """A started local backend; session SID deleted afterwards."""
    started = backend_in(tmp_path)
    await started.start(lambda event: None)
    try:
        yield started
    finally:
        await started.delete(SID)
        await started.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("remove", ["pause", "delete"])
async def test_a_process_that_left_the_sessions_group_is_stopped_with_its_compute(
    backend: LocalBackend, remove: str
) -> None:
    backend.command = WITH_DAEMON
    await backend.create(SPEC)
    await backend.wait_ready(SID, timeout=5)
    daemon = await pid_in(backend.workspace(SID) / "daemon.pid")
    assert pid_alive(daemon)
    await (backend.pause(SID) if remove == "pause" else backend.delete(SID))
    assert await until_gone(daemon)


@pytest.mark.asyncio
async def test_what_a_process_left_while_no_server_watched_is_stopped_at_the_next_start(
    tmp_path: Path,
) -> None:
    first = backend_in(tmp_path)
    await first.start(lambda event: None)
    first.command = ["sh", "-c", "setsid sleep 600 & echo $! > daemon.pid; sleep 0.5"]
    await first.create(SPEC)
    await first.wait_ready(SID, timeout=5)
    daemon = await pid_in(first.workspace(SID) / "daemon.pid")
    leader = first.process_id(SID)
    assert leader is not None
    await first.close()  # the server goes away; the process exits meanwhile
    assert await until_gone(leader)
    assert pid_alive(daemon)
    second = backend_in(tmp_path)
    await second.start(lambda event: None)
    try:
        assert await until_gone(daemon, timeout=2)
        assert second.compute_state(SID) == ComputeState.ABSENT
        assert SID not in (await second.inventory()).compute
    finally:
        await second.delete(SID)
        await second.close()


@pytest.mark.asyncio
async def test_a_process_another_server_started_here_is_found_by_inventory_and_stopped(
    tmp_path: Path,
) -> None:
    hub = backend_in(tmp_path)
    await hub.start(lambda event: None)
    service = backend_in(tmp_path)
    await service.start(lambda event: None)
    try:
        hub.command = ["sleep", "600"]
        await hub.create(SPEC)
        await hub.wait_ready(SID, timeout=5)
        pid = hub.process_id(SID)
        assert pid is not None and service.process_id(SID) is None
        assert SID in (await service.inventory()).compute
        assert service.process_id(SID) == pid
        await service.delete(SID)
        assert await until_gone(pid)
    finally:
        await hub.close()
        await service.close()
