"""Activity is coalesced in memory and written in batches; a session's own work is activity."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta

import pytest

from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.sessions.activity import ActivityTracker
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal, SessionState, utcnow
from raworc_spawner.sessions.requests import parse_create

ALICE = Principal("alice")


class RecordingStore:
    def __init__(self) -> None:
        self.batches: list[dict[str, datetime]] = []
        self.fail = False

    async def touch(self, activity: Mapping[str, datetime]) -> None:
        if self.fail:
            raise OSError("database is gone")
        self.batches.append(dict(activity))


@pytest.mark.asyncio
async def test_a_thousand_notes_on_ten_sessions_cost_one_write() -> None:
    store = RecordingStore()
    tracker = ActivityTracker(store)
    for i in range(1000):
        tracker.note(f"s{i % 10}")
    await tracker.flush()
    await tracker.flush()  # nothing pending: no write
    assert len(store.batches) == 1 and len(store.batches[0]) == 10


@pytest.mark.asyncio
async def test_the_latest_time_wins_and_never_moves_backwards() -> None:
    store = RecordingStore()
    tracker = ActivityTracker(store)
    now = utcnow()
    tracker.note("s", now)
    tracker.note("s", now - timedelta(seconds=5))
    await tracker.flush()
    assert store.batches == [{"s": now}]


@pytest.mark.asyncio
async def test_a_failed_write_keeps_the_activity_for_the_next_flush() -> None:
    store = RecordingStore()
    tracker = ActivityTracker(store)
    tracker.note("s")
    store.fail = True
    with pytest.raises(OSError):
        await tracker.flush()
    store.fail = False
    await tracker.flush()
    assert list(store.batches[0]) == ["s"]


@pytest.mark.asyncio
async def test_a_session_busy_computing_is_not_culled_and_an_idle_one_is(
    local_manager: SessionManager, local_backend: LocalBackend
) -> None:
    from raworc_spawner.sessions.culler import Culler
    from tests.waiting import until_state

    local_backend.command = [sys.executable, "-c", "while True: pass"]  # the training job
    busy = await local_manager.create(
        ALICE, parse_create({"name": "ml-training-session", "waiting_timeout_seconds": 1})
    )
    local_backend.command = ["sleep", "600"]
    idle = await local_manager.create(
        ALICE, parse_create({"name": "idle", "waiting_timeout_seconds": 1})
    )
    await until_state(local_manager, busy.id, "ready")
    await until_state(local_manager, idle.id, "ready")
    await asyncio.sleep(1.5)  # both past their idle timeout, with no request at all
    culler = Culler(manager=local_manager, interval_seconds=0)
    done = await culler.run_once()
    assert done["culled"] == [idle.id]
    assert (await local_manager.get(ALICE, busy.id)).state == SessionState.READY
    await local_manager.delete(ALICE, busy.id)
    await local_manager.delete(ALICE, idle.id)
