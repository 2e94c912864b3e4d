"""Leader election: one replica of several runs the background loops, and hands over safely.

The semantics are those of client-go's ``k8s.io/client-go/tools/leaderelection``:

- a candidate tries to acquire the lock every ``retry_seconds``;
- the leader renews it every ``retry_seconds``; a leader that has not renewed successfully for
  ``renew_deadline_seconds`` steps down (``on_deposed``) *before* the lock can expire for the
  others (``lease_seconds`` after they last saw it renewed), so two leaders never act at once;
- callbacks run to completion, one at a time, before the next step of the loop;
- an elector that raises counts as a failed attempt; the outage is logged once, not per attempt.

What "the lock" is belongs to an :class:`Elector`: a ``coordination.k8s.io/v1`` Lease
(``backends/kubernetes/lease.py``), a PostgreSQL advisory lock (``store/leader.py``), or
:class:`SingleElector` for a single process (SQLite).

>>> import asyncio, logging
>>> async def demo() -> list[str]:
...     seen: list[str] = []
...     async def elected() -> None: seen.append("elected")
...     async def deposed() -> None: seen.append("deposed")
...     leadership = Leadership(SingleElector("me"), on_elected=elected, on_deposed=deposed,
...                             retry_seconds=0.01, renew_deadline_seconds=0.05,
...                             lease_seconds=0.1, log=logging.getLogger("demo"))
...     leadership.start()
...     await asyncio.sleep(0.05)
...     await leadership.close()
...     return seen
>>> asyncio.run(demo())
['elected', 'deposed']
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from traitlets import Float, Unicode, validate
from traitlets.config import LoggingConfigurable

from raworc_spawner.errors import InvalidConfig

Callback = Callable[[], Awaitable[None]]
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


class Elector(Protocol):
    """One candidate's handle on a shared lock (a Lease, an advisory lock…)."""

    #: Who this candidate is (recorded as the holder; a pod name, a host name…).
    identity: str

    async def try_acquire_or_renew(self) -> bool:
        """Take the lock, or keep it if held: True when this candidate holds it now.

        False means another candidate holds it. Raising means the attempt could not be made
        (the API server or database is unreachable): it counts as a failed attempt.
        """
        ...

    async def release(self) -> None:
        """Give the lock up at once if this candidate holds it (a no-op otherwise)."""
        ...

    def describe(self) -> str:
        """What the lock is, for logs (e.g. ``Lease raworc-sessions/raworc-leader-x``)."""
        ...


class SingleElector:
    """Always the leader: for one process alone on its store (SQLite)."""

    def __init__(self, identity: str = "single") -> None:
        self.identity = identity

    async def try_acquire_or_renew(self) -> bool:
        """Always True: nobody else competes."""
        return True

    async def release(self) -> None:
        """Nothing to give up."""

    def describe(self) -> str:
        """In words."""
        return "a single process (no election)"


class Leadership:
    """Run ``on_elected`` when this replica becomes leader and ``on_deposed`` when it stops.

    Times are seconds. ``lease_seconds`` is how long the others wait for a silent leader
    (given to the elector too); ``renew_deadline_seconds`` how long a leader keeps leading
    without a successful renewal; ``retry_seconds`` the period of attempts. They must satisfy
    ``retry < renew_deadline < lease``: the gap between the last two is the time the deposed
    leader has to stop its loops before another replica may start them.
    """

    def __init__(
        self,
        elector: Elector,
        *,
        on_elected: Callback,
        on_deposed: Callback,
        lease_seconds: float = 15.0,
        renew_deadline_seconds: float = 10.0,
        retry_seconds: float = 2.0,
        log: Log,
    ) -> None:
        check_timings(lease_seconds, renew_deadline_seconds, retry_seconds)
        self.elector = elector
        self.lease_seconds = lease_seconds
        self.renew_deadline_seconds = renew_deadline_seconds
        self.retry_seconds = retry_seconds
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._log = log
        self._leader = False
        self._failing = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Set once the first attempt is over (won, lost or failed): then :attr:`is_leader`
        #: and :attr:`failing` say how this candidate stands.
        self.attempted = asyncio.Event()

    @property
    def failing(self) -> bool:
        """Whether the last attempt failed (an error or a timeout, not another's lock)."""
        return self._failing

    @property
    def is_leader(self) -> bool:
        """Whether this replica leads now (``on_elected`` has run, ``on_deposed`` not yet)."""
        return self._leader

    def start(self) -> None:
        """Begin campaigning in a background task (no-op when it already runs)."""
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="leadership")

    async def close(self) -> None:
        """Stop campaigning; a leader runs ``on_deposed`` and then releases the lock at once.

        Returns when both are done, so a successor can take over without waiting for expiry.
        The elector's ``release`` is called even when this replica was not leading.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        await task

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        self._log.info(
            "campaigning for leadership: %s as %r", self.elector.describe(), self.identity
        )
        while not self._stopping.is_set():
            started = time.monotonic()
            held = await self._attempt(self.retry_seconds)
            self._leader = held
            self.attempted.set()
            if held:
                await self._lead(started)
            await self._pause(self.retry_seconds)
        await self._release()  # also frees a lock held by a candidate not yet leading

    @property
    def identity(self) -> str:
        """This candidate's identity (the elector's)."""
        return self.elector.identity

    async def _lead(self, renewed_at: float) -> None:
        """Lead until deposed or closed, then step down (``on_deposed``, release)."""
        self._leader = True
        self._log.info("became leader (%s)", self.elector.describe())
        if await self._call("on_elected", self._on_elected):
            await self._keep(renewed_at)
        self._leader = False
        await self._call("on_deposed", self._on_deposed)
        if not self._stopping.is_set():  # deposed: hand over now rather than at expiry
            await self._release()

    async def _keep(self, renewed_at: float) -> None:
        """Renew every retry period; return when closed or once the renew deadline passes."""
        while True:
            deadline = renewed_at + self.renew_deadline_seconds
            # Never sleep past the deadline: stepping down late could overlap a successor.
            await self._pause(min(self.retry_seconds, max(0.0, deadline - time.monotonic())))
            if self._stopping.is_set():
                return
            started = time.monotonic()
            if started >= deadline:
                self._log.warning(
                    "stepping down: leadership not renewed for %.1f s (renew deadline %.1f s)",
                    started - renewed_at,
                    self.renew_deadline_seconds,
                )
                return
            # Like client-go, a renewal may take until the deadline (a slow API server under
            # load is no reason to step down while there is time left).
            if await self._attempt(deadline - started):
                renewed_at = started  # the others saw the renewal no earlier than this

    async def _attempt(self, timeout: float) -> bool:
        """One bounded try; an exception or a timeout is a failed attempt, logged once."""
        try:
            held = await asyncio.wait_for(self.elector.try_acquire_or_renew(), timeout)
        except Exception as e:
            if not self._failing:
                self._failing = True
                reason = str(e) or type(e).__name__
                self._log.warning(
                    "leader election: %s failed (%s); retrying every %.1f s, quiet until it works",
                    self.elector.describe(),
                    reason,
                    self.retry_seconds,
                )
            return False
        if self._failing:
            self._failing = False
            self._log.info("leader election: %s answers again", self.elector.describe())
        return held

    async def _call(self, name: str, callback: Callback) -> bool:
        try:
            await callback()
        except Exception:
            self._log.exception("leadership %s callback failed", name)
            return False
        return True

    async def _release(self) -> None:
        try:
            await asyncio.wait_for(self.elector.release(), self.retry_seconds)
        except Exception as e:
            self._log.warning(
                "could not release %s (%s); others take over when it expires",
                self.elector.describe(),
                str(e) or type(e).__name__,
            )
        else:
            self._log.info("released %s", self.elector.describe())

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def check_timings(lease: float, renew_deadline: float, retry: float) -> None:
    """Raise :class:`InvalidConfig` unless ``0 < retry < renew_deadline < lease`` (seconds)."""
    if retry <= 0:
        raise InvalidConfig("LeaderElection.retry_period_seconds", retry, "must be > 0 seconds")
    if renew_deadline >= lease:
        raise InvalidConfig(
            "LeaderElection.renew_deadline_seconds",
            renew_deadline,
            f"must be less than LeaderElection.lease_duration_seconds ({lease}): a leader must "
            "step down before the others may take over",
        )
    if retry >= renew_deadline:
        raise InvalidConfig(
            "LeaderElection.retry_period_seconds",
            retry,
            f"must be less than LeaderElection.renew_deadline_seconds ({renew_deadline}): a "
            "leader needs more than one attempt to renew before its deadline",
        )


#: Longest duration setting, in seconds (a Lease's duration is an int32 of seconds).
MAX_SECONDS = 86400.0
#: A DNS-1123 subdomain, the rule for Lease names (Kubernetes API conventions).
_LEASE_NAME_RE = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)


class LeaderElection(LoggingConfigurable):
    """Settings of the election that picks the replica running the background loops.

    Only matters with several replicas on one PostgreSQL store; a single server on SQLite is
    always the leader. Failover after a leader dies takes at most
    ``lease_duration_seconds + 2 * retry_period_seconds`` (typically about
    ``lease_duration_seconds + retry_period_seconds / 2``); a leader that shuts down cleanly
    hands over at once.
    """

    lease_duration_seconds = Float(
        15.0,
        help="""How long (seconds) the other replicas wait, after they last saw the leader renew
        its lock, before taking it over. Default 15 (as Kubernetes' own controllers). Must be
        more than renew_deadline_seconds.""",
    ).tag(config=True)

    renew_deadline_seconds = Float(
        10.0,
        help="""How long (seconds) a leader keeps leading without renewing its lock successfully;
        then it stops its background loops, so that it never acts after the others may have
        taken over. Default 10. Must be more than retry_period_seconds and less than
        lease_duration_seconds.""",
    ).tag(config=True)

    retry_period_seconds = Float(
        2.0,
        help="""How often (seconds) a candidate tries to acquire the lock and the leader renews
        it. Default 2. Must be more than 0 and less than renew_deadline_seconds.""",
    ).tag(config=True)

    lease_name = Unicode(
        "",
        help="""Name of the lock: the Lease in the session namespace (Kubernetes backend), or the
        key of the PostgreSQL advisory lock (local backend). Empty (the default) means
        raworc-leader-<instance name>, so that servers of different instances elect separate
        leaders.""",
    ).tag(config=True)

    @validate("lease_duration_seconds", "renew_deadline_seconds", "retry_period_seconds")
    def _positive(self, proposal: dict[str, float]) -> float:
        value = float(proposal["value"])
        if not math.isfinite(value) or value <= 0 or value > MAX_SECONDS:
            name = proposal["trait"].name  # type: ignore[attr-defined]
            raise InvalidConfig(
                f"LeaderElection.{name}", value, f"must be > 0 and at most {MAX_SECONDS:g} seconds"
            )
        return value

    @validate("lease_name")
    def _lock_name(self, proposal: dict[str, str]) -> str:
        value = str(proposal["value"])
        if value and not _LEASE_NAME_RE.fullmatch(value):
            raise InvalidConfig(
                "LeaderElection.lease_name",
                value,
                "must be empty or a Lease name: at most 253 lowercase letters, digits, '-' and "
                "'.', starting and ending with a letter or digit",
            )
        return value

    def check(self) -> None:
        """Raise :class:`InvalidConfig` unless retry < renew deadline < lease duration."""
        check_timings(
            self.lease_duration_seconds, self.renew_deadline_seconds, self.retry_period_seconds
        )

    def name_for(self, instance_name: str) -> str:
        """The lock's name for this instance (``lease_name``, else ``raworc-leader-<instance>``)."""
        return self.lease_name or f"raworc-leader-{instance_name}"
