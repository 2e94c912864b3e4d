"""The informer's watch reconnects back off by doubling, and a watch that worked starts over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from raworc_spawner.backends.kubernetes.apierrors import APIUnreachable
from raworc_spawner.backends.kubernetes.client import KubeClient
from raworc_spawner.backends.kubernetes.informer import Informer

LOGGER = "raworc_spawner.backends.kubernetes.informer"


class BrokenWatches:
    """A stand-in API server whose LIST works and whose watches all fail.

    With ``deliver_first`` each watch delivers one event before it fails (it was connected).
    """

    def __init__(self, *, deliver_first: bool = False) -> None:
        self.deliver_first = deliver_first
        self.watches = 0

    async def list_all(self, resource: str, namespace: str, **_: Any) -> tuple[list[Any], str]:
        return [], "1"

    async def watch(self, resource: str, namespace: str, **_: Any) -> AsyncIterator[dict[str, Any]]:
        self.watches += 1
        if self.deliver_first:
            yield {"type": "ADDED", "object": _pod(self.watches)}
        raise APIUnreachable("connection refused")


def _pod(n: int) -> dict[str, Any]:
    return {"metadata": {"name": f"p{n}", "resourceVersion": str(n + 1)}}


async def reconnect_delays(
    client: BrokenWatches, caplog: pytest.LogCaptureFixture, count: int
) -> list[float]:
    """The first ``count`` reconnect delays (seconds) the informer logs."""
    informer = Informer("pods", "ns", backoff_max_seconds=0.4)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    await informer.start(cast(KubeClient, client))
    try:
        async with asyncio.timeout(10):
            while informer.stats.reconnects < count:
                await asyncio.sleep(0.01)
    finally:
        await informer.close()
    records = [r for r in caplog.records if r.name == LOGGER and "reconnecting" in r.msg]
    return [float(r.args[2]) for r in records[:count]]  # type: ignore[index]


@pytest.mark.asyncio
async def test_watch_retries_wait_twice_as_long_each_time_up_to_the_maximum(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delays = await reconnect_delays(BrokenWatches(), caplog, 5)
    expected = [0.1, 0.2, 0.4, 0.4, 0.4]  # doubling from 0.1 s, capped at 0.4 s
    assert len(delays) == 5
    for delay, base in zip(delays, expected, strict=True):
        assert base * 0.8 <= delay <= base * 1.2, (delays, expected)


@pytest.mark.asyncio
async def test_a_watch_that_delivered_events_resets_the_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delays = await reconnect_delays(BrokenWatches(deliver_first=True), caplog, 4)
    assert len(delays) == 4
    assert all(0.08 <= delay <= 0.12 for delay in delays), delays
