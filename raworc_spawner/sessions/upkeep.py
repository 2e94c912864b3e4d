"""What the culler and the reconciler need from the session manager, beyond its commands."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from raworc_spawner.backends.base import Backend, ForeignObject, FoundSession, Inventory
from raworc_spawner.errors import Conflict
from raworc_spawner.sessions.activity import ActivityTracker
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.model import Session, SessionState, utcnow
from raworc_spawner.sessions.ports import EventList, SessionList, Store
from raworc_spawner.sessions.readiness import ReadinessWatcher
from raworc_spawner.sessions.runtime import Runtimes
from raworc_spawner.sessions.spec import hub_metadata
from raworc_spawner.sessions.writer import SessionWriter


class SessionUpkeep:
    """Doors for the background loops (a part of the session manager): no access checks."""

    _store: Store
    _backend: Backend
    _cache: SessionCache
    _runtimes: Runtimes
    _activity: ActivityTracker
    _writer: SessionWriter
    _readiness: ReadinessWatcher
    max_events_per_session: int
    default_waiting_timeout_seconds: int

    @property
    def replicated(self) -> bool:
        """Whether other servers may share this store (and act on its sessions) now."""
        return self._store.shared

    async def compute_usage(self, session_ids: Collection[str]) -> Mapping[str, float]:
        """Recent CPU use of the sessions' compute, in millicores (absent: no sample)."""
        if not session_ids:
            return {}
        return await self._backend.usage(session_ids)

    async def flush_activity(self) -> None:
        """Write pending activity now (the culler does, before it looks)."""
        await self._activity.flush()

    async def idle_candidates(self, *, limit: int) -> SessionList:
        """Ready sessions whose idle timeout has passed (from the store's index)."""
        return await self._store.idle_candidates(
            now=utcnow(), default_timeout=self.default_waiting_timeout_seconds, limit=limit
        )

    async def unused_since(
        self, older_than: datetime, *, state: SessionState, limit: int
    ) -> SessionList:
        """Sessions in ``state`` with no activity since ``older_than``, oldest first."""
        return await self._store.retention_candidates(
            older_than=older_than, state=state, limit=limit
        )

    async def recorded_events(self, session_id: str) -> EventList:
        """Every recorded event the session still keeps, oldest first (no access check)."""
        return await self._store.events(session_id, limit=self.max_events_per_session)

    async def fresh(self, session_id: str) -> Session | None:
        """The session as the store has it now (not the cache), or None."""
        return await self._cache.reload(session_id)

    async def inventory(self) -> Inventory:
        """What compute and workspaces the backend has now."""
        return await self._backend.inventory()

    async def stop_orphan_compute(self, session_id: str) -> bool:
        """Remove the compute of a session id that has no record; False if it has one.

        Only the compute: a workspace is never deleted by inference (``cleanup --delete`` does
        that, on an operator's word).
        """
        async with self._runtimes.lock(session_id):
            if await self._cache.reload(session_id) is not None:
                return False
            await self._backend.pause(session_id)
        self._runtimes.drop(session_id)
        return True

    async def describe(self, session_ids: Collection[str]) -> Sequence[FoundSession]:
        """The backend's description of these sessions, from their objects (for re-adoption)."""
        if not session_ids:
            return ()
        return await self._backend.describe(session_ids)

    async def foreign(self) -> Sequence[ForeignObject]:
        """Objects with the session labels that belong to another instance (never touched)."""
        return await self._backend.foreign()

    async def claim(self, session_ids: Collection[str]) -> Sequence[str]:
        """Make objects that name no owner instance this instance's, for these recorded ids."""
        if not session_ids:
            return ()
        return await self._backend.claim(session_ids)

    async def adopt(self, found: FoundSession) -> Session | None:
        """Rebuild the record of a session whose objects this instance has but its store lacks.

        The session comes back ``idle`` (workspace only) or ``init`` (compute exists: it is
        watched until ready), with an ``adopted`` event. None when a record exists meanwhile.
        """
        async with self._runtimes.lock(found.session_id):
            if await self._cache.reload(found.session_id) is not None:
                return None
            state = SessionState.INIT if found.has_compute else SessionState.IDLE
            session = Session(
                id=found.session_id,
                name=found.name,
                owner=found.owner,
                namespace=found.namespace,
                profile=found.profile,
                state=state,
                container_id=found.container_id,
                persistent_volume_id=found.persistent_volume_id,
                parent_session_id=found.parent_session_id,
                created_at=found.created_at or utcnow(),
                terminated_at=None if found.has_compute else utcnow(),
                termination_reason=None if found.has_compute else "Adopted",
                backend=self._backend.name,
                instance=self._backend.instance_name,
                waiting_timeout_seconds=found.waiting_timeout_seconds,
                metadata=hub_metadata(found.hub_server),
            )
            where = found.persistent_volume_id or "its compute"
            message = (
                f"record rebuilt from the {self._backend.name} backend's objects "
                f"(workspace {where}): the store had none"
            )
            try:
                session = await self._writer.adopt(session, message)
            except Conflict:
                return None  # another replica adopted it first
            if found.has_compute:
                self._readiness.watch(session.id)
            return session
