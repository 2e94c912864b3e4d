"""Activity tracking and the queries the culler asks: who is idle, who is old enough to go."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from raworc_spawner.sessions.model import Session, SessionState
from raworc_spawner.store import SessionStore

MakeSession = Callable[..., Session]
READY, IDLE = SessionState.READY, SessionState.IDLE


@pytest.mark.asyncio
async def test_touch_never_moves_activity_backwards_and_keeps_the_version(
    store: SessionStore, make_session: MakeSession, t0: datetime
) -> None:
    active = await store.insert(make_session(last_activity_at=t0))
    fresh = await store.insert(make_session())

    await store.touch({active.id: t0 - timedelta(seconds=1), fresh.id: t0, "unknown": t0})
    await store.touch({})

    assert await store.get(active.id) == active
    assert await store.get(fresh.id) == fresh.evolve(last_activity_at=t0)

    await store.touch({active.id: t0 + timedelta(milliseconds=1)})

    touched = await store.get(active.id)
    assert touched == active.evolve(last_activity_at=t0 + timedelta(milliseconds=1))


@pytest.mark.asyncio
async def test_idle_candidates_honour_each_session_timeout_the_default_and_zero_as_never(
    store: SessionStore, make_session: MakeSession, t0: datetime
) -> None:
    now = t0 + timedelta(hours=1)
    created = now - timedelta(hours=1)

    async def add(name: str, **fields: object) -> None:
        fields.setdefault("state", READY)
        fields.setdefault("created_at", created)
        await store.insert(make_session(id=name, name=name, **fields))

    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    await add("default-expired", last_activity_at=ago(600))
    await add("default-fresh", last_activity_at=ago(100))
    await add("default-exactly-due", last_activity_at=ago(300))
    await add("default-due-in-1ms", last_activity_at=ago(299.999))
    await add("own-short-expired", waiting_timeout_seconds=50, last_activity_at=ago(100))
    await add("own-long-fresh", waiting_timeout_seconds=5000, last_activity_at=ago(1000))
    await add("own-30-days", waiting_timeout_seconds=30 * 86400, last_activity_at=ago(1000))
    await add("own-zero-never", waiting_timeout_seconds=0, last_activity_at=ago(10**6))
    await add("not-ready", state=IDLE, last_activity_at=ago(600))
    await add("busy", state=SessionState.BUSY, last_activity_at=ago(600))
    await add("falls-back-to-started", started_at=ago(400))
    await add("falls-back-to-created", created_at=ago(450))

    due = await store.idle_candidates(now=now, default_timeout=300)
    due_without_default = await store.idle_candidates(now=now, default_timeout=0)
    oldest = await store.idle_candidates(now=now, default_timeout=300, limit=2)

    assert [s.id for s in due] == [
        "default-expired",
        "falls-back-to-created",
        "falls-back-to-started",
        "default-exactly-due",
        "own-short-expired",
    ]
    assert [s.id for s in due_without_default] == ["own-short-expired"]
    assert [s.id for s in oldest] == ["default-expired", "falls-back-to-created"]


@pytest.mark.asyncio
async def test_idle_candidates_follow_touch(
    store: SessionStore, make_session: MakeSession, t0: datetime
) -> None:
    session = await store.insert(make_session(state=READY, last_activity_at=t0))
    now = t0 + timedelta(seconds=120)

    assert [s.id for s in await store.idle_candidates(now=now, default_timeout=60)] == [session.id]

    await store.touch({session.id: now - timedelta(seconds=10)})

    assert await store.idle_candidates(now=now, default_timeout=60) == []


@pytest.mark.asyncio
async def test_retention_candidates_are_idle_sessions_inactive_since_before_the_cutoff(
    store: SessionStore, make_session: MakeSession, t0: datetime
) -> None:
    cutoff = t0 + timedelta(days=7)
    old = await store.insert(make_session(state=IDLE, last_activity_at=t0))
    older = await store.insert(make_session(state=IDLE, created_at=t0 - timedelta(days=1)))
    await store.insert(make_session(state=IDLE, last_activity_at=cutoff))
    await store.insert(make_session(state=READY, last_activity_at=t0))
    await store.insert(make_session(state=SessionState.ERROR, last_activity_at=t0))

    found = await store.retention_candidates(older_than=cutoff)

    assert [s.id for s in found] == [older.id, old.id]
    assert await store.retention_candidates(older_than=cutoff, limit=1) == [older]
