"""Session activity, noted in memory and written in batches.

A proxied request, an API call or a heartbeat notes activity; writing each one would cost a
database write per request. Instead the latest time per session is kept here and flushed in one
transaction every ``flush_interval`` seconds (and before the culler looks), so the cost is one
write per session per interval however busy it is.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from raworc_spawner.loops import PeriodicTask
from raworc_spawner.sessions.model import utcnow

log = logging.getLogger(__name__)


class ActivityStore(Protocol):
    """What the tracker needs from the store."""

    async def touch(self, activity: Mapping[str, datetime]) -> None: ...


class ActivityTracker:
    """Coalesces activity notes into periodic batch writes."""

    def __init__(
        self,
        store: ActivityStore,
        *,
        flush_interval: float = 5.0,
        on_written: Callable[[Mapping[str, datetime]], None] = lambda batch: None,
    ) -> None:
        self.store = store
        self.on_written = on_written
        self.flush_interval = flush_interval
        self._pending: dict[str, datetime] = {}
        self._loop = PeriodicTask("activity-flush", self.flush, interval=flush_interval, log=log)
        self.writes = 0

    def note(self, session_id: str, when: datetime | None = None) -> None:
        """Record activity on a session now (or at ``when``); costs no I/O."""
        when = when or utcnow()
        previous = self._pending.get(session_id)
        if previous is None or when > previous:
            self._pending[session_id] = when

    def pending(self, session_id: str) -> datetime | None:
        """Activity noted but not yet written, if any."""
        return self._pending.get(session_id)

    def forget(self, session_id: str) -> None:
        """Drop pending activity of a deleted session."""
        self._pending.pop(session_id, None)

    async def flush(self) -> None:
        """Write every pending note in one batch."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await self.store.touch(batch)
            self.writes += 1
            self.on_written(batch)
        except Exception:
            for session_id, when in batch.items():
                self.note(session_id, when)
            raise

    def start(self) -> None:
        """Flush periodically in the background."""
        self._loop.start()

    async def close(self) -> None:
        """Stop the periodic flush and write what is pending."""
        await self._loop.close()
        with contextlib.suppress(Exception):
            await self.flush()
