"""Waking a sleeping session for a request: one resume shared by every caller that waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from raworc_spawner.errors import SessionFailed
from raworc_spawner.loops import BackgroundTasks
from raworc_spawner.sessions import metrics
from raworc_spawner.sessions.events import EventBus
from raworc_spawner.sessions.model import Session, SessionEvent, SessionState
from raworc_spawner.sessions.runtime import Runtimes

S = SessionState


class Waker:
    """Resumes a sleeping (``idle`` or ``error``) session and waits until it settles.

    ``load`` reads a session (no access check: callers checked already) and ``resume`` asks the
    manager to make it ready.
    """

    def __init__(
        self,
        *,
        bus: EventBus,
        runtimes: Runtimes,
        tasks: BackgroundTasks,
        load: Callable[[str], Awaitable[Session]],
        resume: Callable[[str], Awaitable[object]],
    ) -> None:
        self._bus = bus
        self._runtimes = runtimes
        self._tasks = tasks
        self._load = load
        self._resume = resume

    async def wake(self, session_id: str, *, timeout: float) -> Session:
        """The session once ready; concurrent callers share one resume.

        Raises ``TimeoutError`` after ``timeout`` seconds and :class:`SessionFailed` if the
        session fails to start (or is paused or deleted meanwhile).
        """
        runtime = self._runtimes.of(session_id)
        task = runtime.wake
        if task is None or task.done():
            task = runtime.wake = self._tasks.spawn(self._wake(session_id), name="wake")
        return await asyncio.wait_for(asyncio.shield(task), timeout)

    async def _wake(self, session_id: str) -> Session:
        began = time.monotonic()
        async with self._bus.subscribe(session_id) as events:
            session = await self._load(session_id)
            if session.state in (S.IDLE, S.ERROR):
                metrics.WAKES.inc()
                await self._resume(session_id)
            session = await self._until_settled(session_id, events)
        metrics.WAKE_DURATION.observe(time.monotonic() - began)
        return session

    async def _until_settled(self, session_id: str, events: AsyncIterator[SessionEvent]) -> Session:
        while True:
            session = await self._load(session_id)
            if session.state in (S.READY, S.BUSY):
                return session
            if session.state in (S.ERROR, S.IDLE, S.DELETING):
                reason = session.termination_reason or session.state.value
                raise SessionFailed(reason, session.error or f"session is {session.state.value}")
            await anext(events)
