"""What every simulated controller shares: the registry, timers and the event recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import KubeSimConfig
from ..deletion import Deleter
from ..registry import Registry
from ..store import Store
from .events import EventRecorder


class Timers:
    """Delayed calls on the running loop, all cancellable at shutdown."""

    def __init__(self) -> None:
        self._handles: set[asyncio.TimerHandle] = set()
        self.closed = False

    def later(self, delay: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle | None:
        """Call ``fn(*args)`` after ``delay`` seconds; errors are logged, not raised."""
        if self.closed:
            return None
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._handles.discard(handle)
            if not self.closed:
                fn(*args)

        handle = loop.call_later(max(delay, 0.0), run)
        self._handles.add(handle)
        return handle

    def cancel(self, handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()
            self._handles.discard(handle)

    def close(self) -> None:
        self.closed = True
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


@dataclass
class Context:
    """The handles a controller works with."""

    config: KubeSimConfig
    store: Store
    registry: Registry
    deleter: Deleter
    recorder: EventRecorder
    timers: Timers
