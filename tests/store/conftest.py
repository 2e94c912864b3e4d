"""Fixtures for the store tests: every test runs against SQLite and, when available, PostgreSQL.

PostgreSQL is used when ``RAWORC_TEST_POSTGRES_URL`` is set (``source scripts/postgres-for-tests``).
Without it those tests skip, except under ``CI=true``, where they fail. They run in a database
of their own (created once per test run and worker), with an empty schema for every test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from raworc_spawner.sessions.model import Session, new_session_id
from raworc_spawner.store import SessionStore
from tests.postgres import POSTGRES_ENV, create_database, drop_database, empty_schema, run_alone

#: A fixed instant the tests build their times on.
T0 = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """URL of a database for this test run (and xdist worker), or ``None`` without PostgreSQL."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        yield None
        return
    name = f"raworc_store_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    yield run_alone(lambda: create_database(base, name, durable=False))
    run_alone(lambda: drop_database(base, name))


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
    return await empty_schema(url)


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
