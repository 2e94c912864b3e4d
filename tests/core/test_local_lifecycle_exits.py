"""A local session process that exits is reported once, with its exit code, reason and output."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from raworc_spawner.backends.base import BackendEvent, BackendEventKind, ComputeState, SessionSpec
from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.errors import SessionFailed
from tests.core.test_manager import pid_alive

SID = "00000000-0000-4000-8000-000000000001"


class Recorder:
    """A backend's event sink that keeps what it hears and lets a test wait for one kind."""

    def __init__(self) -> None:
        self.events: list[BackendEvent] = []
        self._heard = asyncio.Event()

    def __call__(self, event: BackendEvent) -> None:
        self.events.append(event)
        self._heard.set()

    def of_kind(self, kind: BackendEventKind) -> list[BackendEvent]:
        return [e for e in self.events if e.kind == kind]

    async def first(self, kind: BackendEventKind, *, timeout: float = 5.0) -> BackendEvent:
        async with asyncio.timeout(timeout):
            while not self.of_kind(kind):
                self._heard.clear()
                await self._heard.wait()
        return self.of_kind(kind)[0]


@pytest_asyncio.fixture
async def started(local_backend: LocalBackend) -> AsyncIterator[tuple[LocalBackend, Recorder]]:
    """The local backend, started with a recording sink; every session deleted afterwards."""
    recorder = Recorder()
    await local_backend.start(recorder)
    try:
        yield local_backend, recorder
    finally:
        await local_backend.delete(SID)
        await local_backend.close()


async def run_until_ready(backend: LocalBackend, *command: str) -> int:
    """Create session SID running ``command``, wait until it is ready; its pid."""
    backend.command = list(command)
    await backend.create(SessionSpec(session_id=SID, name="exits", owner="alice"))
    await backend.wait_ready(SID, timeout=5)
    pid = backend.process_id(SID)
    assert pid is not None
    return pid


@pytest.mark.asyncio
async def test_a_clean_exit_is_an_exited_event_with_code_0_and_reason_completed(
    started: tuple[LocalBackend, Recorder],
) -> None:
    backend, recorder = started
    await run_until_ready(backend, "sh", "-c", "echo all work done; sleep 0.3; exit 0")
    event = await recorder.first(BackendEventKind.EXITED)
    assert event == BackendEvent(
        session_id=SID,
        kind=BackendEventKind.EXITED,
        message="the session process exited with exit status 0; last output:\nall work done",
        reason="Completed",
        exit_code=0,
    )
    assert backend.compute_state(SID) == ComputeState.ABSENT


@pytest.mark.asyncio
async def test_a_failing_exit_is_an_exited_event_with_its_status_and_last_lines(
    started: tuple[LocalBackend, Recorder],
) -> None:
    backend, recorder = started
    backend.log_tail_lines = 2
    script = "echo one; echo two; echo three >&2; sleep 0.3; exit 3"
    await run_until_ready(backend, "sh", "-c", script)
    event = await recorder.first(BackendEventKind.EXITED)
    assert event == BackendEvent(
        session_id=SID,
        kind=BackendEventKind.EXITED,
        message="the session process exited with exit status 3; last output:\ntwo\nthree",
        reason="ProcessExited",
        exit_code=3,
    )
    assert backend.compute_state(SID) == ComputeState.FAILED
    status = (await backend.status(SID)).to_dict()["compute"]
    assert (status["state"], status["reason"], status["pid"]) == ("failed", "ProcessExited", None)


@pytest.mark.asyncio
async def test_a_killed_process_is_reported_as_killed_with_the_signal_and_code_128_plus_it(
    started: tuple[LocalBackend, Recorder],
) -> None:
    backend, recorder = started
    pid = await run_until_ready(backend, "sleep", "600")
    os.kill(pid, signal.SIGKILL)
    event = await recorder.first(BackendEventKind.EXITED)
    assert event == BackendEvent(
        session_id=SID,
        kind=BackendEventKind.EXITED,
        message="the session process was killed by signal SIGKILL (9) (exit code 137)",
        reason="Killed",
        exit_code=137,
    )


@pytest.mark.asyncio
async def test_an_exit_before_ready_fails_the_wait_and_is_not_also_an_event(
    started: tuple[LocalBackend, Recorder],
) -> None:
    backend, recorder = started
    backend.ready_after_seconds = 5
    backend.command = ["sh", "-c", "echo cannot go on >&2; exit 0"]
    await backend.create(SessionSpec(session_id=SID, name="early", owner="alice"))
    with pytest.raises(SessionFailed) as failed:
        await backend.wait_ready(SID, timeout=2)  # long before ready_after_seconds
    assert (failed.value.reason, failed.value.detail) == (
        "ProcessExited",
        "the session process exited with exit status 0; last output:\ncannot go on",
    )
    await asyncio.sleep(0.1)  # the exit callback has run by now
    assert recorder.of_kind(BackendEventKind.EXITED) == []


@pytest.mark.asyncio
async def test_what_an_exited_process_left_in_its_group_is_stopped_with_it(
    started: tuple[LocalBackend, Recorder],
    tmp_path: Path,
) -> None:
    backend, recorder = started
    script = "sleep 600 & echo $! > child.pid; sleep 0.3; exit 0"
    await run_until_ready(backend, "sh", "-c", script)
    await recorder.first(BackendEventKind.EXITED)
    child = int((tmp_path / "workspaces" / SID / "child.pid").read_text())
    for _ in range(50):
        if not pid_alive(child):
            break
        await asyncio.sleep(0.02)
    assert not pid_alive(child)


@pytest.mark.asyncio
async def test_the_exit_of_a_process_adopted_after_a_restart_has_an_unknown_code(
    tmp_path: Path,
) -> None:
    first = LocalBackend(data_dir=str(tmp_path), ready_after_seconds=0.05)
    await first.start(lambda event: None)
    first.command = ["sleep", "600"]
    await first.create(SessionSpec(session_id=SID, name="adopted", owner="alice"))
    await first.wait_ready(SID, timeout=5)
    await first.close()  # the server stops; the process runs on
    recorder = Recorder()
    second = LocalBackend(data_dir=str(tmp_path), ready_after_seconds=0.05)
    await second.start(recorder)
    try:
        pid = second.process_id(SID)
        assert pid is not None and second.compute_state(SID) == ComputeState.RUNNING
        os.kill(pid, signal.SIGTERM)
        event = await recorder.first(BackendEventKind.EXITED)
        assert event == BackendEvent(
            session_id=SID,
            kind=BackendEventKind.EXITED,
            message="the session process exited; its exit status is unknown "
            "(it was started before this server)",
            reason="ProcessExited",
            exit_code=None,
        )
    finally:
        await second.delete(SID)
        await second.close()
