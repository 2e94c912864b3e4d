"""The sessions REST API at ``/api/v0/sessions``: thin handlers over the session manager."""

from __future__ import annotations

from tornado.iostream import StreamClosedError

from raworc_spawner.handlers.api_base import ApiHandler
from raworc_spawner.handlers.base import checked_session_id, route
from raworc_spawner.sessions.requests import (
    parse_create,
    parse_remix,
    parse_state,
    parse_states,
    parse_update,
)
from raworc_spawner.sessions.spec import SpecOverrides

API = "/api/v0"
MAX_PAGE_SIZE = 500
MAX_LOG_TAIL = 100_000
LIST_ARGS = frozenset({"limit", "cursor", "state", "namespace", "q", "owner"})


class SessionsHandler(ApiHandler):
    """``GET`` lists the caller's sessions (all of them for admins); ``POST`` creates one."""

    async def get(self) -> None:
        """One page of sessions, newest first, filtered by state, namespace and text."""
        self.check_query(LIST_ARGS)
        page = await self.manager.list(
            self.principal,
            states=parse_states(self.query_list("state")),
            namespace=self.query_text("namespace"),
            text=self.query_text("q"),
            owner=self.query_text("owner"),
            limit=self.query_int("limit", default=50, low=1, high=MAX_PAGE_SIZE) or 50,
            cursor=self.query_text("cursor"),
        )
        items = [session.to_dict() for session in page.items]
        self.write_json({"items": items, "next_cursor": page.next_cursor})

    async def post(self) -> None:
        """Create a session; answers 201 with it once its compute is being created."""
        request = parse_create(self.json_body())
        session = await self.manager.create(self.principal, request)
        self.set_header("Location", f"{API}/sessions/{session.id}")
        self.write_json(session.to_dict(), status=201)


class SessionHandler(ApiHandler):
    """One session: read, change its fields, delete it."""

    async def get(self, raw_id: str) -> None:
        """The session."""
        session = await self.manager.get(self.principal, checked_session_id(raw_id))
        self.write_json(session.to_dict())

    async def patch(self, raw_id: str) -> None:
        """Change name, prompt, agent ids, metadata or idle timeout."""
        session_id = checked_session_id(raw_id)
        changes = parse_update(self.json_body())
        session = await self.manager.update(self.principal, session_id, changes)
        self.write_json(session.to_dict())

    async def delete(self, raw_id: str) -> None:
        """Remove compute, workspace and record; answers 204 once they are gone."""
        await self.manager.delete(self.principal, checked_session_id(raw_id))
        self.set_status(204)
        self.finish()


class SessionStateHandler(ApiHandler):
    """``PUT {"state": "idle"|"ready"|"busy"}``: pause, resume, or an agent's busy flag.

    ``"new_workspace": true`` with ``ready`` resumes on a new, empty workspace when the old one
    is lost (``WorkspaceLost``) or on another backend.
    """

    async def put(self, raw_id: str) -> None:
        """Move the session to the requested state."""
        session_id = checked_session_id(raw_id)
        request = parse_state(self.json_body())
        overrides = SpecOverrides(new_workspace=request.new_workspace)
        session = await self.manager.set_state(
            self.principal, session_id, request.state, overrides=overrides
        )
        self.write_json(session.to_dict())


class SessionRemixHandler(ApiHandler):
    """``POST``: a new session whose workspace starts as a copy of this one's."""

    async def post(self, raw_id: str) -> None:
        """Create the remix; fields not given are inherited from the parent."""
        changes = parse_remix(self.json_body(allow_empty=True))
        session = await self.manager.remix(self.principal, checked_session_id(raw_id), changes)
        self.set_header("Location", f"{API}/sessions/{session.id}")
        self.write_json(session.to_dict(), status=201)


class SessionActivityHandler(ApiHandler):
    """``POST``: an agent's heartbeat; keeps a session from being culled as idle."""

    async def post(self, raw_id: str) -> None:
        """Note activity now (written in the next batch); answers 204."""
        session_id = checked_session_id(raw_id)
        await self.manager.heartbeat(self.principal, session_id)  # 404 unless it may see it
        self.set_status(204)
        self.finish()


class SessionStatusHandler(ApiHandler):
    """The session with its compute and workspace as the backend sees them now."""

    async def get(self, raw_id: str) -> None:
        """Session, backend detail and recent events."""
        status = await self.manager.status(self.principal, checked_session_id(raw_id))
        self.write_json(status)


class SessionLogsHandler(ApiHandler):
    """The session's output as ``text/plain``; ``follow`` streams it, a flush per line."""

    async def get(self, raw_id: str) -> None:
        """Lines of output: the last ``tail`` (default all), then more with ``follow``."""
        self.check_query(frozenset({"tail", "follow"}))
        tail = self.query_int("tail", default=None, low=1, high=MAX_LOG_TAIL)
        follow = self.query_bool("follow")
        lines = await self.manager.logs(
            self.principal, checked_session_id(raw_id), tail=tail, follow=follow
        )
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        try:
            await self.stream_items(lines, self._write_line)
        except StreamClosedError:
            return
        self.finish()

    async def _write_line(self, line: str) -> None:
        self.write(line.encode("utf-8", errors="replace"))
        await self.flush()


SESSION = rf"{API}/sessions/([^/]+)"

routes = [
    route(rf"{API}/sessions", SessionsHandler, "sessions"),
    route(SESSION, SessionHandler, "session"),
    route(rf"{SESSION}/state", SessionStateHandler, "session_state"),
    route(rf"{SESSION}/status", SessionStatusHandler, "session_status"),
    route(rf"{SESSION}/logs", SessionLogsHandler, "session_logs"),
    route(rf"{SESSION}/remix", SessionRemixHandler, "session_remix"),
    route(rf"{SESSION}/activity", SessionActivityHandler, "session_activity"),
]
