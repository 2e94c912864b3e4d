"""The schema's life: created by migrations, kept across restarts, equal to the models."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from asyncio.subprocess import PIPE
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from raworc_spawner.sessions.model import Session, SessionEvent, SessionState
from raworc_spawner.store import SessionStore, alembic_config, metadata

MakeSession = Callable[..., Session]


async def _inspect(url: str, look: Callable[[sa.Connection], Any]) -> Any:
    """Run ``look`` on a plain connection to the database, outside any store."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


def _current_revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


@pytest.mark.asyncio
async def test_sessions_and_events_survive_a_server_restart(
    db_url: str, make_session: MakeSession, t0: datetime
) -> None:
    before = SessionStore(db_url)
    await before.open()
    saved = await before.insert(make_session(metadata={"k": ["v"]}, last_activity_at=t0))
    saved = await before.update(saved.evolve(state=SessionState.IDLE))
    event = await before.add_event(
        SessionEvent(saved.id, 0, "updated", "paused", state=SessionState.IDLE)
    )
    await before.close()

    after = SessionStore(db_url)
    await after.open()
    try:
        assert await after.get(saved.id) == saved
        assert await after.events(saved.id) == [event]
        assert (await after.count_by_state())[SessionState.IDLE] == 1
        assert [s.id for s in await after.retention_candidates(older_than=t0 + timedelta(1))] == [
            saved.id
        ]
    finally:
        await after.close()


@pytest.mark.asyncio
async def test_a_store_can_be_closed_and_opened_again(
    db_url: str, make_session: MakeSession
) -> None:
    store = SessionStore(db_url)
    await store.open()
    await store.open()
    saved = await store.insert(make_session())
    await store.close()
    await store.close()
    await store.open()
    try:
        assert await store.get(saved.id) == saved
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_running_the_migrations_again_is_a_no_op(
    db_url: str, make_session: MakeSession
) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    first = SessionStore(db_url)
    await first.open()
    saved = await first.insert(make_session())
    await first.close()
    schema_before = await _inspect(db_url, _describe_schema)

    second = SessionStore(db_url)
    await second.open()
    try:
        assert await second.get(saved.id) == saved
    finally:
        await second.close()

    assert head == "0002"
    assert await _inspect(db_url, _current_revision) == head
    assert await _inspect(db_url, _describe_schema) == schema_before


@pytest.mark.asyncio
async def test_two_stores_opening_a_fresh_database_at_once_both_work(
    db_url: str, make_session: MakeSession
) -> None:
    stores = [SessionStore(db_url), SessionStore(db_url)]

    await asyncio.gather(*(s.open() for s in stores))
    try:
        saved = [await s.insert(make_session()) for s in stores]
        assert await stores[0].all_ids() == {s.id for s in saved}
    finally:
        await asyncio.gather(*(s.close() for s in stores))


_OPEN_AND_INSERT = """
import asyncio, sys
from raworc_spawner.sessions.model import Session, new_session_id
from raworc_spawner.store import SessionStore

async def main() -> None:
    store = SessionStore(sys.argv[1])
    await store.open()
    await store.insert(Session(id=new_session_id(), name=sys.argv[2], owner="alice"))
    await store.close()

asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_two_processes_opening_a_fresh_database_at_once_both_work(db_url: str) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _OPEN_AND_INSERT, db_url, f"process-{i}", stderr=PIPE
        )
        for i in range(2)
    ]
    outcomes = [(await p.wait(), (await p.stderr.read()).decode()) for p in processes if p.stderr]

    assert [code for code, _ in outcomes] == [0, 0], [err for _, err in outcomes]
    store = SessionStore(db_url)
    await store.open()
    try:
        page, _ = await store.list()
        assert sorted(s.name for s in page) == ["process-0", "process-1"]
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_the_migrated_schema_matches_the_models(store: SessionStore, db_url: str) -> None:
    def differences(conn: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await _inspect(db_url, differences) == []


@pytest.mark.asyncio
async def test_the_schema_has_the_indexes_the_queries_rely_on(
    store: SessionStore, db_url: str
) -> None:
    indexes = (await _inspect(db_url, _describe_schema))["sessions"]["indexes"]

    assert {
        ("owner", "created_at"),
        ("state", "last_activity_at"),
        ("namespace",),
        ("created_at", "id"),
    } <= set(indexes)


@pytest.mark.asyncio
async def test_the_sqlite_file_uses_write_ahead_logging(tmp_path: Any) -> None:
    store = SessionStore.sqlite_in(tmp_path)
    await store.open()
    await store.close()

    with sqlite3.connect(tmp_path / "raworc.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def _describe_schema(conn: sa.Connection) -> dict[str, Any]:
    inspector = sa.inspect(conn)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "indexes": sorted(tuple(i["column_names"]) for i in inspector.get_indexes(table)),
        }
        for table in sorted(inspector.get_table_names())
    }
