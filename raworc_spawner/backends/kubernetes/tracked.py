"""What the Kubernetes backend remembers about one session between cache events.

One :class:`Tracked` record per session holds everything that is not in the informers' caches:
who waits for the session to become ready or for its objects to go, the fatal condition seen,
the unschedulable timer, the recent Kubernetes events. :class:`TrackedSessions` makes a record on
first need and drops it in one place (:meth:`TrackedSessions.forget`) when the session goes,
cancelling what it holds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from raworc_spawner.backends.base import Placement
from raworc_spawner.backends.kubernetes.podstate import Failure
from raworc_spawner.backends.status import KubernetesEvent
from raworc_spawner.errors import SessionFailed


@dataclass(slots=True, eq=False)
class Tracked:
    """One session's waiters, failure, timers and recent events (see the module docstring).

    ``running`` is true once the pod was seen Running and Ready, so that its disappearance is
    reported as lost; ``stopping`` is true while this server pauses or deletes the session, so
    that the pod going away is expected. ``pvc_phase`` is the last phase of the workspace claim
    reported as progress.
    """

    events: deque[KubernetesEvent]
    waiters: list[asyncio.Future[Placement]] = field(default_factory=list)
    gone: dict[str, list[asyncio.Future[None]]] = field(default_factory=dict)
    failure: Failure | None = None
    unschedulable_since: float | None = None
    recheck: asyncio.TimerHandle | None = None
    stopping: bool = False
    running: bool = False
    pvc_phase: str | None = None

    @classmethod
    def new(cls, *, events_kept: int) -> Tracked:
        """An empty record keeping the last ``events_kept`` Kubernetes events."""
        return cls(events=deque(maxlen=events_kept))

    @property
    def idle(self) -> bool:
        """Nothing waits on the session and it is not being stopped: it may be forgotten."""
        return not self.waiters and not self.gone and not self.stopping

    def restart(self) -> None:
        """Forget the previous attempt's failure and timers (a new create begins)."""
        self.failure = None
        self.stopping = False
        self.clear_unschedulable()

    def clear_unschedulable(self) -> None:
        """The pod is no longer unschedulable: stop the clock and its timer."""
        self.unschedulable_since = None
        if self.recheck is not None:
            self.recheck.cancel()
            self.recheck = None

    def unschedulable(
        self, message: str | None, *, grace: float, recheck: Callable[[], None]
    ) -> Failure | None:
        """Fail once the pod has stayed unschedulable for ``grace`` seconds.

        ``message`` is the scheduler's (None: the pod is schedulable, which resets the clock).
        Before the grace period is over this returns None and arranges for ``recheck`` to be
        called when it ends.
        """
        if message is None:
            self.clear_unschedulable()
            return None
        now = time.monotonic()
        if self.unschedulable_since is None:
            self.unschedulable_since = now
        if now - self.unschedulable_since >= grace:
            return Failure("Unschedulable", message)
        if self.recheck is None:  # look again when the grace period is over
            remaining = grace - (now - self.unschedulable_since)
            self.recheck = asyncio.get_running_loop().call_later(remaining, recheck)
        return None

    def settle(self, result: Placement | SessionFailed) -> None:
        """Resolve every readiness waiter with ``result`` (a placement or the failure)."""
        for future in self.waiters:
            if future.done():
                continue
            if isinstance(result, Placement):
                future.set_result(result)
            else:
                future.set_exception(result)

    def resolve_gone(self, name: str) -> None:
        """The object ``name`` is gone: wake whoever waits for that."""
        for future in self.gone.get(name, ()):
            if not future.done():
                future.set_result(None)

    def close(self) -> None:
        """The session goes: cancel the timer and fail anyone still waiting for readiness."""
        self.clear_unschedulable()
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
            tracked.clear_unschedulable()
