"""Fixtures for the store tests: every test runs against SQLite and, when available, PostgreSQL.

PostgreSQL is used when ``RAWORC_TEST_POSTGRES_URL`` is set (``source scripts/postgres-for-tests``).
Without it those tests skip, except under ``CI=true``, where they fail. They run in a database
of their own (created once per test run and worker), with an empty schema for every test.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from raworc_spawner.sessions.model import Session, new_session_id
from raworc_spawner.store import SessionStore

POSTGRES_ENV = "RAWORC_TEST_POSTGRES_URL"
#: A fixed instant the tests build their times on.
T0 = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _asyncpg_dsn(url: str, *, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _run_in_thread(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine on a private event loop, leaving the tests' loop alone."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro_fn())
        except BaseException as e:  # re-raised in the caller's thread
            failure.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """URL of a database for this test run (and xdist worker), or ``None`` without PostgreSQL."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        yield None
        return
    name = f"raworc_store_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(base))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
            # Durability is not under test here; not waiting for WAL flushes keeps the suite fast.
            await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(base))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_in_thread(create)
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    _run_in_thread(drop)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/raworc.sqlite"
    url: str | None = request.getfixturevalue("postgres_url")
    if url is None:
        reason = f"PostgreSQL store tests need {POSTGRES_ENV} (source scripts/postgres-for-tests)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    return url


@pytest_asyncio.fixture
async def store(db_url: str, no_leaked_tasks: None) -> AsyncIterator[SessionStore]:
    """An open store on an empty database (the test fails if it leaks asyncio tasks)."""
    opened = SessionStore(db_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def make_session() -> Callable[..., Session]:
    """Build a session with sensible defaults; keyword arguments override fields."""

    def build(**fields: Any) -> Session:
        fields.setdefault("id", new_session_id())
        fields.setdefault("name", "session")
        fields.setdefault("owner", "alice")
        fields.setdefault("created_at", T0)
        return Session(**fields)

    return build


@pytest.fixture
def t0() -> datetime:
    """A fixed instant (UTC, whole milliseconds) the tests build their times on."""
    return T0
