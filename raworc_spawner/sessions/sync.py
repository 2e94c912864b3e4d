"""Keep this server's view in step with the other replicas writing the same store.

Each replica caches sessions and streams events (SSE, pages, the hub) from its own in-memory
:class:`~raworc_spawner.sessions.events.EventBus`. When another replica changes a session, the
store's change feed (PostgreSQL ``LISTEN/NOTIFY``) says so; :class:`ReplicaSync` then

- drops the cached session, so that the next read comes from the store;
- publishes the event that change wrote (if any; carried in the notification, else fetched
  from the store) on the bus, so that a stream opened on this replica sees transitions made on
  another;
- for a deletion, publishes a ``deleted`` event and ends the session's streams, as the manager
  does for its own deletes;
- after the feed reconnects (notifications may have been lost meanwhile), drops every cached
  session.

Live-only events (progress, warnings) are not stored, so they reach only the streams of the
replica doing the work. On SQLite the feed delivers nothing (one process per store).
"""

from __future__ import annotations

import logging
from typing import Protocol

from raworc_spawner.sessions.events import EventBus
from raworc_spawner.sessions.model import EventKind, SessionEvent
from raworc_spawner.sessions.ports import Store
from raworc_spawner.store.changes import ChangeFeed, SessionChange

log = logging.getLogger(__name__)


class Forgetful(Protocol):
    """What :class:`ReplicaSync` needs of the session cache."""

    def forget(self, session_id: str) -> None:
        """Drop one session (the next read goes to the store)."""
        ...

    def clear(self) -> None:
        """Drop every session."""
        ...


class ReplicaSync:
    """Apply other replicas' changes to this server's cache and event bus (see module docs)."""

    def __init__(self, store: Store, cache: Forgetful, bus: EventBus) -> None:
        self._store = store
        self._cache = cache
        self._bus = bus
        self._feed: ChangeFeed | None = None

    @property
    def delivers(self) -> bool:
        """Whether other replicas' changes can arrive (a shared store, once started)."""
        return self._feed is not None and self._feed.delivers

    async def start(self) -> None:
        """Begin listening to the store's change feed (a no-op feed on SQLite)."""
        if self._feed is None:
            self._feed = self._store.change_feed(self.apply, on_resync=self.resync)
            await self._feed.start()

    async def wait_listening(self, timeout: float) -> None:
        """Return once other replicas' changes are heard (:class:`TimeoutError` after
        ``timeout`` seconds); changes committed before that may go unheard."""
        if self._feed is not None:
            await self._feed.wait_connected(timeout)

    async def close(self) -> None:
        """Stop listening."""
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.close()

    async def apply(self, change: SessionChange) -> None:
        """Forget the cached session; publish the event the change wrote, or its deletion."""
        self._cache.forget(change.session_id)
        if change.deleted:
            deleted = SessionEvent(change.session_id, 0, EventKind.DELETED, "session deleted")
            self._bus.publish(deleted)
            self._bus.close_session(change.session_id)
            return
        if change.event is not None:
            self._bus.publish(change.event)
            return
        if change.seq is None:
            return
        found = await self._store.events(change.session_id, after_seq=change.seq - 1, limit=1)
        if found and found[0].seq == change.seq:
            self._bus.publish(found[0])
        else:  # trimmed already, or the session was deleted since: nothing to replay
            log.debug("event %s#%d is no longer stored", change.session_id, change.seq)

    async def resync(self) -> None:
        """Changes may have been missed: drop every cached session."""
        self._cache.clear()
