"""Waiting for a starting session: on its events until ``ready``, then until its server listens.

Both waits read the session's live events (subscribed before the create or resume, so none is
missed) and end the start with :class:`SpawnFailed` and the session's reason when it fails or is
stopped meanwhile; the hub shows that message on its spawn page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from raworc_spawner.hub.progress import ProgressLog
from raworc_spawner.sessions.model import Session, SessionEvent, SessionState


class SpawnFailed(Exception):
    """A start that failed; ``jupyterhub_message`` is what the hub shows the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


async def wait_until_ready(
    session: Session, events: AsyncIterator[SessionEvent], log: ProgressLog
) -> Session:
    """Follow the session's events until ``ready``; raise on ``failed`` or a stop."""
    if session.state == SessionState.ERROR:  # the backend refused at once (no such command…)
        reason = session.error or f"session {session.id} failed ({session.termination_reason})"
        log.add(f"Session failed: {reason}", progress=100)
        raise SpawnFailed(reason)
    async for event in events:
        log.add_event(event)
        if event.kind == "ready":
            return session
        _raise_if_over(event)
    raise SpawnFailed("the session was deleted while starting")


async def wait_until_listening(
    url: str, events: AsyncIterator[SessionEvent], log: ProgressLog, *, timeout: float
) -> None:
    """Wait until the server at ``url`` accepts connections, or fail with the session's reason.

    A server that exits during its own start-up (a bad option, a missing extension) then fails
    the spawn with its last output instead of the hub's generic HTTP timeout. After ``timeout``
    seconds it stops waiting quietly: the hub checks HTTP itself afterwards.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    next_event: asyncio.Future[SessionEvent] = asyncio.ensure_future(anext(events))
    delay = 0.05
    try:
        async with asyncio.timeout(timeout):
            while not await _accepts_connections(host, port):
                done, _ = await asyncio.wait({next_event}, timeout=delay)
                if done:
                    event = next_event.result()
                    log.add_event(event)
                    _raise_if_over(event)
                    next_event = asyncio.ensure_future(anext(events))
                delay = min(delay * 2, 1.0)
    except StopAsyncIteration:
        raise SpawnFailed("the session was deleted while starting") from None
    except TimeoutError:
        log.add(f"The server does not listen at {url} yet; the hub keeps waiting")
    finally:
        next_event.cancel()


def _raise_if_over(event: SessionEvent) -> None:
    """Raise SpawnFailed if ``event`` ends a start: the session failed or was stopped."""
    if event.kind == "failed":
        raise SpawnFailed(f"{event.reason}: {event.message}")
    if event.kind == "paused":
        raise SpawnFailed(f"the session was stopped while starting: {event.message}")


async def _accepts_connections(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
