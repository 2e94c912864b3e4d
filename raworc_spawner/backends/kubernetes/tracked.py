"""What the Kubernetes backend remembers about one session between cache events.

One :class:`Tracked` record per session holds everything that is not in the informers' caches:
who waits for the session to become ready or for its objects to go, which pod and claim are the
session's current ones, the fatal condition seen, the clocks of conditions that fail a start
only when they last (unschedulable, unprovisioned), the believed Kubernetes events.
:class:`TrackedSessions` makes a record on first need and drops it in one place
(:meth:`TrackedSessions.forget`) when the session goes, cancelling what it holds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raworc_spawner.backends.base import Placement
from raworc_spawner.backends.kubernetes.eventbook import EventBook
from raworc_spawner.backends.kubernetes.podstate import Failure
from raworc_spawner.errors import SessionFailed

#: Events kept per session while the object they are about is not known yet.
PENDING_EVENTS = 32
#: Pods of a session this server deleted that are remembered as no longer current.
RETIRED_KEPT = 16


@dataclass(slots=True, eq=False)
class Clock:
    """How long a condition has held; it calls back once when a grace period is over."""

    since: float | None = None
    timer: asyncio.TimerHandle | None = None

    def lasted(self, holding: bool, *, grace: float, recheck: Callable[[], None]) -> bool:
        """Whether the condition has held for ``grace`` seconds (False resets the clock).

        Before that, ``recheck`` is arranged to be called when the grace period ends.
        """
        if not holding:
            self.reset()
            return False
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if now - self.since >= grace:
            return True
        if self.timer is None:
            remaining = grace - (now - self.since)
            self.timer = asyncio.get_running_loop().call_later(remaining, self._fire, recheck)
        return False

    def _fire(self, recheck: Callable[[], None]) -> None:
        self.timer = None
        recheck()

    def reset(self) -> None:
        """The condition no longer holds: stop the clock and its timer."""
        self.since = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


@dataclass(slots=True, eq=False)
class GoneWaiter:
    """Someone waiting for the object of ``uid`` (any object of the name: None) to go."""

    uid: str | None
    future: asyncio.Future[None]


@dataclass(slots=True, eq=False)
class Tracked:
    """One session's waiters, current objects, failure, clocks and events (see the module).

    ``pod_uid``/``pvc_uid`` are the session's current pod and claim (from a create's answer or
    the caches); ``retired`` are pods this server deleted, never current again. ``running`` is
    true once the pod was seen Running and Ready, so that its end is reported;
    ``restarts_seen`` is the session container's restart count then. ``stopping`` is true
    while this server pauses or deletes the session, so that the pod going away is expected.
    ``pvc_phase`` is the last phase of the claim reported as progress; ``provisioning`` the
    provisioner's last complaint about the current claim.
    """

    events: EventBook
    waiters: list[asyncio.Future[Placement]] = field(default_factory=list)
    gone: dict[str, list[GoneWaiter]] = field(default_factory=dict)
    pending: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=PENDING_EVENTS))
    pod_uid: str | None = None
    pvc_uid: str | None = None
    retired: dict[str, None] = field(default_factory=dict)  # ordered: oldest first
    failure: Failure | None = None
    unschedulable: Clock = field(default_factory=Clock)
    unprovisioned: Clock = field(default_factory=Clock)
    provisioning: str | None = None
    stopping: bool = False
    running: bool = False
    restarts_seen: int | None = None
    pvc_phase: str | None = None

    @classmethod
    def new(cls, *, events_kept: int) -> Tracked:
        """An empty record keeping the last ``events_kept`` Kubernetes events."""
        return cls(events=EventBook(keep=events_kept))

    @property
    def idle(self) -> bool:
        """Nothing waits on the session and it is not being stopped: it may be forgotten."""
        return not self.waiters and not self.gone and not self.stopping

    def restart(self) -> None:
        """Forget the previous attempt's failure and clocks (a new create begins).

        Whether the current pod runs is kept: a create that keeps a healthy pod must still
        hear of its end.
        """
        self.failure = None
        self.stopping = False
        self.clear_clocks()

    def clear_clocks(self) -> None:
        """Stop both clocks and their timers."""
        self.unschedulable.reset()
        self.unprovisioned.reset()

    def retire(self, uid: str | None) -> None:
        """The pod ``uid`` is being deleted by this server: it is no longer the current one."""
        if uid:
            self.retired[uid] = None
            if len(self.retired) > RETIRED_KEPT:  # only pods still going away matter
                del self.retired[next(iter(self.retired))]
            if self.pod_uid == uid:
                self.pod_uid = None

    def settle(self, result: Placement | SessionFailed) -> None:
        """Resolve every readiness waiter with ``result`` (a placement or the failure)."""
        for future in self.waiters:
            if future.done():
                continue
            if isinstance(result, Placement):
                future.set_result(result)
            else:
                future.set_exception(result)

    def resolve_gone(self, name: str, *, uid: str | None, present: bool) -> None:
        """News of the object ``name`` (``uid``): wake whoever waits for it to be gone.

        ``present`` False: that object was deleted. True: an object of that name exists, which
        ends the wait of anyone waiting for another uid (a new object took the name).
        """
        for waiter in self.gone.get(name, ()):
            if waiter.future.done():
                continue
            if present and (waiter.uid is None or waiter.uid == uid):
                continue
            if not present and waiter.uid not in (None, uid):
                continue
            waiter.future.set_result(None)

    def close(self) -> None:
        """The session goes: cancel the timers and fail anyone still waiting for readiness."""
        self.clear_clocks()
        self.settle(SessionFailed("Deleted", "the session was deleted"))


class TrackedSessions:
    """Every session's :class:`Tracked` record, by session id."""

    def __init__(self, *, events_kept: int) -> None:
        self._events_kept = events_kept
        self._records: dict[str, Tracked] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, session_id: str) -> Tracked | None:
        """The session's record if it has one."""
        return self._records.get(session_id)

    def track(self, session_id: str) -> Tracked:
        """The session's record, made on first need."""
        tracked = self._records.get(session_id)
        if tracked is None:
            tracked = self._records[session_id] = Tracked.new(events_kept=self._events_kept)
        return tracked

    def forget(self, session_id: str) -> None:
        """The session is gone: drop its record and cancel what it holds."""
        tracked = self._records.pop(session_id, None)
        if tracked is not None:
            tracked.close()

    def failure(self, session_id: str) -> Failure | None:
        """The fatal condition recorded for the session, if any."""
        tracked = self._records.get(session_id)
        return tracked.failure if tracked else None

    def close(self) -> None:
        """Cancel every timer (the backend is closing; records stay for a restart)."""
        for tracked in self._records.values():
            tracked.clear_clocks()
