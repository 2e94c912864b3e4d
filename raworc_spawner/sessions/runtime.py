"""What the server holds in memory for a live session, kept in one record and removed in one place.

Before, a session's lock, readiness waiter, start time, wake task and progress ring lived in as
many dictionaries, each cleaned up by hand (and one was not, on a delete during ``init``). Now a
:class:`SessionRuntime` holds them all, :class:`Runtimes` owns the records, and
:meth:`Runtimes.drop` forgets a session whole.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from raworc_spawner.sessions.model import Session, SessionEvent

#: Transient (progress and warning) events kept per session for late subscribers and ``status``.
PROGRESS_RING = 50


@dataclass(slots=True, eq=False)
class SessionRuntime:
    """Everything this server holds for one live session.

    ``lock`` serializes operations on the session; ``waiter`` waits for its compute to become
    ready; ``wake`` is a resume shared by concurrent requests; ``started`` is the monotonic time
    compute creation began (for the create-duration metric); ``progress`` keeps the latest
    transient events.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiter: asyncio.Task[None] | None = None
    wake: asyncio.Task[Session] | None = None
    started: float | None = None
    progress: deque[SessionEvent] = field(default_factory=lambda: deque(maxlen=PROGRESS_RING))

    def cancel_waiter(self) -> None:
        """Stop waiting for readiness (unless the caller is the waiter itself)."""
        task, self.waiter = self.waiter, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()


class Runtimes:
    """The runtime records of live sessions, by session id."""

    def __init__(self) -> None:
        self._by_id: dict[str, SessionRuntime] = {}

    def of(self, session_id: str) -> SessionRuntime:
        """The session's record, created on first use."""
        runtime = self._by_id.get(session_id)
        if runtime is None:
            runtime = self._by_id[session_id] = SessionRuntime()
        return runtime

    def peek(self, session_id: str) -> SessionRuntime | None:
        """The session's record if it has one (creates nothing)."""
        return self._by_id.get(session_id)

    def lock(self, session_id: str) -> asyncio.Lock:
        """The lock that serializes operations on one session."""
        return self.of(session_id).lock

    def cancel_waiter(self, session_id: str) -> None:
        """Stop waiting for the session's readiness, if anything waits."""
        runtime = self._by_id.get(session_id)
        if runtime is not None:
            runtime.cancel_waiter()

    def drop(self, session_id: str) -> None:
        """Forget the session whole (it was deleted); a waiter still running is cancelled."""
        runtime = self._by_id.pop(session_id, None)
        if runtime is not None:
            runtime.cancel_waiter()

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)
