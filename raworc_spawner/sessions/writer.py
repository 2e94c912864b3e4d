"""Every change of a session goes through here: one store write with its event, then the cache,
the metrics and the live event bus."""

from __future__ import annotations

import logging
from typing import Any

from raworc_spawner.errors import Conflict, SessionNotFound
from raworc_spawner.sessions import metrics
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.events import EventBus
from raworc_spawner.sessions.model import (
    EventKind,
    Session,
    SessionEvent,
    SessionState,
    check_transition,
)
from raworc_spawner.sessions.ports import Store

S = SessionState
log = logging.getLogger("raworc_spawner.sessions")


class SessionWriter:
    """Writes sessions and their events, and publishes what it wrote.

    A change and its event are one store transaction. On a version conflict (another process
    wrote the session meanwhile) the change is applied once more to the fresh record, if the
    state machine still allows it.
    """

    def __init__(
        self, store: Store, cache: SessionCache, bus: EventBus, *, keep_events: int
    ) -> None:
        self._store = store
        self._cache = cache
        self._bus = bus
        self.keep_events = keep_events

    async def insert(
        self, session: Session, message: str, *, owner_limit: int | None = None
    ) -> Session:
        """Record a new session with its ``created`` event (within ``owner_limit``, if set)."""
        event = SessionEvent(session.id, 0, EventKind.CREATED, message, state=S.INIT)
        session, stored = await self._store.insert_and_record(
            session, event, keep=self.keep_events, owner_limit=owner_limit
        )
        self._cache.remember(session)
        self._bus.publish(stored)
        return session

    async def adopt(self, session: Session, message: str) -> Session:
        """Record a session rebuilt from the backend's objects, in its state, with ``adopted``."""
        event = SessionEvent(
            session.id, 0, EventKind.ADOPTED, message, state=session.state, reason="Adopted"
        )
        session, stored = await self._store.insert_and_record(session, event, keep=self.keep_events)
        self._cache.remember(session)
        self._bus.publish(stored)
        return session

    async def transition(
        self,
        session: Session,
        target: SessionState,
        kind: EventKind,
        message: str,
        *,
        reason: str | None = None,
        **fields: Any,
    ) -> Session:
        """Move ``session`` to ``target`` with ``fields`` changed, recording a ``kind`` event."""
        check_transition(session.state, target)
        previous = session.state
        if target == S.IDLE:
            fields.setdefault("termination_reason", reason)
        event = SessionEvent(session.id, 0, kind, message, state=target, reason=reason)
        try:
            stored_session, stored = await self._store.update_and_record(
                session.evolve(state=target, **fields), event, keep=self.keep_events
            )
        except Conflict:
            fresh = await self._fresh(session.id)
            check_transition(fresh.state, target)
            stored_session, stored = await self._store.update_and_record(
                fresh.evolve(state=target, **fields), event, keep=self.keep_events
            )
        self._cache.remember(stored_session)
        metrics.TRANSITIONS.labels(previous.value, target.value).inc()
        self._bus.publish(stored)
        return stored_session

    async def fail(self, session: Session, reason: str, message: str) -> Session:
        """Move the session to ``error`` with ``reason`` (or update the error if it is there)."""
        metrics.SESSION_FAILURES.labels(reason).inc()
        log.warning("session %s failed: %s: %s", session.id, reason, message)
        fresh = await self._cache.load(session.id) or session
        error = f"{reason}: {message}"
        if fresh.state == S.ERROR:
            return await self.save(fresh, error=error)
        return await self.transition(
            fresh,
            S.ERROR,
            EventKind.FAILED,
            message,
            reason=reason,
            error=error,
            termination_reason=reason,
        )

    async def save(self, session: Session, **fields: Any) -> Session:
        """Write ``fields`` without an event; on a conflict re-read and re-apply once."""
        try:
            return self._cache.remember(await self._store.update(session.evolve(**fields)))
        except Conflict:
            fresh = await self._fresh(session.id)
            return self._cache.remember(await self._store.update(fresh.evolve(**fields)))

    async def record(
        self, session_id: str, kind: EventKind, message: str, *, reason: str | None = None
    ) -> SessionEvent:
        """Record (and publish) an event that is not a state change."""
        event = SessionEvent(session_id, 0, kind, message, reason=reason)
        stored = await self._store.add_event(event, keep=self.keep_events)
        self._bus.publish(stored)
        return stored

    def publish(self, event: SessionEvent) -> None:
        """Publish an event that is not stored (progress, warnings, ``deleted``)."""
        self._bus.publish(event)

    async def _fresh(self, session_id: str) -> Session:
        fresh = await self._cache.reload(session_id)
        if fresh is None:
            raise SessionNotFound(session_id) from None
        return fresh
