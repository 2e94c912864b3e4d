"""Sessions kept in memory so that reads cost no store round trip (when this server is the only
writer of its store)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from raworc_spawner.sessions.model import Session
from raworc_spawner.sessions.ports import Store


class SessionCache:
    """Reads sessions through an in-memory copy when ``enabled``, else always from the store.

    Every write of the manager goes through :meth:`remember`, so the copy is the latest version
    this server wrote. Replicas on one PostgreSQL store drop what another replica changed as its
    change notification arrives (:class:`~raworc_spawner.sessions.sync.ReplicaSync`); a writer
    without notifications (a hub next to a raworc service) turns the cache off.
    """

    def __init__(self, store: Store, *, enabled: bool) -> None:
        self._store = store
        self.enabled = enabled
        self._sessions: dict[str, Session] = {}

    async def load(self, session_id: str) -> Session | None:
        """The session from memory (when enabled), else from the store."""
        cached = self._sessions.get(session_id) if self.enabled else None
        return cached if cached is not None else await self.reload(session_id)

    async def reload(self, session_id: str) -> Session | None:
        """The session from the store, refreshing the copy (None once it is gone)."""
        session = await self._store.get(session_id)
        if session is None:
            self._sessions.pop(session_id, None)
            return None
        return self.remember(session)

    def remember(self, session: Session) -> Session:
        """Keep ``session`` as the latest version (when enabled); returns it."""
        if self.enabled:
            self._sessions[session.id] = session
        return session

    def forget(self, session_id: str) -> None:
        """Drop a deleted session (or one another server changed: the next read is fresh)."""
        self._sessions.pop(session_id, None)

    def clear(self) -> None:
        """Drop every cached session (changes by other servers may have been missed)."""
        self._sessions.clear()

    def activity_written(self, batch: Mapping[str, datetime]) -> None:
        """Keep cached ``last_activity_at`` in step with a batch of activity just written."""
        for session_id, when in batch.items():
            cached = self._sessions.get(session_id)
            if cached is not None and (cached.last_activity_at or when) <= when:
                self._sessions[session_id] = cached.evolve(last_activity_at=when)
