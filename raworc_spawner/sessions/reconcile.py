"""Reconciliation: make the records and what the backend really has agree.

Runs at start-up (after a crash or a kill -9 anything may be half done) and periodically:

- a record in ``deleting`` finishes its delete;
- a record that should have compute but has none (the process died with the server, the pod was
  evicted) becomes ``idle`` with its workspace kept, or gets its compute recreated (policy);
- a record in ``init`` whose compute exists is watched until ready again, unless at start-up its
  workspace is missing (the create was cut short between the two): then it is treated as lost
  compute, since that compute could never start;
- a workspace or compute of this instance without a record is re-adopted: its record is
  rebuilt from what the objects carry (an ``adopted`` event), so a server whose store was lost
  or reset finds its sessions again instead of removing them;
- compute that cannot be described is an orphan: stopped after a grace period, or kept
  (policy); such a workspace is reported (log, ``raworc_orphaned_workspaces``,
  ``raworc-spawner cleanup``) and never deleted here: workspaces are the users' data, and only
  an explicit delete or the retention policy removes one;
- sessions recorded on another backend (before a switch of ``KUBERNETES_ENABLED``) are left
  alone: this server cannot see their compute, and must not mistake it for lost.

The first pass also claims objects that name no owner instance (made before owners were
recorded) for the sessions the store has records of.
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
        self._claimed = False
        self._lost_seen: dict[str, float] = {}
        self._lost_pending: set[str] = set()
        self._recheck: asyncio.Task[None] | None = None
        self._starting: PeriodicTask | None = None

    async def start(self, *, startup: bool = True) -> None:
        """Reconcile once now (waiting at most ``startup_wait_seconds``), then periodically.

        ``startup``: no other process has creates in flight (a single server starting), so a
        missing workspace of an ``init`` session means a cut create and orphans are stopped
        without grace. A replica elected leader passes False; then a failing first pass is
        logged and the periodic passes go on (the caller is the leadership, not a start-up).
        """
        self._first = asyncio.create_task(self.reconcile(startup=startup), name="reconcile-startup")
        done, _ = await asyncio.wait({self._first}, timeout=self.startup_wait_seconds)
        if done and startup:
            self._first.result()  # a failure of the start-up pass is the caller's to see
        elif done:
            self._first_done(self._first)
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
        if self.manager.replicated:
            every = max(1.0, self.orphan_grace_seconds / 2)
            self._starting = PeriodicTask(
                "reconcile-starting", self.check_starting, interval=every, log=self.log
            )
            self._starting.start()

    def _first_done(self, task: asyncio.Task[object]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("start-up reconciliation failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop the periodic reconciliation (and a start-up pass or a re-check still running)."""
        for task in (self._first, self._recheck):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for loop in (self._loop, self._starting):
            if loop is not None:
                await loop.close()
        self._loop = self._starting = None

    async def reconcile(self, *, startup: bool = False) -> dict[str, list[str]]:
        """One pass; returns what it did, by action, for logs and the CLI."""
        actions: dict[str, list[str]] = {}
        self._lost_pending = set()
        claiming = not self._claimed
        known: set[str] = set()
        cursor: str | None = None
        # Only at start-up is no create in flight here, so a missing workspace means a cut one.
        workspaces = (await self.manager.inventory()).workspaces if startup else None
        while True:
            page = await self.manager.list(SYSTEM, limit=200, cursor=cursor)
            if claiming and (claimed := await self._claim_unowned(page.items)):
                actions.setdefault("claimed", []).extend(claimed)
            for session in page.items:
                known.add(session.id)
                action = await self._reconcile_session(session, workspaces, startup=startup)
                if action:
                    actions.setdefault(action, []).append(session.id)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        self._claimed = True
        adopted, orphans = await self._orphans(known, startup=startup)
        if adopted:
            actions["adopted"] = adopted
        if orphans:
            actions["orphan compute stopped"] = orphans
        self._lost_seen = {k: t for k, t in self._lost_seen.items() if k in self._lost_pending}
        rechecking = self._recheck is not None and not self._recheck.done()
        if self._lost_pending and (not rechecking or self._recheck is asyncio.current_task()):
            self._recheck = asyncio.create_task(self._recheck_later(), name="reconcile-recheck")
        if actions:
            self.log.info("reconciled: %s", {k: len(v) for k, v in actions.items()})
        return actions

    async def check_starting(self) -> dict[str, list[str]]:
        """Sessions in ``init`` only: the starts of a replica that died get watched (compute
        exists) or, once their compute stayed missing for the grace, treated as lost.

        Runs every half grace on the leader of several replicas, so that a create cut short by
        any replica's death settles within about the grace, not a reconciliation interval.
        """
        actions: dict[str, list[str]] = {}
        cursor: str | None = None
        while True:
            page = await self.manager.list(SYSTEM, states=[S.INIT], limit=200, cursor=cursor)
            for session in page.items:
                self._lost_pending.discard(session.id)
                action = await self._reconcile_session(session, None, startup=False)
                if action and action != "watching":
                    actions.setdefault(action, []).append(session.id)
                if session.id not in self._lost_pending:  # not missing now: a later loss
                    self._lost_seen.pop(session.id, None)  # starts its grace afresh
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        if actions:
            counts = {k: len(v) for k, v in actions.items()}
            self.log.info("reconciled starting sessions: %s", counts)
        return actions

    async def _recheck_later(self) -> None:
        """Another pass once compute seen missing may count as lost (not a whole interval on)."""
        await asyncio.sleep(self.orphan_grace_seconds)
        try:
            await self.reconcile()
        except Exception:
            self.log.exception("reconciliation re-check failed")

    async def _reconcile_session(
        self, session: Session, workspaces: frozenset[str] | None, *, startup: bool
    ) -> str | None:
        try:
            return await self._reconcile_one(session, workspaces, startup=startup)
        except RaworcError as e:
            self.log.warning("could not reconcile session %s: %s", session.id, e)
            return None

    async def _reconcile_one(
        self, session: Session, workspaces: frozenset[str] | None, *, startup: bool
    ) -> str | None:
        if not self.manager.handles(session) or not self.manager.runs_here(session):
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
        if not startup and self.manager.replicated and not self._lost_long_enough(session.id):
            return None
        await self.manager.compute_lost(session.id, "compute is gone (found at reconciliation)")
        return f"compute lost ({self.manager.lost_compute_policy})"

    def _lost_long_enough(self, session_id: str) -> bool:
        """Whether the session has had no compute for ``orphan_grace_seconds`` of passes.

        With replicas, another one may be creating its compute (the record is written first) or
        pausing it (the pod goes first): only what stays missing is lost. A lone server has
        nothing in flight that it does not know of, and treats missing compute as lost at once.
        """
        now = time.monotonic()
        first = self._lost_seen.setdefault(session_id, now)
        if now - first < self.orphan_grace_seconds:
            self._lost_pending.add(session_id)
            return False
        del self._lost_seen[session_id]
        return True

    async def _claim_unowned(self, sessions: list[Session]) -> list[str]:
        """Claim unowned objects of recorded sessions (the backend returns once it sees them)."""
        inventory = await self.manager.inventory()
        have = inventory.compute | inventory.workspaces
        missing = [s.id for s in sessions if s.id not in have and self.manager.runs_here(s)]
        claimed = list(await self.manager.claim(missing))
        if claimed:
            self.log.warning(
                "claimed the objects of %d sessions that named no owner instance (made by an "
                "older version)",
                len(claimed),
            )
        return claimed

    async def _orphans(self, known: set[str], *, startup: bool) -> tuple[list[str], list[str]]:
        inventory = await self.manager.inventory()
        unknown = [o for o in sorted(inventory.compute | inventory.workspaces) if o not in known]
        # A session may have been created after the listing above: check the record again.
        unknown = [o for o in unknown if await self.manager.fresh(o) is None]
        adopted = await self._adopt(unknown)
        unknown = [o for o in unknown if o not in adopted]
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
        stopped = await self._stop_orphan_compute(
            [o for o in unknown if o in inventory.compute], startup=startup
        )
        return adopted, stopped

    async def _adopt(self, unknown: list[str]) -> list[str]:
        """Rebuild the records of unknown sessions whose objects carry enough to do so."""
        adopted: list[str] = []
        for found in await self.manager.describe(unknown):
            try:
                session = await self.manager.adopt(found)
            except RaworcError as e:
                self.log.warning("could not re-adopt session %s: %s", found.session_id, e)
                continue
            if session is not None:
                self.log.warning(
                    "re-adopted session %s (%r of %s, %s) from its objects: the store had no "
                    "record of it",
                    session.id,
                    session.name,
                    session.owner,
                    session.state,
                )
                adopted.append(session.id)
        return adopted

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
