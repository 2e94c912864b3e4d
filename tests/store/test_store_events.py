"""A session's event history: numbering, bounds and removal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from raworc_spawner import errors
from raworc_spawner.sessions.model import Session, SessionEvent, SessionState
from raworc_spawner.store import SessionStore

MakeSession = Callable[..., Session]


def _event(session_id: str, message: str = "something happened") -> SessionEvent:
    return SessionEvent(session_id=session_id, seq=0, kind="updated", message=message)


@pytest.mark.asyncio
async def test_an_event_round_trips_with_every_field(
    store: SessionStore, make_session: MakeSession
) -> None:
    session = await store.insert(make_session())
    event = SessionEvent(
        session_id=session.id,
        seq=99,
        kind="warning",
        message="Back-off pulling image «python:3.11-slim» 🐍",
        state=SessionState.ERROR,
        reason="ErrImagePull",
        timestamp=datetime(2030, 1, 1, 2, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    )

    stored = await store.add_event(event)

    expected = SessionEvent(
        session_id=session.id,
        seq=1,
        kind="warning",
        message=event.message,
        state=SessionState.ERROR,
        reason="ErrImagePull",
        timestamp=datetime(2030, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
    )
    assert stored == expected
    assert await store.events(session.id) == [expected]


@pytest.mark.asyncio
async def test_event_seq_has_no_duplicates_or_gaps_under_50_concurrent_calls(
    store: SessionStore, make_session: MakeSession
) -> None:
    session = await store.insert(make_session())

    stored = await asyncio.gather(
        *(store.add_event(_event(session.id, f"event {i}")) for i in range(50))
    )

    assert sorted(e.seq for e in stored) == list(range(1, 51))
    history = await store.events(session.id)
    assert [e.seq for e in history] == list(range(1, 51))
    assert {e.message for e in history} == {f"event {i}" for i in range(50)}


@pytest.mark.asyncio
async def test_each_session_numbers_its_events_from_one(
    store: SessionStore, make_session: MakeSession
) -> None:
    first = await store.insert(make_session())
    second = await store.insert(make_session())

    await store.add_event(_event(first.id))
    await store.add_event(_event(first.id))
    stored = await store.add_event(_event(second.id))

    assert stored.seq == 1


@pytest.mark.asyncio
async def test_only_the_newest_keep_events_are_kept_and_numbering_continues(
    store: SessionStore, make_session: MakeSession
) -> None:
    session = await store.insert(make_session())
    for i in range(10):
        await store.add_event(_event(session.id, f"event {i}"), keep=3)

    assert [e.seq for e in await store.events(session.id)] == [8, 9, 10]

    await store.add_event(_event(session.id), keep=3)

    assert [e.seq for e in await store.events(session.id)] == [9, 10, 11]


@pytest.mark.asyncio
async def test_events_after_a_seq_come_in_ascending_order_up_to_the_limit(
    store: SessionStore, make_session: MakeSession
) -> None:
    session = await store.insert(make_session())
    for i in range(6):
        await store.add_event(_event(session.id, f"event {i}"))

    page = await store.events(session.id, after_seq=2, limit=2)

    assert [(e.seq, e.message) for e in page] == [(3, "event 2"), (4, "event 3")]
    assert await store.events(session.id, after_seq=6) == []


@pytest.mark.asyncio
async def test_adding_an_event_to_an_unknown_session_raises_session_not_found(
    store: SessionStore,
) -> None:
    with pytest.raises(errors.SessionNotFound):
        await store.add_event(_event("no-such-session"))


@pytest.mark.asyncio
async def test_deleting_a_session_removes_its_events(
    store: SessionStore, make_session: MakeSession
) -> None:
    session = await store.insert(make_session())
    other = await store.insert(make_session())
    for _ in range(3):
        await store.add_event(_event(session.id))
    await store.add_event(_event(other.id))

    await store.delete(session.id)
    await store.insert(session)

    assert await store.events(session.id) == []
    assert (await store.add_event(_event(session.id))).seq == 1
    assert [e.seq for e in await store.events(other.id)] == [1]


@pytest.mark.asyncio
async def test_a_change_and_its_event_are_written_together_or_not_at_all(
    store: SessionStore, make_session: MakeSession
) -> None:
    new = make_session()
    session, created = await store.insert_and_record(new, _event(new.id, "created"))
    assert created.seq == 1 and session.version == 1
    ready, event = await store.update_and_record(
        session.evolve(state=SessionState.READY), _event(session.id, "ready")
    )
    assert ready.version == session.version + 1 and event.seq >= 1
    with pytest.raises(errors.Conflict):  # stale version: neither the row nor the event
        await store.update_and_record(
            session.evolve(state=SessionState.IDLE), _event(session.id, "stale")
        )
    assert [e.message for e in await store.events(session.id)][-1] == "ready"
    assert (await store.get(session.id)).state == SessionState.READY
    with pytest.raises(errors.Conflict):  # duplicate id: no second row, no orphan event
        await store.insert_and_record(session, _event(session.id, "again"))
    assert "again" not in [e.message for e in await store.events(session.id)]
