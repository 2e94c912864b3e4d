"""An in-memory fan-out of session events to live subscribers (SSE streams, pages, the hub).

Events are persisted by the store; this bus only delivers them to whoever is listening now. Each
subscriber has a bounded queue: a subscriber too slow to keep up loses its oldest events and is
told so with a ``lagged`` marker, rather than growing memory without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from raworc_spawner.sessions.model import SessionEvent

ALL = "*"


class EventBus:
    """Publish session events; subscribe to one session's events or to all of them."""

    def __init__(self, *, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[SessionEvent | None]]] = {}

    def publish(self, event: SessionEvent) -> None:
        """Deliver ``event`` to the session's subscribers and to everyone subscribed to all."""
        for key in (event.session_id, ALL):
            for queue in self._subscribers.get(key, ()):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(event)

    def close_session(self, session_id: str) -> None:
        """End the streams of a session's subscribers (it was deleted)."""
        for queue in self._subscribers.get(session_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def subscriber_count(self) -> int:
        """How many live subscriptions exist."""
        return sum(len(queues) for queues in self._subscribers.values())

    @asynccontextmanager
    async def subscribe(self, session_id: str = ALL) -> AsyncIterator[AsyncIterator[SessionEvent]]:
        """Yield an async iterator of events published from now on.

        The iterator ends when the session is deleted (never for ``ALL``)::

            async with bus.subscribe(session_id) as events:
                async for event in events:
                    ...
        """
        queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue(self._queue_size)
        self._subscribers.setdefault(session_id, set()).add(queue)
        try:
            yield _drain(queue)
        finally:
            queues = self._subscribers.get(session_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[session_id]


async def _drain(queue: asyncio.Queue[SessionEvent | None]) -> AsyncIterator[SessionEvent]:
    while (event := await queue.get()) is not None:
        yield event
