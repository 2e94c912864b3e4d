"""What the harness measures inside a process: CPU, memory, event-loop lag, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_BYTES


def peak_rss_bytes() -> int:
    """The largest resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of durations given in seconds, in milliseconds."""
    return {f"p{p}_ms": round(percentile(seconds, p) * 1000, 1) for p in (50, 95, 99)} | {
        "max_ms": round(max(seconds, default=math.nan) * 1000, 1),
        "count": len(seconds),
    }


@dataclass
class Window:
    """CPU time and memory of this process over a stretch of wall time."""

    started: float = field(default_factory=time.monotonic)
    cpu_started: float = field(default_factory=cpu_seconds)
    rss_started: int = field(default_factory=rss_bytes)

    def close(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        return {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu_seconds() - self.cpu_started, 3),
            "rss_start_mb": round(self.rss_started / MB, 1),
            "rss_end_mb": round(rss_bytes() / MB, 1),
            "peak_rss_mb": round(peak_rss_bytes() / MB, 1),
        }


class LoopLag:
    """Samples how late the event loop wakes up from a short sleep, and the RSS meanwhile.

    The lag of one sample is how much longer than ``interval`` a ``sleep(interval)`` took:
    the time some callback held the loop. :meth:`take` returns the largest lag and the largest
    RSS seen since the previous call.
    """

    def __init__(self, *, interval: float = 0.01) -> None:
        self.interval = interval
        self.max_lag = 0.0
        self.max_rss = 0
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def take(self) -> dict[str, float]:
        """Largest and p99 lag (ms) and largest RSS (MB) since the last call; then reset."""
        result = {
            "max_loop_lag_ms": round(self.max_lag * 1000, 1),
            "p99_loop_lag_ms": round(percentile(self.lags, 99) * 1000, 1),
            "max_rss_mb": round(self.max_rss / MB, 1),
        }
        self.max_lag, self.max_rss, self.lags = 0.0, 0, []
        return result

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        samples = 0
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - before - self.interval)
            self.max_lag = max(self.max_lag, lag)
            self.lags.append(lag)
            samples += 1
            if samples % 10 == 0:
                self.max_rss = max(self.max_rss, rss_bytes())
