"""The idle culler: scale idle sessions to zero, and retire long-unused workspaces.

One periodic task. Each pass flushes pending activity, then asks the store (through its index on
state and last activity) for the sessions whose time is up — it never scans every session:

- ``ready`` sessions idle for their ``waiting_timeout_seconds`` (or the default) are paused with
  a ``culled`` event: compute gone, workspace kept, state ``idle``;
- optionally, ``busy`` sessions with no activity for ``busy_timeout_seconds`` (a stuck agent);
- optionally, ``idle`` sessions unused for ``retention_days`` are deleted, after a
  ``retention-warning`` event ``retention_warning_days`` earlier. Never ``ready`` or ``busy`` ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from raworc_spawner.errors import RaworcError
from raworc_spawner.loops import PeriodicTask
from raworc_spawner.sessions import metrics
from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.sessions.model import EventKind, Session, SessionState, utcnow

BATCH = 100


class Culler(LoggingConfigurable):
    """Pauses idle sessions and retires old workspaces, periodically."""

    interval_seconds = Float(
        30.0,
        help="""Seconds between culler passes. 0 turns the culler off (sessions are never
        paused for idleness, and retention does not run).""",
    ).tag(config=True)

    active_cpu_millicores = Float(
        50.0,
        help="""CPU use, in millicores averaged over the backend's last sample window, above
        which a session's own compute counts as activity: a session busy computing with no
        requests (a training job) is not culled. On Kubernetes the window is the metrics API's
        (``metrics.k8s.io``); locally, the process tree's CPU time since the previous pass.
        0 turns this off (only requests, heartbeats and agent state changes count).""",
    ).tag(config=True)

    busy_timeout_seconds = Int(
        0,
        help="""Pause ``busy`` sessions with no activity for this many seconds (an agent that
        stopped sending heartbeats). 0 means busy sessions are never culled.""",
    ).tag(config=True)

    retention_days = Float(
        0.0,
        help="""Delete idle sessions (pod, PVC/workspace and record) unused for this many days.
        0 (the default) keeps workspaces forever. Never touches ready or busy sessions.""",
    ).tag(config=True)

    retention_warning_days = Float(
        1.0,
        help="""Days before a retention delete at which a ``retention-warning`` event is
        recorded on the session.""",
    ).tag(config=True)

    def __init__(self, *, manager: SessionManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manager = manager
        self._loop: PeriodicTask | None = None

    async def start(self) -> None:
        """Begin the periodic passes (if enabled)."""
        if self.interval_seconds > 0:
            self._loop = PeriodicTask(
                "culler", self._pass, interval=self.interval_seconds, log=self.log
            )
            self._loop.start()

    async def close(self) -> None:
        """Stop the periodic passes."""
        if self._loop is not None:
            await self._loop.close()
            self._loop = None

    async def run_once(self) -> dict[str, list[str]]:
        """One pass; returns the ids acted on, by action."""
        await self.manager.flush_activity()
        done: dict[str, list[str]] = {"culled": [], "busy-culled": [], "warned": [], "retired": []}
        done["culled"] = await self._cull_idle()
        if self.busy_timeout_seconds > 0:
            done["busy-culled"] = await self._cull_stuck_busy()
        if self.retention_days > 0:
            done["warned"], done["retired"] = await self._retire()
        return done

    async def _cull_idle(self) -> list[str]:
        default = self.manager.default_waiting_timeout_seconds
        culled: list[str] = []
        while True:
            batch = await self.manager.idle_candidates(limit=BATCH)
            batch = [s for s in batch if s.id not in culled]
            working = await self._working([s.id for s in batch])
            for session in batch:
                if session.id in working:
                    continue
                timeout = session.waiting_timeout_seconds
                seconds = default if timeout is None else timeout
                if await self._cull(session, f"no activity for {seconds} s", SessionState.READY):
                    culled.append(session.id)
            if len(batch) < BATCH:
                return culled

    async def _working(self, session_ids: list[str]) -> set[str]:
        """The sessions whose own compute use counts as activity now (noted as such)."""
        if self.active_cpu_millicores <= 0 or not session_ids:
            return set()
        try:
            usage = await self.manager.compute_usage(session_ids)
        except RaworcError as e:
            self.log.warning("could not read the sessions' compute use: %s", e)
            return set()
        working = {sid for sid, used in usage.items() if used >= self.active_cpu_millicores}
        for session_id in working:
            self.manager.note_activity(session_id)
        return working

    async def _cull_stuck_busy(self) -> list[str]:
        older_than = utcnow() - timedelta(seconds=self.busy_timeout_seconds)
        stuck = await self.manager.unused_since(older_than, state=SessionState.BUSY, limit=BATCH)
        working = await self._working([s.id for s in stuck])
        stuck = [s for s in stuck if s.id not in working]
        message = f"busy with no activity for {self.busy_timeout_seconds} s"
        return [s.id for s in stuck if await self._cull(s, message, SessionState.BUSY)]

    async def _cull(self, session: Session, message: str, expected: SessionState) -> bool:
        try:
            culled = await self.manager.pause_if(
                session.id,
                expected=expected,
                kind=EventKind.CULLED,
                reason="Culled",
                message=message,
            )
        except RaworcError as e:
            self.log.warning("could not cull session %s: %s", session.id, e)
            return False
        if culled:
            metrics.SESSIONS_CULLED.labels(expected.value).inc()
        return culled

    async def _retire(self) -> tuple[list[str], list[str]]:
        now = utcnow()
        retention = timedelta(days=self.retention_days)
        warn_at = retention - timedelta(days=min(self.retention_warning_days, self.retention_days))
        warned, retired = [], []
        idle = SessionState.IDLE
        for session in await self.manager.unused_since(now - warn_at, state=idle, limit=BATCH):
            anchor = session.last_activity_at or session.started_at or session.created_at
            if anchor <= now - retention:
                try:
                    await self._retire_one(session)
                    retired.append(session.id)
                except RaworcError as e:
                    self.log.warning("could not retire session %s: %s", session.id, e)
            elif await self._warn(session, deadline=anchor + retention):
                warned.append(session.id)
        return warned, retired

    async def _warn(self, session: Session, *, deadline: datetime) -> bool:
        """Record a ``retention-warning`` event once per idle period; True if recorded now."""
        since = session.last_activity_at or session.created_at
        manager = self.manager
        recent = await manager.recorded_events(session.id)
        if any(e.kind == EventKind.RETENTION_WARNING and e.timestamp >= since for e in recent):
            return False
        when = deadline.isoformat(timespec="minutes")
        message = f"unused workspace will be deleted at {when} unless the session is used"
        await manager.record_event(
            session, EventKind.RETENTION_WARNING, message, reason="Retention"
        )
        return True

    async def _retire_one(self, session: Session) -> None:
        """Delete an idle session whose workspace went unused for ``retention_days``."""
        fresh = await self.manager.fresh(session.id)
        if fresh is None or fresh.state != SessionState.IDLE:
            return
        days = f"{self.retention_days:g}"
        await self.manager.record_event(
            fresh, EventKind.RETIRED, f"unused for {days} days; deleting"
        )
        await self.manager.delete(SYSTEM, session.id)
        metrics.SESSIONS_RETIRED.inc()

    async def _pass(self) -> None:
        done = await self.run_once()
        if any(done.values()):
            self.log.info("culler: %s", {k: len(v) for k, v in done.items() if v})
