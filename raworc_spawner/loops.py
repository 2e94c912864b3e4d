"""Background loops: one periodic-task helper and one back-off, used by every loop of the server.

The culler, the reconciler, the activity flush and the Kubernetes informers all run "do a pass,
wait, repeat; on failure wait longer". :class:`PeriodicTask` is that loop, written once:

>>> import asyncio, logging
>>> async def demo() -> int:
...     passes = []
...     async def tick() -> None:
...         passes.append(1)
...     task = PeriodicTask("demo", tick, interval=0.01, log=logging.getLogger("demo"))
...     task.start()
...     await asyncio.sleep(0.05)
...     await task.close()
...     return len(passes) >= 2
>>> asyncio.run(demo())
True
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Backoff:
    """Exponential delays: ``initial``, then times ``factor`` per failure, capped at ``maximum``.

    Each delay is spread by ±``jitter`` (a fraction) so that many clients do not retry in step.
    Seconds throughout.

    >>> b = Backoff(initial=1.0, maximum=5.0, jitter=0.0)
    >>> [b.next() for _ in range(5)]
    [1.0, 2.0, 4.0, 5.0, 5.0]
    >>> b.reset(); b.next()
    1.0
    """

    initial: float = 0.1
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.1
    _current: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError(
                f"Backoff needs 0 < initial <= maximum and factor >= 1, got initial="
                f"{self.initial}, maximum={self.maximum}, factor={self.factor}"
            )

    def next(self) -> float:
        """The next delay in seconds (grows until :meth:`reset`)."""
        base = self.initial if self._current == 0 else self._current * self.factor
        self._current = min(self.maximum, base)
        spread = self._current * self.jitter
        return max(0.0, self._current + random.uniform(-spread, spread))

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self._current = 0.0


class PeriodicTask:
    """Run ``action`` every ``interval`` seconds in one background task until closed.

    A pass that raises is logged (with the attempt number) and the next pass waits a back-off
    delay instead of ``interval``; a pass that succeeds resets the back-off. ``first_delay``
    (seconds, default ``interval``) is the wait before the first pass: 0 runs it at once.
    """

    def __init__(
        self,
        name: str,
        action: Callable[[], Awaitable[object]],
        *,
        interval: float,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        first_delay: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"PeriodicTask {name!r}: interval must be > 0 seconds, got {interval}")
        self.name = name
        self.interval = interval
        self._action = action
        self._log = log
        self._first_delay = interval if first_delay is None else first_delay
        self._backoff = backoff or Backoff(initial=min(1.0, interval), maximum=max(interval, 60))
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the loop is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin the loop (no-op when it already runs)."""
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def close(self) -> None:
        """Stop the loop, cancelling a pass in progress; returns once it has stopped."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        delay = self._first_delay
        failures = 0
        while True:
            await asyncio.sleep(delay)
            try:
                await self._action()
            except Exception:
                failures += 1
                delay = self._backoff.next()
                self._log.exception(
                    "%s: pass #%d failed; will retry in %.1f s", self.name, failures, delay
                )
            else:
                failures = 0
                self._backoff.reset()
                delay = self.interval


class BackgroundTasks:
    """A set of fire-and-forget tasks that are kept referenced, logged when they fail, and
    cancelled together on close."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
        self._log = log
        self._tasks: set[asyncio.Task[object]] = set()

    def spawn(self, coro: Awaitable[T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` in the background; its failure is logged, not lost."""
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every task still running and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("background task %s failed", task.get_name(), exc_info=task.exception())
