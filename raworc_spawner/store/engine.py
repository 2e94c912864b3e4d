"""Connections and migrations: URL checks, engines (SQLite pragmas and locking), alembic."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from raworc_spawner import errors

#: URL schemes (SQLAlchemy driver names) the store accepts.
ALLOWED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
#: How long a SQLite connection waits for the database lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Where the alembic environment and revisions live (shipped inside the package).
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: Key of the PostgreSQL advisory lock that serialises migrations between processes.
MIGRATION_LOCK_KEY = 0x7261_776F_7263  # "raworc"
#: Execution option marking a write transaction (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "raworc_write_transaction"


async def migrate_to_head(url: sa.URL, *, echo: bool = False) -> None:
    """Bring the database at ``url`` to the newest schema revision; a no-op when it is there.

    Runs in one transaction under a database-wide lock, so concurrent callers (other processes
    opening the same database) wait and then find nothing to do. SQLite files are switched to
    write-ahead logging first.
    """
    engine = make_engine(url, echo=echo, migrating=True)
    try:
        if url.get_backend_name() == "sqlite":
            await _use_write_ahead_log(engine)
        async with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            await conn.run_sync(_upgrade_to_head)
    finally:
        await engine.dispose()


async def _use_write_ahead_log(engine: AsyncEngine, *, attempts: int = 50) -> None:
    # The mode is stored in the file. Switching needs the database to itself, and SQLite
    # answers "locked" at once (no busy_timeout) while another connection holds it, as when
    # several processes open a new file together: retry briefly.
    for attempt in range(1, attempts + 1):
        try:
            async with engine.connect() as conn:
                # On the driver's connection: through SQLAlchemy it would run inside BEGIN.
                driver = (await conn.get_raw_connection()).driver_connection
                if driver is None:
                    raise RuntimeError("the SQLite connection closed while opening the store")
                await driver.execute("PRAGMA journal_mode=WAL")
            return
        except (sqlite3.OperationalError, OperationalError) as e:
            if "locked" not in str(e) or attempt == attempts:
                raise
            await asyncio.sleep(0.01 * attempt)


def alembic_config() -> Config:
    """An alembic configuration for the packaged migrations (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def _upgrade_to_head(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until the transaction ends: a concurrent opener waits, then finds head.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")


def parse_url(url: str) -> sa.URL:
    """Parse a database URL, raising :class:`~raworc_spawner.errors.InvalidConfig` unless usable.

    The error names the setting and never shows a password.
    """
    allowed = f"use a URL starting with {' or '.join(d + '://' for d in ALLOWED_DRIVERS)}"
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise errors.InvalidConfig("RaworcApp.db_url", url, allowed) from e
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername not in ALLOWED_DRIVERS:
        raise errors.InvalidConfig("RaworcApp.db_url", shown, allowed)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise errors.InvalidConfig(
            "RaworcApp.db_url",
            shown,
            "SQLite needs a file path, e.g. sqlite+aiosqlite:///data/raworc.sqlite",
        )
    return parsed


def make_engine(url: sa.URL, *, echo: bool, migrating: bool = False) -> AsyncEngine:
    """An engine for ``url``; on SQLite, with the pragmas and ``BEGIN`` handling the store needs.

    ``migrating=True`` gives a pool-less engine for the one-off migration run; on SQLite its
    connections have foreign keys off (a table rebuild in a migration would otherwise
    cascade-delete events), which can only be set outside a transaction.
    """
    options: dict[str, Any] = {"echo": echo}
    if migrating:
        options["poolclass"] = NullPool
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, **options)
    engine = create_async_engine(url, **options)
    _configure_sqlite(engine.sync_engine, migrating=migrating)
    return engine


def _configure_sqlite(engine: sa.Engine, *, migrating: bool) -> None:
    pragmas = (
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "synchronous=NORMAL",
        f"foreign_keys={'OFF' if migrating else 'ON'}",
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below) so the driver's implicit transactions don't interfere.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.execute("PRAGMA journal_mode")
        if not migrating and cursor.fetchone()[0] != "wal":  # set at open(); reassert if undone
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the lock up front: upgrading a read transaction to a write one fails
        # immediately (SQLITE_BUSY) when another writer got there first.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
