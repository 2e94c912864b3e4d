"""Routing what the backend observes (progress, warnings, exits, lost compute) to sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from raworc_spawner.backends.base import BackendEvent, BackendEventKind
from raworc_spawner.loops import BackgroundTasks
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.model import (
    TRANSIENT_KINDS,
    EventKind,
    Session,
    SessionEvent,
    SessionState,
)
from raworc_spawner.sessions.runtime import Runtimes
from raworc_spawner.sessions.writer import SessionWriter

S = SessionState


class BackendEventRouter:
    """Turns backend events into session events and transitions.

    Progress and warnings are streamed live and kept in the session's small ring, never written
    to the store (a spawn storm would otherwise queue a dozen writes per session ahead of
    ``ready``). Lost compute goes to ``on_lost`` (which records it and applies the manager's
    policy, when this server is the one to react), compute that exited
    while the session was ``ready`` or ``busy`` to ``on_exited``. Events of sessions this
    server does not look after (``handles``) are ignored.
    """

    def __init__(
        self,
        *,
        cache: SessionCache,
        writer: SessionWriter,
        runtimes: Runtimes,
        tasks: BackgroundTasks,
        handles: Callable[[Session], bool],
        on_lost: Callable[[BackendEvent], Awaitable[object]],
        on_exited: Callable[[BackendEvent], Awaitable[object]],
    ) -> None:
        self._cache = cache
        self._writer = writer
        self._runtimes = runtimes
        self._tasks = tasks
        self._handles = handles
        self._on_lost = on_lost
        self._on_exited = on_exited
        self.closing = False

    def __call__(self, event: BackendEvent) -> None:
        """The backend's event sink (called synchronously from its watch loop)."""
        if self.closing:
            return
        if event.kind in TRANSIENT_KINDS:
            transient = SessionEvent(
                event.session_id, 0, EventKind(event.kind.value), event.message, reason=event.reason
            )
            self._runtimes.of(event.session_id).progress.append(transient)
            self._writer.publish(transient)
            return
        self._tasks.spawn(self._handle(event), name=f"backend-event-{event.session_id}")

    async def _handle(self, event: BackendEvent) -> None:
        session = await self._cache.load(event.session_id)
        if session is None or not self._handles(session):
            return
        if event.kind == BackendEventKind.LOST:
            await self._on_lost(event)
            return
        if event.kind == BackendEventKind.EXITED and session.state in (S.READY, S.BUSY):
            await self._on_exited(event)
            return
        await self._writer.record(session.id, EventKind.WARNING, event.message, reason=event.reason)
