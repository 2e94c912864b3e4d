"""Browser pages: log in, list, create, watch, pause, resume and delete sessions.

Server-rendered HTML (Jinja2, autoescaped: names and prompts are user input) that works without
JavaScript; small static modules then keep it live over the API's Server-Sent Events. What every
page shares (login, XSRF, security headers, error pages) is :class:`PageHandler`, in
:mod:`raworc_spawner.handlers.pages_base`.

Routes: ``/login``, ``/logout``, ``/sessions`` (list), ``/sessions/new`` (form),
``/sessions/{id}`` (detail), ``/sessions/{id}/panel`` (the detail's live part, for scripts),
``/sessions/{id}/pause|resume`` and ``/sessions/{id}/delete`` (confirm, then delete).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from urllib.parse import urlencode

from raworc_spawner import errors
from raworc_spawner.handlers import pages_view as view
from raworc_spawner.handlers.auth import TokenAuthenticator, token_digest
from raworc_spawner.handlers.base import (
    LOGIN_COOKIE,
    LOGIN_MAX_AGE_DAYS,
    checked_session_id,
    route,
)
from raworc_spawner.handlers.pages_base import PageHandler, is_local_path
from raworc_spawner.sessions.model import SessionState
from raworc_spawner.sessions.requests import parse_create, parse_states, problems_of

PAGE_SIZE = 25
LOG_TAIL = 200
LOG_READ_SECONDS = 2.0
MAX_TOKEN_LENGTH = 4096
#: Notices a redirect may ask the list or login page to show.
NOTICES = {
    "deleted": "The session was deleted.",
    "logged-out": "You are logged out.",
}
#: Form field → its label, in form order (error summaries link to the fields).
FORM_FIELDS = {
    "name": "Name",
    "namespace": "Namespace",
    "starting_prompt": "Starting prompt",
    "profile": "Profile",
}
#: State-changing actions on the detail page → the state they ask for.
ACTIONS = {"pause": SessionState.IDLE, "resume": SessionState.READY}


def session_url(session_id: str, action: str = "") -> str:
    """The detail page of a session, or one of its action URLs."""
    return f"/sessions/{session_id}" + (f"/{action}" if action else "")


class RootPage(PageHandler):
    """``/``: the sessions list."""

    auth_required = False

    async def get(self) -> None:
        """Redirect to the list."""
        self.redirect("/sessions")


class LoginPage(PageHandler):
    """Paste a token; on success the browser gets a signed, HttpOnly login cookie."""

    auth_required = False

    async def get(self) -> None:
        """The login form (or straight on, when already logged in)."""
        self.check_query(frozenset({"next", "notice"}))
        target = self._next()
        if self.login_principal() is not None:
            self.redirect(target)
            return
        notice = NOTICES.get(self.get_query_argument("notice", ""))
        self.render_page("login.html", next=target, error=None, notice=notice)

    async def post(self) -> None:
        """Check the token; set the cookie and go on, or show the form again."""
        token = self.get_body_argument("token", "")[:MAX_TOKEN_LENGTH]
        target = self._next(self.get_body_argument("next", ""))
        auth: TokenAuthenticator = self.settings["auth"]
        if auth.authenticate(token) is None:
            error = "That token is not valid. Check it and paste it again."
            if not token:
                error = "Paste your API token to log in."
            self.render_page("login.html", status=422, next=target, error=error, notice=None)
            return
        self.set_signed_cookie(LOGIN_COOKIE, token_digest(token), expires_days=LOGIN_MAX_AGE_DAYS)
        self.redirect(target, status=303)

    def _next(self, given: str | None = None) -> str:
        target = given if given is not None else self.get_query_argument("next", "")
        return target if is_local_path(target) else "/sessions"


class LogoutPage(PageHandler):
    """``POST /logout``: forget the login cookie."""

    auth_required = False

    async def post(self) -> None:
        """Clear the cookie and show the login page."""
        self.clear_cookie(LOGIN_COOKIE)
        self.redirect("/login?notice=logged-out", status=303)


class SessionListPage(PageHandler):
    """The sessions the user may see, filtered by state and text, a page at a time."""

    FILTERS = ("state", "q", "namespace", "owner")

    async def get(self) -> None:
        """One page of sessions, newest first."""
        self.check_query(frozenset({*self.FILTERS, "cursor", "notice"}))
        filters = {name: (self.query_text(name) or "").strip() for name in self.FILTERS}
        if not self.principal.admin:
            filters["owner"] = ""
        cursor = self.query_text("cursor") or None
        page = await self.manager.list(
            self.principal,
            states=parse_states([filters["state"]] if filters["state"] else []),
            text=filters["q"] or None,
            namespace=filters["namespace"] or None,
            owner=filters["owner"] or None,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        catalog = self.manager.profiles()
        query = {name: value for name, value in filters.items() if value}
        self.render_page(
            "list.html",
            sessions=[session.to_dict() for session in page.items],
            profiles={s.id: view.profile_text(s.profile, catalog) for s in page.items},
            filters=filters,
            filtered=bool(query),
            states=view.STATES,
            first_url="/sessions?" + urlencode(query) if cursor else None,
            next_url=_next_page(query, page.next_cursor),
            notice=NOTICES.get(self.get_query_argument("notice", "")),
        )


def _next_page(query: Mapping[str, str], cursor: str | None) -> str | None:
    return "/sessions?" + urlencode({**query, "cursor": cursor}) if cursor else None


class NewSessionPage(PageHandler):
    """The create form; errors come back next to the field they are about."""

    async def get(self) -> None:
        """An empty form."""
        self.check_query(frozenset())
        values = {"name": "", "namespace": "", "starting_prompt": "", "profile": ""}
        self._form(values, {})

    async def post(self) -> None:
        """Validate with the API's rules, create, and go to the new session's page."""
        values = {
            "name": self.get_body_argument("name", ""),
            "namespace": self.get_body_argument("namespace", ""),
            "starting_prompt": self.get_body_argument("starting_prompt", "", strip=False),
            "profile": self.get_body_argument("profile", ""),
        }
        # An empty optional field is left out, so the server's default applies.
        body = {key: value for key, value in values.items() if value or key == "name"}
        try:
            session = await self.manager.create(self.principal, parse_create(body))
        except errors.ValidationError as e:  # every bad field, or the backend's own checks
            self._form(values, problems_of(e), status=422)
            return
        except errors.QuotaExceeded as e:
            self._form(values, {"": e.message}, status=429)
            return
        self.redirect(session_url(session.id), status=303)

    def _form(self, values: dict[str, str], problems: dict[str, str], *, status: int = 200) -> None:
        self.render_page(
            "new.html",
            status=status,
            values=values,
            problems=problems,
            fields=FORM_FIELDS,
            profiles=self.manager.profiles(),
            default_namespace=self.manager.default_namespace,
        )


class SessionPage(PageHandler):
    """A session: state and history, compute and workspace, events and logs, live."""

    async def get(self, raw_id: str) -> None:
        """The detail page."""
        self.check_query(frozenset())
        session_id = checked_session_id(raw_id)
        context = await self.session_context(session_id)
        events = await self.manager.events(self.principal, session_id, limit=1000)
        self.render_page(
            "detail.html",
            **context,
            history=[event.to_dict() for event in reversed(events)],
            last_seq=max((event.seq for event in events), default=0),
            log_lines=await self._log_tail(session_id),
            log_tail=LOG_TAIL,
        )

    async def _log_tail(self, session_id: str) -> list[str] | None:
        """The last lines of output, or None if the backend cannot say quickly."""
        try:
            async with asyncio.timeout(LOG_READ_SECONDS):
                lines = await self.manager.logs(
                    self.principal, session_id, tail=LOG_TAIL, follow=False
                )
                async with contextlib.aclosing(lines):  # type: ignore[type-var]
                    return [line async for line in lines]
        except (TimeoutError, errors.BackendError):
            return None


class SessionPanelFragment(PageHandler):
    """The live part of the detail page alone, re-fetched by its script on state changes."""

    async def get(self, raw_id: str) -> None:
        """State, failure explanation, actions, compute and workspace."""
        self.check_query(frozenset())
        context = await self.session_context(checked_session_id(raw_id))
        self.render_page("_panel.html", **context)


class SessionActionPage(PageHandler):
    """``POST /sessions/{id}/pause`` or ``/resume``, then back to the session."""

    async def post(self, raw_id: str, action: str) -> None:
        """Ask the manager for the state change."""
        session_id = checked_session_id(raw_id)
        await self.manager.set_state(self.principal, session_id, ACTIONS[action])
        self.redirect(session_url(session_id), status=303)


class DeleteSessionPage(PageHandler):
    """``GET`` asks for confirmation; ``POST`` deletes compute, workspace and record."""

    async def get(self, raw_id: str) -> None:
        """The confirmation page."""
        self.check_query(frozenset())
        session = await self.manager.get(self.principal, checked_session_id(raw_id))
        self.render_page("confirm_delete.html", session=session.to_dict())

    async def post(self, raw_id: str) -> None:
        """Delete, then show the list."""
        await self.manager.delete(self.principal, checked_session_id(raw_id))
        self.redirect("/sessions?notice=deleted", status=303)


SESSION_PAGE = r"/sessions/([^/]+)"

routes = [
    route(r"/", RootPage, "page_root"),
    route(r"/login", LoginPage, "page_login"),
    route(r"/logout", LogoutPage, "page_logout"),
    route(r"/sessions", SessionListPage, "page_sessions"),
    route(r"/sessions/new", NewSessionPage, "page_new_session"),
    route(SESSION_PAGE, SessionPage, "page_session"),
    route(rf"{SESSION_PAGE}/panel", SessionPanelFragment, "page_session_panel"),
    route(rf"{SESSION_PAGE}/(pause|resume)", SessionActionPage, "page_session_action"),
    route(rf"{SESSION_PAGE}/delete", DeleteSessionPage, "page_session_delete"),
]
