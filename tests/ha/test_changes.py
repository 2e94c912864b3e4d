"""Change notification between two stores on one PostgreSQL, and ReplicaSync on top of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from raworc_spawner.errors import Conflict
from raworc_spawner.sessions.events import EventBus
from raworc_spawner.sessions.model import (
    EventKind,
    Session,
    SessionEvent,
    SessionState,
    new_session_id,
)
from raworc_spawner.sessions.sync import ReplicaSync
from raworc_spawner.store import SessionStore
from raworc_spawner.store.changes import ChangeListener, SessionChange
from raworc_spawner.store.leader import asyncpg_dsn

WAIT = 5.0


class Heard:
    """A change callback that records what it was told."""

    def __init__(self) -> None:
        self.changes: list[SessionChange] = []
        self.resyncs = 0

    async def change(self, change: SessionChange) -> None:
        self.changes.append(change)

    async def resync(self) -> None:
        self.resyncs += 1


class RecordingCache:
    """The two cache operations ReplicaSync uses, recorded."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []
        self.cleared = 0

    def forget(self, session_id: str) -> None:
        self.forgotten.append(session_id)

    def clear(self) -> None:
        self.cleared += 1


async def until(condition: Callable[[], bool], seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def stores(pg_url: str) -> AsyncIterator[tuple[SessionStore, SessionStore]]:
    """Two stores (two servers) on the same PostgreSQL database."""
    a, b = SessionStore(pg_url), SessionStore(pg_url)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


@pytest_asyncio.fixture
async def listening(
    stores: tuple[SessionStore, SessionStore],
) -> AsyncIterator[tuple[Heard, ChangeListener]]:
    """What store b's change feed hears, once it listens."""
    heard = Heard()
    feed = stores[1].change_feed(heard.change, on_resync=heard.resync, keepalive_seconds=30)
    assert isinstance(feed, ChangeListener)
    await feed.start()
    try:
        await feed.wait_connected(WAIT)
        yield heard, feed
    finally:
        await feed.close()


def new_session() -> Session:
    return Session(id=new_session_id(), name="demo", owner="alice")


def event(session: Session, kind: EventKind, state: SessionState) -> SessionEvent:
    return SessionEvent(session.id, 0, kind, f"{kind}", state=state)


@pytest.mark.asyncio
async def test_a_transition_on_one_store_reaches_the_others_listener_with_its_event_seq(
    stores: tuple[SessionStore, SessionStore], listening: tuple[Heard, ChangeListener]
) -> None:
    a, _ = stores
    heard, _ = listening
    session = new_session()
    stored, _ = await a.insert_and_record(
        session, event(session, EventKind.CREATED, SessionState.INIT)
    )
    ready = stored.evolve(state=SessionState.READY)
    await a.update_and_record(ready, event(session, EventKind.READY, SessionState.READY))
    await until(lambda: len(heard.changes) == 2)
    assert [(c.session_id, c.seq, c.deleted) for c in heard.changes] == [
        (session.id, 1, False),
        (session.id, 2, False),
    ]
    carried = [c.event for c in heard.changes]
    assert [(e.seq, e.kind, e.state) for e in carried if e is not None] == [
        (1, EventKind.CREATED, SessionState.INIT),
        (2, EventKind.READY, SessionState.READY),
    ]


@pytest.mark.asyncio
async def test_a_stores_own_writes_are_not_delivered_back_to_its_listener(
    stores: tuple[SessionStore, SessionStore], listening: tuple[Heard, ChangeListener]
) -> None:
    a, b = stores
    heard, _ = listening
    own, other = new_session(), new_session()
    await b.insert(own)  # b's own write first...
    await a.insert(other)  # ...then a's: notifications arrive in commit order
    await until(lambda: len(heard.changes) >= 1)
    await asyncio.sleep(0.1)
    assert heard.changes == [SessionChange(other.id, None, False)]


@pytest.mark.asyncio
async def test_a_write_that_fails_notifies_nothing_and_a_delete_says_deleted(
    stores: tuple[SessionStore, SessionStore], listening: tuple[Heard, ChangeListener]
) -> None:
    a, _ = stores
    heard, _ = listening
    session = await a.insert(new_session())
    with pytest.raises(Conflict):  # a stale version: the transaction rolls back
        await a.update_and_record(
            session.evolve(version=7), event(session, EventKind.READY, SessionState.READY)
        )
    assert await a.delete(session.id)
    assert not await a.delete(session.id)  # nothing deleted, nothing said
    await until(lambda: len(heard.changes) >= 2)
    await asyncio.sleep(0.1)
    assert heard.changes == [
        SessionChange(session.id, None, False),
        SessionChange(session.id, None, True),
    ]


@pytest.mark.asyncio
async def test_a_listener_whose_connection_is_killed_reconnects_resyncs_and_hears_again(
    pg_url: str,
    stores: tuple[SessionStore, SessionStore],
    listening: tuple[Heard, ChangeListener],
) -> None:
    a, _ = stores
    heard, feed = listening
    admin = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
        )
    finally:
        await admin.close()
    assert killed == 1
    await until(lambda: heard.resyncs == 1)
    await feed.wait_connected(WAIT)
    session = await a.insert(new_session())
    await until(lambda: len(heard.changes) == 1)
    assert heard.changes == [SessionChange(session.id, None, False)]


@pytest.mark.asyncio
async def test_replica_sync_replays_another_replicas_transitions_on_the_bus_and_ends_on_delete(
    stores: tuple[SessionStore, SessionStore],
) -> None:
    a, b = stores
    cache, bus = RecordingCache(), EventBus()
    sync = ReplicaSync(b, cache, bus)
    await sync.start()
    try:
        await sync.wait_listening(WAIT)
        assert sync.delivers
        session = await a.insert(new_session())
        await until(lambda: cache.forgotten == [session.id])  # the insert (no event)
        received: list[SessionEvent] = []

        async def stream() -> None:
            async with bus.subscribe(session.id) as events:
                async for item in events:
                    received.append(item)

        reader = asyncio.create_task(stream())
        await until(lambda: bus.subscriber_count() == 1)
        ready = session.evolve(state=SessionState.READY)
        _, recorded = await a.update_and_record(
            ready, event(session, EventKind.READY, SessionState.READY)
        )
        await a.delete(session.id)
        await asyncio.wait_for(reader, WAIT)  # the stream ends with the deletion
        assert [(e.seq, e.kind, e.state) for e in received] == [
            (recorded.seq, EventKind.READY, SessionState.READY),
            (0, EventKind.DELETED, None),
        ]
        assert received[0] == recorded
        assert cache.forgotten == [session.id] * 3
    finally:
        await sync.close()


@pytest.mark.asyncio
async def test_replica_sync_drops_the_whole_cache_on_resync() -> None:
    cache = RecordingCache()
    await ReplicaSync(SessionStore("sqlite+aiosqlite:///unused.sqlite"), cache, EventBus()).resync()
    assert cache.cleared == 1


@pytest.mark.asyncio
async def test_on_sqlite_the_change_feed_delivers_nothing(tmp_path: Path) -> None:
    store = SessionStore.sqlite_in(tmp_path)
    sync = ReplicaSync(store, RecordingCache(), EventBus())
    await sync.start()
    assert not sync.delivers
    assert not store.shared
    await sync.close()


@pytest.mark.asyncio
async def test_an_event_too_long_to_notify_is_fetched_from_the_store_and_published(
    stores: tuple[SessionStore, SessionStore],
) -> None:
    a, b = stores
    bus = EventBus()
    sync = ReplicaSync(b, RecordingCache(), bus)
    await sync.start()
    try:
        await sync.wait_listening(WAIT)
        session = await a.insert(new_session())
        async with bus.subscribe(session.id) as events:
            long_failure = SessionEvent(
                session.id, 0, EventKind.FAILED, "x" * 9000, state=SessionState.ERROR
            )
            recorded = await a.add_event(long_failure)
            received = await asyncio.wait_for(anext(aiter(events)), WAIT)
        assert received == recorded
        assert len(received.message) == 9000
    finally:
        await sync.close()
