"""``SessionStore``: the store's public face (see the package docstring)."""

from __future__ import annotations

import asyncio
import builtins
import os
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from raworc_spawner import errors
from raworc_spawner.leadership import Elector, SingleElector
from raworc_spawner.sessions.model import Session, SessionEvent, SessionState
from raworc_spawner.store.changes import (
    CHANNEL,
    ChangeFeed,
    ChangeListener,
    NoChanges,
    OnChange,
    OnResync,
    change_payload,
)
from raworc_spawner.store.engine import (
    WRITE_OPTION,
    make_engine,
    migrate_to_head,
    parse_url,
)
from raworc_spawner.store.leader import AdvisoryLockElector, asyncpg_dsn
from raworc_spawner.store.queries import (
    activity_anchor,
    check_limit,
    decode_cursor,
    encode_cursor,
    epoch_ms,
    later_of,
    list_conditions,
    sql_epoch_ms,
)
from raworc_spawner.store.schema import (
    UTCDateTime,
    event_values,
    events_table,
    row_to_event,
    row_to_session,
    session_values,
    sessions_table,
    to_utc_ms,
)

#: The database file :meth:`SessionStore.sqlite_in` uses inside the data directory.
SQLITE_FILENAME = "raworc.sqlite"

_S = sessions_table.c
_E = events_table.c


class SessionStore:
    """Persists sessions and their events."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        """Check ``url`` now; connect later, in :meth:`open`.

        ``url`` is a SQLAlchemy URL whose scheme is one of :data:`ALLOWED_DRIVERS`, e.g.
        ``sqlite+aiosqlite:///data/raworc.sqlite`` or
        ``postgresql+asyncpg://user:password@host/db``. ``echo`` logs every SQL statement.
        """
        self._url = parse_url(url)
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()
        #: This store object's random id: the origin of the changes it notifies (PostgreSQL).
        self.origin = uuid.uuid4().hex[:16]

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

    @property
    def shared(self) -> bool:
        """Whether several servers may use this store at once (PostgreSQL; not SQLite)."""
        return not self._is_sqlite

    def change_feed(
        self, on_change: OnChange, *, on_resync: OnResync, keepalive_seconds: float = 10.0
    ) -> ChangeFeed:
        """A feed of the changes other servers make to this store (see ``store/changes.py``).

        On PostgreSQL a :class:`~raworc_spawner.store.changes.ChangeListener` (not started);
        on SQLite a feed that never delivers anything (one process per file).
        """
        if self._is_sqlite:
            return NoChanges()
        return ChangeListener(
            asyncpg_dsn(self._url),
            origin=self.origin,
            on_change=on_change,
            on_resync=on_resync,
            keepalive_seconds=keepalive_seconds,
        )

    def elector(
        self, *, name: str, identity: str, lease_seconds: float, attempt_timeout: float = 1.5
    ) -> Elector:
        """A leader-election lock in this store: a PostgreSQL advisory lock keyed by ``name``,
        or, on SQLite (one process), an elector that always wins."""
        if self._is_sqlite:
            return SingleElector(identity)
        return AdvisoryLockElector(
            self._url,
            name=name,
            identity=identity,
            lease_seconds=lease_seconds,
            attempt_timeout=attempt_timeout,
        )

    async def open(self) -> None:
        """Connect and migrate the schema to the newest revision; a no-op if already open.

        Safe when several processes open the same database at once: migrations run under a
        database lock and a second run finds nothing to do.
        """
        if self._engine is not None:
            return
        if self._is_sqlite:
            Path(self._url.database or "").parent.mkdir(parents=True, exist_ok=True)
        await migrate_to_head(self._url, echo=self._echo)
        self._engine = make_engine(self._url, echo=self._echo)
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})
        self._write_lock = asyncio.Lock()

    async def close(self) -> None:
        """Close every connection; :meth:`open` may be called again afterwards."""
        engine, self._engine, self._writer = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    async def insert(self, session: Session) -> Session:
        """Store a new session and return it as stored, with ``version=1``.

        Raises :class:`~raworc_spawner.errors.Conflict` if a session with that id exists.
        """
        try:
            async with self._write() as conn:
                stored = await self._insert_in(conn, session)
                await self._notify(conn, session.id, seq=None)
                return stored
        except IntegrityError as e:
            raise errors.Conflict(f"a session with id {session.id} already exists") from e

    async def insert_and_record(
        self,
        session: Session,
        event: SessionEvent,
        *,
        keep: int = 200,
        owner_limit: int | None = None,
    ) -> tuple[Session, SessionEvent]:
        """:meth:`insert` and :meth:`add_event` in one transaction (one write, not two).

        With ``owner_limit``, the insert happens only if the owner has fewer sessions than that,
        checked in the same transaction (serialized per owner on PostgreSQL, by the single
        writer on SQLite), so concurrent creates cannot overshoot the quota; otherwise
        :class:`~raworc_spawner.errors.QuotaExceeded`.
        """
        try:
            async with self._write() as conn:
                if owner_limit is not None:
                    await self._check_owner_limit(conn, session.owner, owner_limit)
                stored = await self._insert_in(conn, session)
                recorded = await self._add_event_in(conn, event, keep)
                await self._notify(conn, session.id, seq=recorded.seq, event=recorded)
                return stored, recorded
        except IntegrityError as e:
            raise errors.Conflict(f"a session with id {session.id} already exists") from e

    async def _check_owner_limit(self, conn: AsyncConnection, owner: str, limit: int) -> None:
        if not self._is_sqlite:  # one quota check at a time per owner, across processes
            key = sa.func.hashtext(sa.literal(f"raworc-quota:{owner}"))
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        count = sa.select(sa.func.count()).select_from(sessions_table).where(_S.owner == owner)
        if (await conn.execute(count)).scalar_one() >= limit:
            raise errors.QuotaExceeded(f"user {owner!r} already has {limit} sessions (the limit)")

    async def _insert_in(self, conn: AsyncConnection, session: Session) -> Session:
        values = session_values(session) | {"version": 1}
        stmt = sa.insert(sessions_table).values(values).returning(*sessions_table.c)
        return row_to_session((await conn.execute(stmt)).one())

    async def get(self, session_id: str) -> Session | None:
        """The session with that id, or ``None``."""
        async with self._read() as conn:
            row = (await conn.execute(sa.select(sessions_table).where(_S.id == session_id))).first()
        return None if row is None else row_to_session(row)

    async def update(self, session: Session) -> Session:
        """Write every field of ``session`` if nobody changed the row since it was read.

        Succeeds only when the stored version equals ``session.version``; returns the stored
        session with the version increased by one. ``last_activity_at`` never moves backwards
        (:meth:`touch` may have advanced it meanwhile), so the returned value may be newer.
        Raises :class:`~raworc_spawner.errors.Conflict` on a stale version and
        :class:`~raworc_spawner.errors.SessionNotFound` if the row is gone.
        """
        async with self._write() as conn:
            stored = await self._update_in(conn, session)
            await self._notify(conn, session.id, seq=None)
            return stored

    async def update_and_record(
        self, session: Session, event: SessionEvent, *, keep: int = 200
    ) -> tuple[Session, SessionEvent]:
        """:meth:`update` and :meth:`add_event` in one transaction (one write, not two)."""
        async with self._write() as conn:
            stored = await self._update_in(conn, session)
            recorded = await self._add_event_in(conn, event, keep)
            await self._notify(conn, session.id, seq=recorded.seq, event=recorded)
            return stored, recorded

    async def _update_in(self, conn: AsyncConnection, session: Session) -> Session:
        values = session_values(session)
        del values["id"]
        values["version"] = session.version + 1
        values["last_activity_at"] = later_of(_S.last_activity_at, values["last_activity_at"])
        stmt = (
            sa.update(sessions_table)
            .where(_S.id == session.id, _S.version == session.version)
            .values(values)
            .returning(*sessions_table.c)
        )
        row = (await conn.execute(stmt)).first()
        if row is None:
            exists = await conn.scalar(sa.select(_S.version).where(_S.id == session.id))
            if exists is None:
                raise errors.SessionNotFound(session.id)
            raise errors.Conflict(
                f"session {session.id} changed since it was read "
                f"(version {session.version}, stored {exists})"
            )
        return row_to_session(row)

    async def delete(self, session_id: str) -> bool:
        """Remove the session and its events; ``True`` if it existed."""
        async with self._write() as conn:
            result = await conn.execute(sa.delete(sessions_table).where(_S.id == session_id))
            if result.rowcount:
                await self._notify(conn, session_id, seq=None, deleted=True)
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
        :class:`~raworc_spawner.errors.ValidationError`. So is a ``limit`` outside 1 to 10 000.
        """
        check_limit(limit)
        conditions = list_conditions(owner, states, namespace, text, profile)
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
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
            page = [row_to_session(row) for row in await conn.execute(stmt)]
        if len(page) <= limit:
            return page, None
        page = page[:limit]
        return page, encode_cursor(page[-1])

    async def count_by_state(self) -> dict[SessionState, int]:
        """How many sessions are in each state (every state present, zero if none)."""
        stmt = sa.select(_S.state, sa.func.count()).group_by(_S.state)
        counts = dict.fromkeys(SessionState, 0)
        async with self._read() as conn:
            for state, count in await conn.execute(stmt):
                counts[SessionState(state)] = count
        return counts

    async def assign_backend(self, backend: str, instance: str) -> int:
        """Record ``backend`` and ``instance`` on sessions stored before records named them.

        Returns how many sessions were assigned. Their version is not changed (the fields were
        unknown, not changed by anyone).
        """
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(sessions_table)
                .where(_S.backend.is_(None))
                .values(backend=backend, instance=sa.func.coalesce(_S.instance, instance))
            )
            return int(result.rowcount or 0)

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
        async with self._write() as conn:
            recorded = await self._add_event_in(conn, event, keep)
            await self._notify(conn, event.session_id, seq=recorded.seq, event=recorded)
            return recorded

    async def _add_event_in(
        self, conn: AsyncConnection, event: SessionEvent, keep: int
    ) -> SessionEvent:
        if keep < 1:
            raise ValueError(f"keep={keep}: must keep at least one event")
        lock = sa.select(_S.id).where(_S.id == event.session_id).with_for_update(key_share=True)
        last_seq = sa.select(sa.func.coalesce(sa.func.max(_E.seq), 0)).where(
            _E.session_id == event.session_id
        )
        if await conn.scalar(lock) is None:
            raise errors.SessionNotFound(event.session_id)
        seq = int(await conn.scalar(last_seq) or 0) + 1
        stored = replace(event, seq=seq, timestamp=to_utc_ms(event.timestamp))
        await conn.execute(sa.insert(events_table).values(event_values(stored)))
        if seq > keep:  # nothing to trim before the history is full
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
        check_limit(limit)
        stmt = (
            sa.select(events_table)
            .where(_E.session_id == session_id, _E.seq > after_seq)
            .order_by(_E.seq)
            .limit(limit)
        )
        async with self._read() as conn:
            return [row_to_event(row) for row in await conn.execute(stmt)]

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
        check_limit(limit)
        if default_timeout < 0:
            raise ValueError(f"default_timeout={default_timeout}: must be 0 (never) or more")
        timeout = sa.func.coalesce(_S.waiting_timeout_seconds, default_timeout)
        now_ms = sa.literal(epoch_ms(to_utc_ms(now)), sa.BigInteger)
        async with self._read() as conn:
            deadline_ms = sql_epoch_ms(activity_anchor(), conn.dialect.name) + (
                sa.cast(timeout, sa.BigInteger) * 1000
            )
            stmt = (
                sa.select(sessions_table)
                .where(_S.state == SessionState.READY.value, timeout > 0, deadline_ms <= now_ms)
                .order_by(activity_anchor(), _S.id)
                .limit(limit)
            )
            return [row_to_session(row) for row in await conn.execute(stmt)]

    async def retention_candidates(
        self,
        *,
        older_than: datetime,
        state: SessionState = SessionState.IDLE,
        limit: int = 100,
    ) -> builtins.list[Session]:
        """Sessions in ``state`` (idle by default) last active before ``older_than``, oldest first.

        Uses the (state, last activity) index: it serves workspace retention (idle) and the
        culler's timeout for agents stuck in ``busy``.
        """
        check_limit(limit)
        anchor = activity_anchor()
        stmt = (
            sa.select(sessions_table)
            .where(_S.state == state.value, anchor < to_utc_ms(older_than))
            .order_by(anchor, _S.id)
            .limit(limit)
        )
        async with self._read() as conn:
            return [row_to_session(row) for row in await conn.execute(stmt)]

    async def _notify(
        self,
        conn: AsyncConnection,
        session_id: str,
        *,
        seq: int | None,
        deleted: bool = False,
        event: SessionEvent | None = None,
    ) -> None:
        """Tell the other servers on this PostgreSQL store, when (and if) the write commits.

        Activity (:meth:`touch`) is not notified: it changes no state, and every write keeps
        the later ``last_activity_at`` anyway.
        """
        if self._is_sqlite:
            return
        payload = change_payload(self.origin, session_id, seq=seq, deleted=deleted, event=event)
        await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))

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
        if not self._is_sqlite:
            async with self._writer.begin() as conn:
                yield conn
            return
        # SQLite has one writer at a time. Queue this process's writers here, in order, rather
        # than letting them poll the file lock (busy_timeout sleeps in growing steps, which
        # under a burst of writes turns milliseconds into seconds).
        async with self._write_lock, self._writer.begin() as conn:
            yield conn
