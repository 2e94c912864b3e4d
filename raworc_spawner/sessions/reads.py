"""The read side of the session manager: sessions, events, status, logs and live streams."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any

from raworc_spawner.backends.base import Backend, ComputeState
from raworc_spawner.errors import SessionNotFound
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.events import ALL, EventBus
from raworc_spawner.sessions.model import EventKind, Principal, Session, SessionEvent, SessionState
from raworc_spawner.sessions.ports import EventList, Page, Store
from raworc_spawner.sessions.runtime import Runtimes
from raworc_spawner.sessions.spec import HUB_METADATA_KEY
from raworc_spawner.sessions.status import SessionStatus


class SessionReads:
    """Queries of :class:`~raworc_spawner.sessions.manager.SessionManager` (a part of it).

    Reading a session is never activity: a dashboard or a page polling a session must not keep
    it awake.
    """

    _store: Store
    _backend: Backend
    _bus: EventBus
    _cache: SessionCache
    _runtimes: Runtimes
    max_events_per_session: int
    handle_hub_sessions: bool
    runs_here: Callable[[Session], bool]

    async def get(self, principal: Principal, session_id: str) -> Session:
        """The session, if it exists and the principal may see it (else SessionNotFound).

        Reading a session is not activity (a dashboard polling it must not keep it awake).
        """
        session = await self._cache.load(session_id)
        if session is not None and not self.runs_here(session):
            # Not this server's to change: another process (``cleanup``) may have, unseen.
            session = await self._cache.reload(session_id)
        if session is None or not principal.may_see(session):
            raise SessionNotFound(session_id)
        return session

    async def list(
        self,
        principal: Principal,
        *,
        states: Collection[SessionState] | None = None,
        namespace: str | None = None,
        text: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of the sessions the principal may see, newest first."""
        owner = owner if principal.admin else principal.name
        items, next_cursor = await self._store.list(
            owner=owner, states=states, namespace=namespace, text=text, limit=limit, cursor=cursor
        )
        return Page(items, next_cursor)

    async def events(
        self, principal: Principal, session_id: str, *, after_seq: int = 0, limit: int = 200
    ) -> EventList:
        """The session's recorded events after ``after_seq``, oldest first."""
        await self.get(principal, session_id)
        return await self._store.events(session_id, after_seq=after_seq, limit=limit)

    async def status(self, principal: Principal, session_id: str) -> dict[str, Any]:
        """The session with its compute and workspace as the backend sees them now."""
        session = await self.get(principal, session_id)
        status = SessionStatus(
            session=session,
            backend=await self._backend.status(session_id),
            events=await self._store.events(session_id, limit=self.max_events_per_session),
            progress=self.recent_progress(session_id),
        )
        return status.to_dict()

    async def logs(
        self, principal: Principal, session_id: str, *, tail: int | None, follow: bool
    ) -> AsyncIterator[str]:
        """The session's compute output; checks access before the first line."""
        await self.get(principal, session_id)
        return self._backend.logs(session_id, tail=tail, follow=follow)

    def recent_progress(self, session_id: str) -> EventList:
        """The latest progress and warning events from the backend (not stored), oldest first."""
        runtime = self._runtimes.peek(session_id)
        return list(runtime.progress) if runtime else []

    def profiles(self) -> Mapping[str, Mapping[str, Any]]:
        """The backend's profiles, by name."""
        return self._backend.profiles()

    async def count_by_state(self) -> dict[SessionState, int]:
        """How many sessions are in each state."""
        return await self._store.count_by_state()

    @property
    def backend_name(self) -> str:
        """The name of the backend sessions run on (``local`` or ``kubernetes``)."""
        return self._backend.name

    def address(self, session_id: str) -> str | None:
        """Where the session's compute can be reached (an IP), from the backend's cache."""
        return self._backend.address(session_id)

    def compute_state(self, session_id: str) -> ComputeState:
        """The backend's cached view of a session's compute (no I/O)."""
        return self._backend.compute_state(session_id)

    def handles(self, session: Session) -> bool:
        """Whether this manager looks after the session (hub sessions may be the hub's)."""
        return self.handle_hub_sessions or HUB_METADATA_KEY not in session.metadata

    @contextlib.asynccontextmanager
    async def subscribe(
        self, principal: Principal, session_id: str | None = None
    ) -> AsyncIterator[AsyncIterator[SessionEvent]]:
        """Live events of one session (checked for access), or of all the principal may see."""
        if session_id is not None:
            await self.get(principal, session_id)
        async with self._bus.subscribe(session_id or ALL) as events:
            yield events if session_id or principal.admin else self._own(principal, events)

    def follow(self, session_id: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """Live events of a session id the caller chose itself (it may not exist yet).

        For in-process callers that authorized already, such as the hub's spawner subscribing
        before it creates the session with that id.
        """
        return self._bus.subscribe(session_id)

    async def _own(
        self, principal: Principal, events: AsyncIterator[SessionEvent]
    ) -> AsyncIterator[SessionEvent]:
        visible: set[str] = set()  # a deleted session's record is gone: remember who saw it
        async for event in events:
            if event.kind == EventKind.DELETED:
                if event.session_id in visible:
                    visible.discard(event.session_id)
                    yield event
                continue
            session = await self._cache.load(event.session_id)
            if session and principal.may_see(session):
                visible.add(event.session_id)
                yield event
