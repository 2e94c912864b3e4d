"""Session events: a JSON list, or a Server-Sent Events stream of recorded then live events.

An SSE stream sends each event as ``id: <seq>``, ``event: <kind>``, ``data: <event JSON>``; a
reconnecting client's ``Last-Event-ID`` (or ``?after=``) skips what it has seen. A comment line
goes out every ``sse_heartbeat_seconds`` (setting, default 15) so proxies keep the connection
open. A session's stream ends after its ``deleted`` event.
"""

from __future__ import annotations

import json

from tornado.iostream import StreamClosedError

from raworc_spawner.errors import ValidationError
from raworc_spawner.handlers.api import API
from raworc_spawner.handlers.api_base import ApiHandler
from raworc_spawner.handlers.base import checked_session_id, route
from raworc_spawner.sessions.model import SessionEvent

MAX_SEQ = 2**62
MAX_EVENTS = 1000
EVENT_STREAM = "text/event-stream"


class EventStreamHandler(ApiHandler):
    """Writes Server-Sent Events."""

    def wants_stream(self) -> bool:
        """Whether the client asked for ``text/event-stream``."""
        return EVENT_STREAM in self.request.headers.get("Accept", "")

    def last_event_id(self, default: int) -> int:
        """The ``Last-Event-ID`` a reconnecting client sent, or ``default``."""
        header = self.request.headers.get("Last-Event-ID", "").strip()
        if not header:
            return default
        if not header.isdigit() or int(header) > MAX_SEQ:
            raise ValidationError("Last-Event-ID", f"must be an event sequence number: {header!r}")
        return int(header)

    def start_stream(self) -> None:
        """Send the stream's headers and its reconnection delay."""
        self.set_header("Content-Type", f"{EVENT_STREAM}; charset=utf-8")
        self.set_header("X-Accel-Buffering", "no")
        self.write("retry: 3000\n\n")

    async def send_event(self, event: SessionEvent) -> None:
        """One event; events without a sequence number (``deleted``) carry no id."""
        lines = f"id: {event.seq}\n" if event.seq else ""
        lines += f"event: {event.kind}\ndata: {json.dumps(event.to_dict())}\n\n"
        self.write(lines)
        await self.flush()

    async def heartbeat(self) -> None:
        """A comment line, ignored by clients, that keeps idle connections alive."""
        self.write(": keep-alive\n\n")
        await self.flush()

    @property
    def heartbeat_seconds(self) -> float:
        """Seconds between heartbeats."""
        return float(self.settings.get("sse_heartbeat_seconds", 15.0))


class SessionEventsHandler(EventStreamHandler):
    """``GET /sessions/{id}/events``: JSON list by default, SSE on ``Accept: text/event-stream``."""

    async def get(self, raw_id: str) -> None:
        """Events after ``after`` (a sequence number), oldest first."""
        session_id = checked_session_id(raw_id)
        self.check_query(frozenset({"after", "limit"}))
        after = self.query_int("after", default=0, low=0, high=MAX_SEQ) or 0
        if not self.wants_stream():
            limit = self.query_int("limit", default=200, low=1, high=MAX_EVENTS) or 200
            events = await self.manager.events(
                self.principal, session_id, after_seq=after, limit=limit
            )
            self.write_json([event.to_dict() for event in events])
            return
        await self._stream(session_id, self.last_event_id(after))

    async def _stream(self, session_id: str, after: int) -> None:
        self._last_seq = after
        async with self.manager.subscribe(self.principal, session_id) as live:
            recorded = await self.manager.events(
                self.principal, session_id, after_seq=after, limit=MAX_EVENTS
            )
            self.start_stream()
            try:
                for event in recorded:
                    await self._send_new(event)
                await self.flush()
                await self.stream_items(
                    live, self._send_new, heartbeat=self.heartbeat_seconds, on_idle=self.heartbeat
                )
            except StreamClosedError:
                return
        self.finish()

    async def _send_new(self, event: SessionEvent) -> None:
        """Send an event unless the replay already did (live events may overlap it)."""
        if event.seq and event.seq <= self._last_seq:
            return
        self._last_seq = max(self._last_seq, event.seq)
        await self.send_event(event)


class AllEventsHandler(EventStreamHandler):
    """``GET /api/v0/events``: live events of every session the caller may see (always SSE)."""

    async def get(self) -> None:
        """Stream until the client goes away."""
        self.check_query(frozenset())
        async with self.manager.subscribe(self.principal) as live:
            self.start_stream()
            try:
                await self.flush()
                await self.stream_items(
                    live, self.send_event, heartbeat=self.heartbeat_seconds, on_idle=self.heartbeat
                )
            except StreamClosedError:
                return
        self.finish()


routes = [
    route(rf"{API}/sessions/([^/]+)/events", SessionEventsHandler, "session_events"),
    route(rf"{API}/events", AllEventsHandler, "events"),
]
