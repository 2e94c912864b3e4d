"""The progress a spawn shows on the hub's spawn page, built from the session's events.

:class:`ProgressLog` collects the steps of one start (the spawner's own and the session's
events, including the backend's and Kubernetes' events) and replays them to every reader from
the beginning, then live, until the start is over.

Example::

    log = ProgressLog()
    log.add("Requesting a session", progress=5)
    async for step in log.follow():   # in another task
        print(step["progress"], step["message"])
    log.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from raworc_spawner.sessions.model import SessionEvent

#: Progress (out of 100) at which each kind of session event is shown.
KIND_PROGRESS = {"created": 15, "resuming": 15, "restarting": 15, "ready": 90}
#: Highest progress reached by backend steps before the session is ready.
BACKEND_CEILING = 80
BACKEND_STEP = 10


class ProgressLog:
    """The ordered progress steps of one start; readers replay them, then follow live."""

    def __init__(self) -> None:
        self._steps: list[dict[str, Any]] = []
        self._progress = 0
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        """Whether the start this log belongs to is over."""
        return self._closed

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The steps so far (``{"progress": int, "message": str}``)."""
        return list(self._steps)

    def add(self, message: str, *, progress: int | None = None) -> None:
        """Append a step; progress never goes backwards (omitted: stays where it is)."""
        if self._closed:
            return
        if progress is not None:
            self._progress = max(self._progress, min(progress, 100))
        self._steps.append({"progress": self._progress, "message": message})
        self._wake()

    def add_event(self, event: SessionEvent) -> None:
        """Append a session event as a step, with a progress that fits its kind."""
        progress = KIND_PROGRESS.get(event.kind)
        if progress is None and event.kind in ("progress", "warning"):
            progress = min(self._progress + BACKEND_STEP, BACKEND_CEILING)
        self.add(describe_event(event), progress=progress)

    def close(self) -> None:
        """End the log: followers finish after the last step."""
        self._closed = True
        self._wake()

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every step from the first, then new ones as they come, until :meth:`close`."""
        seen = 0
        while True:
            while seen < len(self._steps):
                yield dict(self._steps[seen])
                seen += 1
            if self._closed:
                return
            changed = self._changed
            await changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def describe_event(event: SessionEvent) -> str:
    """A session event as one line for the spawn page."""
    if event.kind == "failed":
        return f"Session failed ({event.reason or 'Error'}): {event.message}"
    if event.kind == "warning":
        return f"Warning ({event.reason}): {event.message}" if event.reason else event.message
    if event.kind == "progress" and event.reason:
        return f"{event.reason}: {event.message}"
    return event.message[:1].upper() + event.message[1:]
