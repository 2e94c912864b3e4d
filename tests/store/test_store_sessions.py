"""Storing, reading, updating and deleting sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from raworc_spawner import errors
from raworc_spawner.sessions.model import Session, SessionState
from raworc_spawner.store import SessionStore

MakeSession = Callable[..., Session]


@pytest.mark.asyncio
async def test_a_session_round_trips_with_every_field_intact(
    store: SessionStore, make_session: MakeSession
) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    original = make_session(
        name="Übung 🚀 — 数据",
        owner="zoë@example.org",
        namespace="team-ñ",
        starting_prompt="Say «hello»\nthen stop",
        agent_ids=("agent-1", "агент-2"),
        metadata={"nested": {"list": [1, 2.5, None, True]}, "emoji": "✨", "n": 10**12},
        profile="gpu-large",
        state=SessionState.BUSY,
        waiting_timeout_seconds=3600,
        container_id="c0ffee00-0000-4000-8000-000000000001",
        persistent_volume_id="pvc-1234",
        parent_session_id="11111111-2222-4333-8444-555555555555",
        created_at=datetime(2030, 1, 2, 8, 34, 5, 678999, tzinfo=india),
        started_at=datetime(2030, 1, 2, 3, 4, 6, 1500, tzinfo=UTC),
        last_activity_at=datetime(2030, 1, 2, 3, 4, 7, 999999, tzinfo=UTC),
        terminated_at=datetime(2030, 1, 2, 3, 4, 8, tzinfo=UTC),
        termination_reason="Completed",
        error="exit code 137: ran out of memory",
    )

    inserted = await store.insert(original)
    fetched = await store.get(original.id)

    expected = original.evolve(
        created_at=datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        started_at=datetime(2030, 1, 2, 3, 4, 6, 1000, tzinfo=UTC),
        last_activity_at=datetime(2030, 1, 2, 3, 4, 7, 999000, tzinfo=UTC),
        version=1,
    )
    assert inserted == expected
    assert fetched == expected
    assert fetched is not None
    assert fetched.created_at.tzinfo is UTC
    assert fetched.to_dict()["created_at"] == "2030-01-02T03:04:05.678000Z"


@pytest.mark.asyncio
async def test_optional_fields_round_trip_as_none(
    store: SessionStore, make_session: MakeSession
) -> None:
    original = make_session()

    await store.insert(original)

    assert await store.get(original.id) == original.evolve(version=1)


@pytest.mark.asyncio
async def test_getting_an_unknown_id_returns_none(store: SessionStore) -> None:
    assert await store.get("no-such-session") is None


@pytest.mark.asyncio
async def test_inserting_an_existing_id_raises_conflict(
    store: SessionStore, make_session: MakeSession
) -> None:
    first = await store.insert(make_session(name="first"))

    with pytest.raises(errors.Conflict):
        await store.insert(make_session(id=first.id, name="second"))
    assert await store.get(first.id) == first


@pytest.mark.asyncio
async def test_a_naive_timestamp_is_refused(store: SessionStore, make_session: MakeSession) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.insert(make_session(created_at=datetime(2030, 1, 1)))


@pytest.mark.asyncio
async def test_update_writes_the_fields_and_increments_the_version(
    store: SessionStore, make_session: MakeSession, t0: datetime
) -> None:
    saved = await store.insert(make_session())

    updated = await store.update(
        saved.evolve(state=SessionState.READY, container_id="c-1", started_at=t0)
    )

    assert updated.version == 2
    assert updated.state is SessionState.READY
    assert await store.get(saved.id) == updated


@pytest.mark.asyncio
async def test_updating_with_a_stale_version_raises_conflict(
    store: SessionStore, make_session: MakeSession
) -> None:
    saved = await store.insert(make_session())
    newer = await store.update(saved.evolve(name="renamed"))

    with pytest.raises(errors.Conflict):
        await store.update(saved.evolve(state=SessionState.ERROR))
    assert await store.get(saved.id) == newer


@pytest.mark.asyncio
async def test_updating_a_deleted_session_raises_session_not_found(
    store: SessionStore, make_session: MakeSession
) -> None:
    saved = await store.insert(make_session())
    await store.delete(saved.id)

    with pytest.raises(errors.SessionNotFound):
        await store.update(saved.evolve(name="ghost"))


@pytest.mark.asyncio
async def test_of_concurrent_updates_from_one_version_exactly_one_wins(
    store: SessionStore, make_session: MakeSession
) -> None:
    saved = await store.insert(make_session())

    results = await asyncio.gather(
        *(store.update(saved.evolve(name=f"writer-{i}")) for i in range(12)),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, Session)]
    assert len(winners) == 1
    assert all(isinstance(r, errors.Conflict) for r in results if r is not winners[0])
    assert await store.get(saved.id) == winners[0]
    assert winners[0].version == 2


@pytest.mark.asyncio
async def test_update_never_moves_last_activity_backwards(
    store: SessionStore, make_session: MakeSession, t0: datetime
) -> None:
    saved = await store.insert(make_session(last_activity_at=t0))
    await store.touch({saved.id: t0 + timedelta(minutes=5)})

    updated = await store.update(saved.evolve(state=SessionState.READY))

    assert updated.last_activity_at == t0 + timedelta(minutes=5)
    assert updated.state is SessionState.READY


@pytest.mark.asyncio
async def test_delete_reports_whether_the_session_existed(
    store: SessionStore, make_session: MakeSession
) -> None:
    saved = await store.insert(make_session())

    assert await store.delete(saved.id) is True
    assert await store.get(saved.id) is None
    assert await store.delete(saved.id) is False


@pytest.mark.asyncio
async def test_count_by_state_lists_every_state(
    store: SessionStore, make_session: MakeSession
) -> None:
    for state in [SessionState.READY, SessionState.READY, SessionState.IDLE]:
        await store.insert(make_session(state=state))

    counts = await store.count_by_state()

    assert counts == {
        SessionState.INIT: 0,
        SessionState.READY: 2,
        SessionState.BUSY: 0,
        SessionState.IDLE: 1,
        SessionState.ERROR: 0,
        SessionState.DELETING: 0,
    }


@pytest.mark.asyncio
async def test_all_ids_returns_every_stored_id(
    store: SessionStore, make_session: MakeSession
) -> None:
    ids = {(await store.insert(make_session())).id for _ in range(5)}
    await store.delete(ids.pop())

    assert await store.all_ids() == ids


@pytest.mark.parametrize(
    "url",
    [
        "mysql+aiomysql://u@h/db",
        "sqlite:///data/raworc.sqlite",
        "postgresql://raworc:s3cret@db/raworc",
        "sqlite+aiosqlite://",
        "not a url",
    ],
)
def test_an_unsupported_url_is_rejected_at_construction(url: str) -> None:
    with pytest.raises(errors.InvalidConfig) as caught:
        SessionStore(url)

    assert caught.value.setting == "RaworcApp.db_url"
    assert "s3cret" not in caught.value.message
    assert "sqlite+aiosqlite://" in caught.value.message


def test_sqlite_in_names_the_default_file_in_the_data_directory(tmp_path: Path) -> None:
    store = SessionStore.sqlite_in(tmp_path / "data")

    assert store.url == f"sqlite+aiosqlite:///{tmp_path}/data/raworc.sqlite"


@pytest.mark.asyncio
async def test_a_store_that_is_not_open_says_so(tmp_path: Path) -> None:
    store = SessionStore.sqlite_in(tmp_path)

    with pytest.raises(RuntimeError, match="open"):
        await store.get("x")


@pytest.mark.asyncio
async def test_an_owner_limit_holds_under_20_concurrent_inserts(
    store: SessionStore, make_session: MakeSession
) -> None:
    from raworc_spawner.sessions.model import EventKind, SessionEvent

    async def insert() -> bool:
        session = make_session(owner="carol")
        event = SessionEvent(session.id, 0, EventKind.CREATED, "created")
        try:
            await store.insert_and_record(session, event, owner_limit=3)
        except errors.QuotaExceeded as e:
            assert "'carol' already has 3 sessions" in e.message
            return False
        return True

    results = await asyncio.gather(*(insert() for _ in range(20)))
    assert results.count(True) == 3
    assert results.count(False) == 17
    items, _ = await store.list(owner="carol", limit=100)
    assert len(items) == 3
