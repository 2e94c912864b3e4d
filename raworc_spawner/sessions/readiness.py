"""Waiting for a session's compute to become ready, then settling the session (ready or error)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from raworc_spawner.backends.base import Backend
from raworc_spawner.errors import InvalidTransition, SessionFailed
from raworc_spawner.loops import BackgroundTasks
from raworc_spawner.sessions import metrics
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.model import EventKind, Session, SessionState, utcnow
from raworc_spawner.sessions.runtime import Runtimes
from raworc_spawner.sessions.writer import SessionWriter


class ReadinessSettings(Protocol):
    """The setting the watcher reads (the manager's trait, read at each wait)."""

    ready_timeout_seconds: float


#: Called (under the session's lock) to fail a start: the session, a reason and a message.
FailStart = Callable[[Session, str, str], Awaitable[object]]


class ReadinessWatcher:
    """One background waiter per starting session; it moves the session out of ``init``.

    The waiter asks the backend (which waits on its watch cache, never polls) and then, under the
    session's lock, moves a session still in ``init`` to ``ready`` or to ``error`` with the reason
    (``Timeout`` after ``ready_timeout_seconds``). A session paused, deleted or failed meanwhile
    is left alone.
    """

    def __init__(
        self,
        *,
        backend: Backend,
        cache: SessionCache,
        writer: SessionWriter,
        runtimes: Runtimes,
        tasks: BackgroundTasks,
        settings: ReadinessSettings,
        fail: FailStart,
    ) -> None:
        self._backend = backend
        self._cache = cache
        self._writer = writer
        self._runtimes = runtimes
        self._tasks = tasks
        self._settings = settings
        self._fail = fail

    def watch(self, session_id: str, *, restart_clock: bool = True) -> None:
        """Start (or restart) waiting for the session's readiness."""
        runtime = self._runtimes.of(session_id)
        runtime.cancel_waiter()
        if restart_clock or runtime.started is None:
            runtime.started = time.monotonic()
        runtime.waiter = self._tasks.spawn(self._wait(session_id), name=f"ready-{session_id}")

    async def _wait(self, session_id: str) -> None:
        timeout = self._settings.ready_timeout_seconds
        try:
            placement = await self._backend.wait_ready(session_id, timeout=timeout)
        except SessionFailed as e:
            await self._settle(session_id, failure=(e.reason, e.detail))
        except TimeoutError:
            message = f"not ready after {timeout:g} s"
            if waiting := self._backend.waiting_on(session_id):
                message += f": still waiting for {waiting}"
            await self._settle(session_id, failure=("Timeout", message))
        else:
            await self._settle(session_id, container_id=placement.container_id)

    async def _settle(
        self,
        session_id: str,
        *,
        failure: tuple[str, str] | None = None,
        container_id: str | None = None,
    ) -> None:
        runtime = self._runtimes.peek(session_id)
        if runtime is None:
            return  # deleted meanwhile
        async with runtime.lock:
            session = await self._cache.load(session_id)
            if session is None or session.state != SessionState.INIT:
                return  # paused, deleted or failed meanwhile: nothing to settle
            if failure is not None:
                await self._fail(session, *failure)
                return
            now = utcnow()
            fields: dict[str, Any] = {"started_at": now, "last_activity_at": now}
            if container_id:
                fields["container_id"] = container_id
            try:
                await self._writer.transition(
                    session, SessionState.READY, EventKind.READY, "session is ready", **fields
                )
            except InvalidTransition:
                return  # another replica watching the same start settled it first
            began, runtime.started = runtime.started, None
            if began is not None:
                elapsed = time.monotonic() - began
                metrics.CREATE_DURATION.labels(self._backend.name).observe(elapsed)
