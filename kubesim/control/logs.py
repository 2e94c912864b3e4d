"""Container logs: bounded line buffers per container, with followers for ``follow=true``."""

from __future__ import annotations

import asyncio
from collections import deque

from ..objects import micro_timestamp

LogKey = tuple[str, str, str]  # namespace, pod, container
MAX_LINES = 10000


class LogBook:
    """Lines each container has written, and the queues of clients following them."""

    def __init__(self) -> None:
        self._lines: dict[LogKey, deque[tuple[str, str]]] = {}
        self._followers: dict[LogKey, set[asyncio.Queue[str | None]]] = {}

    def append(self, key: LogKey, text: str) -> None:
        """Add one line (without its newline) and hand it to every follower."""
        stamp = micro_timestamp()
        self._lines.setdefault(key, deque(maxlen=MAX_LINES)).append((stamp, text))
        for queue in self._followers.get(key, ()):
            queue.put_nowait(f"{stamp} {text}")

    def read(self, key: LogKey, *, tail: int | None = None) -> list[str]:
        """Lines as ``"<RFC3339 timestamp> <text>"``, the last ``tail`` ones when given."""
        lines = [f"{stamp} {text}" for stamp, text in self._lines.get(key, ())]
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return lines

    def follow(self, key: LogKey) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._followers.setdefault(key, set()).add(queue)
        return queue

    def unfollow(self, key: LogKey, queue: asyncio.Queue[str | None]) -> None:
        self._followers.get(key, set()).discard(queue)

    def end(self, key: LogKey) -> None:
        """The container stopped: followers see the end of the stream."""
        for queue in self._followers.pop(key, set()):
            queue.put_nowait(None)

    def forget_pod(self, namespace: str, pod: str) -> None:
        for key in [k for k in self._lines if k[:2] == (namespace, pod)]:
            self.end(key)
            del self._lines[key]

    def close(self) -> None:
        for key in list(self._followers):
            self.end(key)
