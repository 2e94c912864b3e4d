"""Where a session is handled: by this server only if it is its instance's and on its backend.

A part of the session manager (a mixin, like its read side): the checks that keep a server off
sessions of another owner instance or backend sharing its store, the reactions to compute that
went away when several replicas share the store, and carrying a rename to the session's objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from raworc_spawner.backends.base import Backend, BackendEvent
from raworc_spawner.errors import BackendError, BackendMismatch, Conflict
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.model import ACTIVE_STATES, Session
from raworc_spawner.sessions.ports import Store

#: Fields a change of which is carried to the session's objects (see ``Backend.describe``).
RECORDED_ON_OBJECTS = frozenset({"name", "waiting_timeout_seconds"})
#: Seconds the leader of several replicas waits before it treats compute that went away as
#: lost, so that a pause or delete by another replica has written its state first.
REPLICA_EVENT_GRACE_SECONDS = 5.0


class SessionPlacement:
    """Which sessions this server acts on, and how replicas share reactions (manager part)."""

    _store: Store
    _backend: Backend
    _cache: SessionCache
    log: logging.Logger
    compute_lost: Callable[[str, str], Awaitable[Session | None]]
    compute_exited: Callable[[BackendEvent], Awaitable[Session | None]]
    record_event_of: Callable[[BackendEvent], Awaitable[None]]

    #: Whether this process runs the background loops now (the composition root sets it).
    leader: Callable[[], bool] = staticmethod(lambda: True)

    async def _lost_event(self, event: BackendEvent) -> Session | None:
        """Compute vanished from outside: record it and apply the policy (if ours to react)."""
        if not await self._replica_may_act(event.session_id):
            return None
        await self.record_event_of(event)
        return await self.compute_lost(event.session_id, f"compute lost: {event.message}")

    async def _exited_event(self, event: BackendEvent) -> Session | None:
        if not await self._replica_may_act(event.session_id):
            return None
        return await self.compute_exited(event)

    async def _replica_may_act(self, session_id: str) -> bool:
        """Whether this server reacts to compute that went away by itself.

        Alone on its store, at once. Replicas all see every pod go, including the one another
        replica is pausing, deleting or resuming, which writes the session's state only once
        the pod is gone: so only the leader reacts, after ``REPLICA_EVENT_GRACE_SECONDS``, and
        only if nobody changed the session meanwhile (whoever did decides its state; the
        reconciler catches compute still missing later).
        """
        if not self._store.shared:
            return True
        if not self.leader():
            return False
        before = await self._cache.reload(session_id)
        await asyncio.sleep(REPLICA_EVENT_GRACE_SECONDS)
        after = await self._cache.reload(session_id)
        return before is not None and after is not None and after.version == before.version

    def runs_here(self, session: Session) -> bool:
        """Whether the session is this server's: its backend and owner instance (records older
        than those fields are)."""
        return session.backend in (None, self._backend.name) and self.owns(session)

    def owns(self, session: Session) -> bool:
        """Whether the session belongs to this server's instance (or to no recorded one)."""
        return session.instance in (None, self._backend.instance_name)

    async def _record_on_objects(self, session: Session) -> None:
        """Carry changed fields to the session's objects, so that re-adoption finds them there."""
        try:
            await self._backend.update_recorded(
                session.id,
                name=session.name,
                waiting_timeout_seconds=session.waiting_timeout_seconds,
            )
        except BackendError as e:  # the record has them; the next start's objects will too
            self.log.warning("could not record the changes on %s's objects: %s", session.id, e)

    def _require_here(self, session: Session, action: str) -> None:
        if not self.owns(session):
            raise Conflict(
                f"cannot {action} session {session.id}: it belongs to instance "
                f"{session.instance!r} and this server is {self._backend.instance_name!r} "
                "(RaworcApp.instance_name / RAWORC_INSTANCE_NAME); use a server of that instance"
            )
        if not self.runs_here(session):
            raise BackendMismatch(
                session.id,
                recorded=str(session.backend),
                running=self._backend.name,
                action=action,
                running_there=session.state in ACTIVE_STATES,
            )
