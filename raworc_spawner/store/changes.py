"""Change notification between replicas sharing one PostgreSQL store (``LISTEN``/``NOTIFY``).

Every write transaction of :class:`~raworc_spawner.store.SessionStore` that changes a session
or adds an event also runs ``pg_notify('raworc_sessions', payload)``. PostgreSQL delivers a
notification only when its transaction commits, and in commit order, so a listener never hears
of a change that was rolled back. The payload is a small JSON object::

    {"origin": "<the writing store's random id>", "session": "<id>", "seq": 7, "deleted": false}

``seq`` is the sequence number of the event written with the change (``null`` when none was).
The event itself rides along as ``"event"`` when the payload stays under PostgreSQL's 8000-byte
limit, so that listeners need no query, and still see it when a delete follows at once; a
listener fetches an event that did not fit.
A :class:`ChangeListener` keeps a dedicated connection listening, reconnects with back-off when
it breaks, and hands each :class:`SessionChange` made by *another* store to a callback. While it
was disconnected, notifications were lost: ``on_resync`` is called after every reconnection so
that the caller can drop what it cached.

On SQLite there is one process per store file and nothing to listen to: :class:`NoChanges`.

>>> payload = change_payload("o1", "s1", seq=3, deleted=False)
>>> payload
'{"origin":"o1","session":"s1","seq":3,"deleted":false}'
>>> parse_change(payload)
('o1', SessionChange(session_id='s1', seq=3, deleted=False, event=None))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from raworc_spawner.loops import Backoff
from raworc_spawner.sessions.model import EventKind, SessionEvent, SessionState

#: The PostgreSQL notification channel of session changes.
CHANNEL = "raworc_sessions"
#: PostgreSQL refuses payloads of 8000 bytes or more; ours are about 100.
MAX_PAYLOAD_BYTES = 7999

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionChange:
    """Another replica changed a session: its id, the seq of the event it wrote (if any),
    whether it deleted it, and the event itself when it fitted in the notification."""

    session_id: str
    seq: int | None
    deleted: bool
    event: SessionEvent | None = None


OnChange = Callable[[SessionChange], Awaitable[None]]
OnResync = Callable[[], Awaitable[None]]


def change_payload(
    origin: str,
    session_id: str,
    *,
    seq: int | None,
    deleted: bool,
    event: SessionEvent | None = None,
) -> str:
    """The JSON text notified for one change: with ``event`` only if it fits in 8000 bytes."""
    data: dict[str, Any] = {"origin": origin, "session": session_id, "seq": seq}
    data["deleted"] = deleted
    bare = json.dumps(data, separators=(",", ":"))
    if len(bare.encode()) > MAX_PAYLOAD_BYTES:  # ids are UUIDs; only a bug gets here
        raise ValueError(f"change payload of {len(bare)} characters is too long to notify")
    if event is None:
        return bare
    full = json.dumps(data | {"event": event.to_dict()}, separators=(",", ":"))
    return full if len(full.encode()) <= MAX_PAYLOAD_BYTES else bare


def _parse_event(session_id: str, seq: int | None, fields: Any) -> SessionEvent | None:
    """The event carried in a payload; None when absent or unreadable (then it is fetched)."""
    if not isinstance(fields, dict) or seq is None:
        return None
    try:
        state = fields.get("state")
        return SessionEvent(
            session_id,
            seq,
            EventKind(fields["kind"]),
            str(fields["message"]),
            state=None if state is None else SessionState(state),
            reason=fields.get("reason"),
            timestamp=datetime.fromisoformat(fields["timestamp"]),
        )
    except (KeyError, ValueError, TypeError):
        return None


def parse_change(payload: str) -> tuple[str, SessionChange] | None:
    """``(origin, change)`` from a payload; None when it is not one of ours (logged)."""
    try:
        data = json.loads(payload)
        origin, session_id = data["origin"], data["session"]
        seq, deleted = data.get("seq"), bool(data.get("deleted"))
        if not isinstance(origin, str) or not isinstance(session_id, str):
            raise TypeError("origin and session must be strings")
        if seq is not None and not isinstance(seq, int):
            raise TypeError("seq must be an integer or null")
    except (ValueError, KeyError, TypeError) as e:
        log.warning("ignoring a malformed %s notification %r: %s", CHANNEL, payload[:200], e)
        return None
    return origin, SessionChange(
        session_id, seq, deleted, _parse_event(session_id, seq, data.get("event"))
    )


class ChangeFeed:
    """What a store's :meth:`~raworc_spawner.store.SessionStore.change_feed` returns."""

    #: Whether changes by other processes are delivered (False: there are none to deliver).
    delivers = False

    async def start(self) -> None:
        """Begin delivering (returns at once; connecting happens in the background)."""

    async def wait_connected(self, timeout: float) -> None:
        """Return once changes are being listened to (at once when there are none to hear)."""

    async def close(self) -> None:
        """Stop delivering; returns once the connection is closed."""


class NoChanges(ChangeFeed):
    """SQLite: one process per store file, so no other writer to hear from."""


class ChangeListener(ChangeFeed):
    """Listen on :data:`CHANNEL` over a connection of its own; deliver others' changes in order.

    ``dsn`` is an asyncpg DSN; ``origin`` the listening store's own id (its changes are skipped).
    Callbacks run one at a time in notification order; one that raises is logged and the next
    change is still delivered. The connection is checked every ``keepalive_seconds`` (a query
    bounded by ``timeout_seconds``), so a silently dead connection is noticed and replaced.
    """

    delivers = True

    def __init__(
        self,
        dsn: str,
        *,
        origin: str,
        on_change: OnChange,
        on_resync: OnResync,
        keepalive_seconds: float = 10.0,
        timeout_seconds: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._dsn = dsn
        self.origin = origin
        self._on_change = on_change
        self._on_resync = on_resync
        self._keepalive = keepalive_seconds
        self._timeout = timeout_seconds
        self._backoff = backoff or Backoff(initial=0.2, maximum=10.0)
        self._queue: asyncio.Queue[SessionChange | None] = asyncio.Queue()
        self._lost = asyncio.Event()
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        """Whether the listening connection is up now."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds, else :class:`TimeoutError`) until listening."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def start(self) -> None:
        """Connect and listen in the background (reconnecting until closed)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="change-listener"),
                asyncio.create_task(self._deliver(), name="change-delivery"),
            ]

    async def close(self) -> None:
        """Stop listening and delivering."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._connected.clear()

    # -- connection ----------------------------------------------------------------------------

    async def _listen(self) -> None:
        failures = 0
        connected_before = False
        while True:
            try:
                conn = await asyncio.wait_for(asyncpg.connect(self._dsn), self._timeout)
            except (OSError, asyncpg.PostgresError, TimeoutError) as e:
                failures += 1
                delay = self._backoff.next()
                if failures == 1:
                    log.warning("change listener cannot connect (%s); retrying", e)
                await asyncio.sleep(delay)
                continue
            resync = bool(failures) or connected_before
            failures, connected_before = 0, True
            self._backoff.reset()
            await self._serve(conn, resync=resync)
            log.warning("change listener lost its connection; reconnecting")

    async def _serve(self, conn: asyncpg.Connection, *, resync: bool) -> None:
        """Listen on ``conn`` until it breaks (or the task is cancelled).

        With ``resync``, ``on_resync`` runs once listening: whatever changed while nobody
        listened is then covered, and nothing after it can be missed.
        """
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        try:
            await conn.add_listener(CHANNEL, self._notified)
            if resync:
                log.info("change listener connected again; changes meanwhile may be missed")
                await self._resync()
            self._connected.set()
            while not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), self._keepalive)
                if self._lost.is_set() or not await self._answers(conn):
                    return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("change listener failed: %s", e)
        finally:
            self._connected.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)
            if not conn.is_closed():
                conn.terminate()

    async def _answers(self, conn: asyncpg.Connection) -> bool:
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), self._timeout)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
            log.warning("change listener's connection does not answer: %s", e)
            return False
        return True

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_change(payload)
        if parsed is not None and parsed[0] != self.origin:
            self._queue.put_nowait(parsed[1])

    async def _resync(self) -> None:
        try:
            await self._on_resync()
        except Exception:
            log.exception("change listener: on_resync failed")

    # -- delivery ------------------------------------------------------------------------------

    async def _deliver(self) -> None:
        while True:
            change = await self._queue.get()
            if change is None:
                return
            try:
                await self._on_change(change)
            except Exception:
                log.exception("change listener: handling %s failed", change)
