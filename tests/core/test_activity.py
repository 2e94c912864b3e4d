"""Activity is coalesced in memory and written in batches."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import pytest

from raworc_spawner.sessions.activity import ActivityTracker
from raworc_spawner.sessions.model import utcnow


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
