"""What the culler and the reconciler need from the session manager, beyond its commands."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from raworc_spawner.backends.base import Backend, Inventory
from raworc_spawner.sessions.activity import ActivityTracker
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.model import Session, SessionState, utcnow
from raworc_spawner.sessions.ports import EventList, SessionList, Store
from raworc_spawner.sessions.runtime import Runtimes


class SessionUpkeep:
    """Doors for the background loops (a part of the session manager): no access checks."""

    _store: Store
    _backend: Backend
    _cache: SessionCache
    _runtimes: Runtimes
    _activity: ActivityTracker
    max_events_per_session: int
    default_waiting_timeout_seconds: int

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
