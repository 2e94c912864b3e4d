"""The SQL store: sessions and their events, in SQLite (the default) or PostgreSQL.

:class:`SessionStore` is the only thing other layers use; no SQLAlchemy type leaks out of it.
The schema is owned by the alembic migrations in ``raworc_spawner/migrations``, which
:meth:`SessionStore.open` runs to head on every start.

Concurrency: every write runs in one transaction. On SQLite, write transactions start with
``BEGIN IMMEDIATE`` so they queue on the database lock (``busy_timeout``) instead of failing
half-way; on PostgreSQL, :meth:`SessionStore.update` is one conditional ``UPDATE`` and
:meth:`SessionStore.add_event` locks the session's row, so both are safe across processes.

Example::

    store = SessionStore.sqlite_in("data")
    await store.open()
    saved = await store.insert(Session(id=new_session_id(), name="demo", owner="alice"))
    saved = await store.update(saved.evolve(state=SessionState.READY))
    await store.close()
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import os
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from raworc_spawner import errors
from raworc_spawner.sessions.model import Session, SessionEvent, SessionState

#: URL schemes (SQLAlchemy driver names) the store accepts.
ALLOWED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
#: The database file :meth:`SessionStore.sqlite_in` uses inside the data directory.
SQLITE_FILENAME = "raworc.sqlite"
#: How long a SQLite connection waits for the database lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Where the alembic environment and revisions live (shipped inside the package).
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Key of the PostgreSQL advisory lock that serialises migrations between processes.
MIGRATION_LOCK_KEY = 0x7261_776F_7263  # "raworc"
MAX_PAGE_SIZE = 1000

_WRITE = "raworc_write_transaction"
# Milliseconds between the Julian-day epoch (SQLite's julianday()) and the Unix epoch.
_JULIAN_UNIX_EPOCH_MS = 210_866_760_000_000
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, kept to the millisecond on every backend.

    SQLite has no time zones: values are stored as naive UTC text (which sorts correctly) and
    made aware again on read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC milliseconds; drop the zone where the backend cannot keep it."""
        if value is None:
            return None
        value = to_utc_ms(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend handed back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def to_utc_ms(value: datetime) -> datetime:
    """``value`` in UTC, truncated to the millisecond; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} (the store keeps aware UTC times)")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sessions_table = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("starting_prompt", sa.Text, nullable=False),
    sa.Column("agent_ids", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("profile", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("waiting_timeout_seconds", sa.Integer),
    sa.Column("container_id", sa.Text),
    sa.Column("persistent_volume_id", sa.Text),
    sa.Column("parent_session_id", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("last_activity_at", UTCDateTime),
    sa.Column("terminated_at", UTCDateTime),
    sa.Column("termination_reason", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_sessions_owner_created_at", "owner", "created_at"),
    sa.Index("ix_sessions_state_last_activity_at", "state", "last_activity_at"),
    sa.Index("ix_sessions_namespace", "namespace"),
    # Serves the unfiltered newest-first listing (an admin's view) and its keyset pages.
    sa.Index("ix_sessions_created_at_id", "created_at", "id"),
)

events_table = sa.Table(
    "session_events",
    metadata,
    sa.Column(
        "session_id",
        sa.Text,
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("state", sa.String(16)),
    sa.Column("reason", sa.Text),
    sa.Column("timestamp", UTCDateTime, nullable=False),
)

_S = sessions_table.c
_E = events_table.c
_TIMESTAMPS = ("created_at", "started_at", "last_activity_at", "terminated_at")


class SessionStore:
    """Persists sessions and their events."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        """Check ``url`` now; connect later, in :meth:`open`.

        ``url`` is a SQLAlchemy URL whose scheme is one of :data:`ALLOWED_DRIVERS`, e.g.
        ``sqlite+aiosqlite:///data/raworc.sqlite`` or
        ``postgresql+asyncpg://user:password@host/db``. ``echo`` logs every SQL statement.
        """
        self._url = _parse_url(url)
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None

    @classmethod
    def sqlite_in(cls, data_dir: str | os.PathLike[str]) -> SessionStore:
        """The default store: the SQLite file ``<data_dir>/raworc.sqlite``."""
        path = Path(os.path.abspath(Path(data_dir).expanduser() / SQLITE_FILENAME))
        url = sa.URL.create("sqlite+aiosqlite", database=str(path))
        return cls(url.render_as_string(hide_password=False))

    @property
    def url(self) -> str:
        """The database URL, with any password masked (safe to log)."""
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"SessionStore({self.url!r})"

    async def open(self) -> None:
        """Connect and migrate the schema to the newest revision; a no-op if already open.

        Safe when several processes open the same database at once: migrations run under a
        database lock and a second run finds nothing to do.
        """
        if self._engine is not None:
            return
        if self._is_sqlite:
            Path(self._url.database or "").parent.mkdir(parents=True, exist_ok=True)
        await self._migrate()
        self._engine = _create_engine(self._url, echo=self._echo)
        self._writer = self._engine.execution_options(**{_WRITE: True})

    async def close(self) -> None:
        """Close every connection; :meth:`open` may be called again afterwards."""
        engine, self._engine, self._writer = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    async def insert(self, session: Session) -> Session:
        """Store a new session and return it as stored, with ``version=1``.

        Raises :class:`~raworc_spawner.errors.Conflict` if a session with that id exists.
        """
        values = _session_values(session) | {"version": 1}
        stmt = sa.insert(sessions_table).values(values).returning(*sessions_table.c)
        try:
            async with self._write() as conn:
                row = (await conn.execute(stmt)).one()
        except IntegrityError as e:
            raise errors.Conflict(f"a session with id {session.id} already exists") from e
        return _row_to_session(row)

    async def get(self, session_id: str) -> Session | None:
        """The session with that id, or ``None``."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(sessions_table).where(_S.id == session_id))).first()
        return None if row is None else _row_to_session(row)

    async def update(self, session: Session) -> Session:
        """Write every field of ``session`` if nobody changed the row since it was read.

        Succeeds only when the stored version equals ``session.version``; returns the stored
        session with the version increased by one. ``last_activity_at`` never moves backwards
        (:meth:`touch` may have advanced it meanwhile), so the returned value may be newer.
        Raises :class:`~raworc_spawner.errors.Conflict` on a stale version and
        :class:`~raworc_spawner.errors.SessionNotFound` if the row is gone.
        """
        values = _session_values(session)
        del values["id"]
        values["version"] = session.version + 1
        values["last_activity_at"] = _later_of(_S.last_activity_at, values["last_activity_at"])
        stmt = (
            sa.update(sessions_table)
            .where(_S.id == session.id, _S.version == session.version)
            .values(values)
            .returning(*sessions_table.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                exists = await conn.scalar(sa.select(_S.version).where(_S.id == session.id))
                if exists is None:
                    raise errors.SessionNotFound(session.id)
                raise errors.Conflict(
                    f"session {session.id} changed since it was read "
                    f"(version {session.version}, stored {exists})"
                )
        return _row_to_session(row)

    async def delete(self, session_id: str) -> bool:
        """Remove the session and its events; ``True`` if it existed."""
        async with self._write() as conn:
            result = await conn.execute(sa.delete(sessions_table).where(_S.id == session_id))
        return bool(result.rowcount)

    async def list(
        self,
        *,
        owner: str | None = None,
        states: Collection[SessionState] | None = None,
        namespace: str | None = None,
        text: str | None = None,
        profile: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[builtins.list[Session], str | None]:
        """One page of sessions, newest first, and the cursor of the next page (or ``None``).

        Filters combine with AND; ``None`` means "any". ``text`` matches a substring of the name
        or the id, ignoring case (ASCII letters only on SQLite). ``cursor`` is the opaque,
        URL-safe value a previous call returned; a malformed one raises
        :class:`~raworc_spawner.errors.ValidationError`. ``limit`` is 1 to 1000.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise errors.ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        conditions = _list_conditions(owner, states, namespace, text, profile)
        if cursor is not None:
            created_at, last_id = _decode_cursor(cursor)
            conditions.append(
                sa.or_(
                    _S.created_at < created_at,
                    sa.and_(_S.created_at == created_at, _S.id < last_id),
                )
            )
        stmt = (
            sa.select(sessions_table)
            .where(*conditions)
            .order_by(_S.created_at.desc(), _S.id.desc())
            .limit(limit + 1)
        )
        async with self._read() as conn:
            page = [_row_to_session(row) for row in await conn.execute(stmt)]
        if len(page) <= limit:
            return page, None
        page = page[:limit]
        return page, _encode_cursor(page[-1])

    async def count_by_state(self) -> dict[SessionState, int]:
        """How many sessions are in each state (every state present, zero if none)."""
        stmt = sa.select(_S.state, sa.func.count()).group_by(_S.state)
        counts = dict.fromkeys(SessionState, 0)
        async with self._read() as conn:
            for state, count in await conn.execute(stmt):
                counts[SessionState(state)] = count
        return counts

    async def all_ids(self) -> set[str]:
        """The ids of every stored session (for reconciliation with the backend)."""
        async with self._read() as conn:
            return set((await conn.scalars(sa.select(_S.id))).all())

    async def add_event(self, event: SessionEvent, *, keep: int = 200) -> SessionEvent:
        """Append ``event`` to its session's history and return it as stored.

        The stored ``seq`` is the session's previous highest plus one (``event.seq`` is
        ignored), also under concurrent calls. Only the newest ``keep`` events are kept.
        Raises :class:`~raworc_spawner.errors.SessionNotFound` for an unknown session.
        """
        if keep < 1:
            raise ValueError(f"keep={keep}: must keep at least one event")
        lock = sa.select(_S.id).where(_S.id == event.session_id).with_for_update(key_share=True)
        last_seq = sa.select(sa.func.coalesce(sa.func.max(_E.seq), 0)).where(
            _E.session_id == event.session_id
        )
        async with self._write() as conn:
            if await conn.scalar(lock) is None:
                raise errors.SessionNotFound(event.session_id)
            seq = int(await conn.scalar(last_seq) or 0) + 1
            stored = replace(event, seq=seq, timestamp=to_utc_ms(event.timestamp))
            await conn.execute(sa.insert(events_table).values(_event_values(stored)))
            await conn.execute(
                sa.delete(events_table).where(
                    _E.session_id == event.session_id, _E.seq <= seq - keep
                )
            )
        return stored

    async def events(
        self, session_id: str, *, after_seq: int = 0, limit: int = 200
    ) -> builtins.list[SessionEvent]:
        """The session's events with ``seq > after_seq``, oldest first, at most ``limit``."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise errors.ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        stmt = (
            sa.select(events_table)
            .where(_E.session_id == session_id, _E.seq > after_seq)
            .order_by(_E.seq)
            .limit(limit)
        )
        async with self._read() as conn:
            return [_row_to_event(row) for row in await conn.execute(stmt)]

    async def touch(self, activity: Mapping[str, datetime]) -> None:
        """Record activity for many sessions in one transaction.

        Sets each ``last_activity_at`` to the later of the stored and the given time, so it
        never moves backwards; unknown ids are ignored; the version is not changed.
        """
        if not activity:
            return
        params = [{"b_id": sid, "b_at": to_utc_ms(at)} for sid, at in sorted(activity.items())]
        at = sa.bindparam("b_at", type_=UTCDateTime)
        stmt = (
            sa.update(sessions_table)
            .where(
                _S.id == sa.bindparam("b_id"),
                sa.or_(_S.last_activity_at.is_(None), _S.last_activity_at < at),
            )
            .values(last_activity_at=at)
        )
        async with self._write() as conn:
            await conn.execute(stmt, params)

    async def idle_candidates(
        self, *, now: datetime, default_timeout: int, limit: int = 100
    ) -> builtins.list[Session]:
        """Ready sessions whose waiting timeout has run out at ``now``, longest-idle first.

        A session's clock starts at ``last_activity_at`` (else ``started_at``, else
        ``created_at``); its timeout is ``waiting_timeout_seconds``, or ``default_timeout``
        when that is ``None``. A timeout of 0 means "never idle".
        """
        if default_timeout < 0:
            raise ValueError(f"default_timeout={default_timeout}: must be 0 (never) or more")
        timeout = sa.func.coalesce(_S.waiting_timeout_seconds, default_timeout)
        now_ms = sa.literal(_epoch_ms(to_utc_ms(now)), sa.BigInteger)
        async with self._read() as conn:
            deadline_ms = _sql_epoch_ms(_activity_anchor(), conn.dialect.name) + (
                sa.cast(timeout, sa.BigInteger) * 1000
            )
            stmt = (
                sa.select(sessions_table)
                .where(_S.state == SessionState.READY.value, timeout > 0, deadline_ms <= now_ms)
                .order_by(_activity_anchor(), _S.id)
                .limit(limit)
            )
            return [_row_to_session(row) for row in await conn.execute(stmt)]

    async def retention_candidates(
        self, *, older_than: datetime, limit: int = 100
    ) -> builtins.list[Session]:
        """Idle sessions whose last activity is before ``older_than``, oldest first."""
        anchor = _activity_anchor()
        stmt = (
            sa.select(sessions_table)
            .where(_S.state == SessionState.IDLE.value, anchor < to_utc_ms(older_than))
            .order_by(anchor, _S.id)
            .limit(limit)
        )
        async with self._read() as conn:
            return [_row_to_session(row) for row in await conn.execute(stmt)]

    # -- connections ---------------------------------------------------------------------------

    @property
    def _is_sqlite(self) -> bool:
        return self._url.get_backend_name() == "sqlite"

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._engine is None:
            raise RuntimeError(f"{self!r} is not open: call open() first")
        async with self._engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._writer is None:
            raise RuntimeError(f"{self!r} is not open: call open() first")
        async with self._writer.begin() as conn:
            yield conn

    async def _migrate(self) -> None:
        # A throw-away engine: on SQLite migrations need foreign keys off (a table rebuild
        # would otherwise cascade-delete events), which can only be set outside a transaction.
        engine = _create_engine(self._url, echo=self._echo, foreign_keys=False, pool=False)
        try:
            async with engine.execution_options(**{_WRITE: True}).begin() as conn:
                await conn.run_sync(_upgrade_to_head)
        finally:
            await engine.dispose()


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


def _parse_url(url: str) -> sa.URL:
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


def _create_engine(
    url: sa.URL, *, echo: bool, foreign_keys: bool = True, pool: bool = True
) -> AsyncEngine:
    options: dict[str, Any] = {"echo": echo}
    if not pool:
        options["poolclass"] = NullPool
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, **options)
    engine = create_async_engine(url, **options)
    _configure_sqlite(engine.sync_engine, foreign_keys=foreign_keys)
    return engine


def _configure_sqlite(engine: sa.Engine, *, foreign_keys: bool) -> None:
    pragmas = (
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"foreign_keys={'ON' if foreign_keys else 'OFF'}",
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below) so the driver's implicit transactions don't interfere.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the lock up front: upgrading a read transaction to a write one fails
        # immediately (SQLITE_BUSY) when another writer got there first.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# -- rows ----------------------------------------------------------------------------------------


def _session_values(session: Session) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": session.id,
        "name": session.name,
        "owner": session.owner,
        "namespace": session.namespace,
        "starting_prompt": session.starting_prompt,
        "agent_ids": list(session.agent_ids),
        "metadata": session.metadata,
        "profile": session.profile,
        "state": SessionState(session.state).value,
        "waiting_timeout_seconds": session.waiting_timeout_seconds,
        "container_id": session.container_id,
        "persistent_volume_id": session.persistent_volume_id,
        "parent_session_id": session.parent_session_id,
        "termination_reason": session.termination_reason,
        "error": session.error,
    }
    for name in _TIMESTAMPS:
        value = getattr(session, name)
        values[name] = None if value is None else to_utc_ms(value)
    return values


def _row_to_session(row: sa.Row[Any]) -> Session:
    m = row._mapping
    return Session(
        id=m["id"],
        name=m["name"],
        owner=m["owner"],
        namespace=m["namespace"],
        starting_prompt=m["starting_prompt"],
        agent_ids=tuple(m["agent_ids"]),
        metadata=dict(m["metadata"]),
        profile=m["profile"],
        state=SessionState(m["state"]),
        waiting_timeout_seconds=m["waiting_timeout_seconds"],
        container_id=m["container_id"],
        persistent_volume_id=m["persistent_volume_id"],
        parent_session_id=m["parent_session_id"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        last_activity_at=m["last_activity_at"],
        terminated_at=m["terminated_at"],
        termination_reason=m["termination_reason"],
        error=m["error"],
        version=m["version"],
    )


def _event_values(event: SessionEvent) -> dict[str, Any]:
    return {
        "session_id": event.session_id,
        "seq": event.seq,
        "kind": event.kind,
        "message": event.message,
        "state": None if event.state is None else SessionState(event.state).value,
        "reason": event.reason,
        "timestamp": event.timestamp,
    }


def _row_to_event(row: sa.Row[Any]) -> SessionEvent:
    m = row._mapping
    return SessionEvent(
        session_id=m["session_id"],
        seq=m["seq"],
        kind=m["kind"],
        message=m["message"],
        state=None if m["state"] is None else SessionState(m["state"]),
        reason=m["reason"],
        timestamp=m["timestamp"],
    )


# -- queries -------------------------------------------------------------------------------------


def _list_conditions(
    owner: str | None,
    states: Collection[SessionState] | None,
    namespace: str | None,
    text: str | None,
    profile: str | None,
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if owner is not None:
        conditions.append(_S.owner == owner)
    if states is not None:
        conditions.append(_S.state.in_([SessionState(s).value for s in states]))
    if namespace is not None:
        conditions.append(_S.namespace == namespace)
    if profile is not None:
        conditions.append(_S.profile == profile)
    if text:
        conditions.append(
            sa.or_(_S.name.icontains(text, autoescape=True), _S.id.icontains(text, autoescape=True))
        )
    return conditions


def _activity_anchor() -> sa.ColumnElement[datetime]:
    """When a session was last known to be in use."""
    return sa.func.coalesce(_S.last_activity_at, _S.started_at, _S.created_at, type_=UTCDateTime)


def _later_of(column: sa.ColumnElement[datetime], value: datetime | None) -> Any:
    new = sa.literal(value, UTCDateTime)
    return sa.case((column.is_(None), new), (new > column, new), else_=column)


def _sql_epoch_ms(value: sa.ColumnElement[datetime], dialect: str) -> sa.ColumnElement[Any]:
    """Milliseconds since the Unix epoch of a timestamp column, computed by the database."""
    if dialect == "sqlite":
        # julianday() is a double; rounding the product recovers SQLite's exact millisecond.
        julian_ms = sa.func.round(sa.func.julianday(value) * 86_400_000.0)
        return julian_ms - sa.literal(_JULIAN_UNIX_EPOCH_MS, sa.BigInteger)
    return sa.func.round(sa.extract("epoch", value) * 1000)


def _epoch_ms(value: datetime) -> int:
    return (value - _UNIX_EPOCH) // timedelta(milliseconds=1)


def _encode_cursor(last: Session) -> str:
    raw = json.dumps([to_utc_ms(last.created_at).isoformat(), last.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, last_id = json.loads(raw)
        parsed = to_utc_ms(datetime.fromisoformat(created_at))
        if not isinstance(last_id, str):
            raise TypeError(last_id)
    except (binascii.Error, ValueError, TypeError) as e:
        raise errors.ValidationError("cursor", "is not a cursor returned by a list call") from e
    return parsed, last_id
