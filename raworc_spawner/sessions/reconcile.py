"""Reconciliation: make the records and what the backend really has agree.

Runs at start-up (after a crash or a kill -9 anything may be half done) and periodically:

- a record in ``deleting`` finishes its delete;
- a record that should have compute but has none (the process died with the server, the pod was
  evicted) becomes ``idle`` with its workspace kept, or gets its compute recreated (policy);
- a record in ``init`` whose compute exists is watched until ready again, unless at start-up its
  workspace is missing (the create was cut short between the two): then it is treated as lost
  compute, since that compute could never start;
- compute without a record is an orphan: stopped after a grace period, or kept (policy);
- a workspace without a record is reported (log, ``raworc_orphaned_workspaces``,
  ``raworc-spawner cleanup``) and never deleted here: workspaces are the users' data, and only
  an explicit delete or the retention policy removes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from traitlets import Enum, Float
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import ComputeState
from raworc_spawner.errors import RaworcError
from raworc_spawner.loops import PeriodicTask
from raworc_spawner.sessions import metrics
from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.sessions.model import Session, SessionState

S = SessionState


class Reconciler(LoggingConfigurable):
    """Brings records and backend resources back into agreement."""

    orphan_policy = Enum(
        ["delete", "keep"],
        default_value="delete",
        help="""What to do with compute (pods, processes) that carries our labels but has no
        session record: ``delete`` it after ``orphan_grace_seconds``, or ``keep`` it and log it.
        Orphaned workspaces are never deleted by reconciliation, whatever this says: they are
        reported, and ``raworc-spawner cleanup --delete`` removes them.""",
    ).tag(config=True)

    orphan_grace_seconds = Float(
        60.0,
        help="""Seconds an orphan must stay orphaned before it is deleted, so that a create in
        flight in another process is not mistaken for one. At start-up orphans of the previous
        run are older than that by construction and are deleted at once.""",
    ).tag(config=True)

    interval_seconds = Float(
        300.0,
        help="""Seconds between periodic reconciliations after the one at start-up. 0 means only
        at start-up.""",
    ).tag(config=True)

    startup_wait_seconds = Float(
        10.0,
        help="""Seconds start-up waits for the first reconciliation before the server goes on
        (and starts listening). A pass that takes longer (a delete held by a finalizer, a slow
        API server) finishes in the background; start-up never waits on clean-up.""",
    ).tag(config=True)

    def __init__(self, *, manager: SessionManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manager = manager
        self._orphans_seen: dict[str, float] = {}
        self._reported: set[str] = set()
        self._loop: PeriodicTask | None = None
        self._first: asyncio.Task[object] | None = None

    async def start(self) -> None:
        """Reconcile once now (waiting at most ``startup_wait_seconds``), then periodically."""
        self._first = asyncio.create_task(self.reconcile(startup=True), name="reconcile-startup")
        done, _ = await asyncio.wait({self._first}, timeout=self.startup_wait_seconds)
        if done:
            self._first.result()  # a failure of the start-up pass is the caller's to see
        else:
            self.log.warning(
                "start-up reconciliation still running after %g s; it goes on in the background",
                self.startup_wait_seconds,
            )
            self._first.add_done_callback(self._first_done)
        if self.interval_seconds > 0:
            self._loop = PeriodicTask(
                "reconciler", self.reconcile, interval=self.interval_seconds, log=self.log
            )
            self._loop.start()

    def _first_done(self, task: asyncio.Task[object]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("start-up reconciliation failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop the periodic reconciliation (and a start-up pass still running)."""
        if self._first is not None and not self._first.done():
            self._first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._first
        if self._loop is not None:
            await self._loop.close()
            self._loop = None

    async def reconcile(self, *, startup: bool = False) -> dict[str, list[str]]:
        """One pass; returns what it did, by action, for logs and the CLI."""
        actions: dict[str, list[str]] = {}
        known: set[str] = set()
        cursor: str | None = None
        # Only at start-up is no create in flight here, so a missing workspace means a cut one.
        workspaces = (await self.manager.inventory()).workspaces if startup else None
        while True:
            page = await self.manager.list(SYSTEM, limit=200, cursor=cursor)
            for session in page.items:
                known.add(session.id)
                action = await self._reconcile_session(session, workspaces)
                if action:
                    actions.setdefault(action, []).append(session.id)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        for orphan in await self._orphans(known, startup=startup):
            actions.setdefault("orphan compute stopped", []).append(orphan)
        if actions:
            self.log.info("reconciled: %s", {k: len(v) for k, v in actions.items()})
        return actions

    async def _reconcile_session(
        self, session: Session, workspaces: frozenset[str] | None
    ) -> str | None:
        try:
            return await self._reconcile_one(session, workspaces)
        except RaworcError as e:
            self.log.warning("could not reconcile session %s: %s", session.id, e)
            return None

    async def _reconcile_one(
        self, session: Session, workspaces: frozenset[str] | None
    ) -> str | None:
        if not self.manager.handles(session):
            return None
        compute = self.manager.compute_state(session.id)
        if session.state == S.DELETING:
            await self.manager.delete(SYSTEM, session.id)
            return "deleted"
        if session.state not in (S.INIT, S.READY, S.BUSY):
            if compute in (ComputeState.RUNNING, ComputeState.STARTING):
                # Compute of a sleeping session (found again after a restart): not wanted.
                stopped = await self.manager.stop_unwanted_compute(session.id)
                return "stray compute stopped" if stopped else None
            return None
        if compute in (ComputeState.RUNNING, ComputeState.STARTING):
            cut_short = workspaces is not None and session.id not in workspaces
            if session.state == S.INIT and cut_short:
                message = "the create was interrupted before the workspace existed"
                await self.manager.compute_lost(session.id, f"{message} (found at start-up)")
                return f"interrupted create ({self.manager.lost_compute_policy})"
            if session.state == S.INIT:
                await self.manager.adopt_starting(session.id)
                return "watching"
            return None
        await self.manager.compute_lost(session.id, "compute is gone (found at reconciliation)")
        return f"compute lost ({self.manager.lost_compute_policy})"

    async def _orphans(self, known: set[str], *, startup: bool) -> list[str]:
        inventory = await self.manager.inventory()
        unknown = [o for o in sorted(inventory.compute | inventory.workspaces) if o not in known]
        # A session may have been created after the listing above: check the record again.
        unknown = [o for o in unknown if await self.manager.fresh(o) is None]
        workspaces = [o for o in unknown if o in inventory.workspaces]
        metrics.ORPHANED_WORKSPACES.set(len(workspaces))
        for orphan in workspaces:
            if orphan not in self._reported:
                self.log.warning(
                    "workspace of unknown session %s kept (it is never deleted by inference; "
                    "raworc-spawner cleanup --delete removes it)",
                    orphan,
                )
        self._reported = set(workspaces)
        return await self._stop_orphan_compute(
            [o for o in unknown if o in inventory.compute], startup=startup
        )

    async def _stop_orphan_compute(self, orphans: list[str], *, startup: bool) -> list[str]:
        now = time.monotonic()
        due: list[str] = []
        for orphan in orphans:
            first = self._orphans_seen.setdefault(orphan, now)
            if startup or now - first >= self.orphan_grace_seconds:
                due.append(orphan)
        self._orphans_seen = {o: t for o, t in self._orphans_seen.items() if o in orphans}
        for orphan in due:
            if self.orphan_policy == "delete":
                self.log.warning("stopping orphaned compute of unknown session %s", orphan)
                await self.manager.stop_orphan_compute(orphan)
                self._orphans_seen.pop(orphan, None)
            else:
                self.log.warning("orphaned compute of unknown session %s kept (policy)", orphan)
        return due
