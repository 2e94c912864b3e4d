"""The base of the browser pages' handlers: login, security headers, HTML errors, rendering.

Pages authenticate with the signed login cookie set by ``/login`` (or a bearer header); a
browser without a login is sent to the login page. Every form post carries Tornado's XSRF token.
Forms are small, so their bodies are read whole (Tornado parses the fields). Every page carries a
strict Content-Security-Policy: scripts and styles come only from ``/static/``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import tornado.web

from raworc_spawner import errors
from raworc_spawner.handlers import pages_view as view
from raworc_spawner.handlers.base import ApiError, CrossSite, ErrorReply, Handler

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: Headers on every page (and, but for the CSP, on static files).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def is_local_path(target: str) -> bool:
    """Whether ``target`` is a path on this server (so redirecting there is safe)."""
    return (
        target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not any(ord(ch) < 33 or ch == "\\" for ch in target)
    )


def login_url(next_path: str) -> str:
    """The login page, returning to ``next_path`` afterwards."""
    return "/login?" + urlencode({"next": next_path}) if is_local_path(next_path) else "/login"


class StaticFiles(tornado.web.StaticFileHandler):
    """Static files with ``nosniff`` and the other protective headers but the CSP."""

    def set_default_headers(self) -> None:
        """Protective headers; scripts and styles must be served with their real type."""
        for name, value in SECURITY_HEADERS.items():
            if name != "Content-Security-Policy":
                self.set_header(name, value)


class PageHandler(Handler):
    """An HTML page: login-cookie auth (redirecting browsers to log in), XSRF, HTML errors."""

    cross_site = CrossSite.TOKEN

    def set_default_headers(self) -> None:
        """HTML, never cached, with the security headers."""
        super().set_default_headers()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def is_https(self) -> bool:
        """Whether the browser reached us over HTTPS (directly or through a proxy)."""
        forwarded = self.request.headers.get("X-Forwarded-Proto", "")
        first = forwarded.split(",")[0].strip().lower()
        return self.request.protocol == "https" or first == "https"

    def set_cookie(self, name: str, value: str | bytes, *args: Any, **kwargs: Any) -> None:
        """Cookies from pages are HttpOnly, SameSite=Lax, and Secure over HTTPS."""
        kwargs.setdefault("httponly", True)
        kwargs.setdefault("samesite", "Lax")
        kwargs.setdefault("secure", self.is_https())
        super().set_cookie(name, value, *args, **kwargs)

    def refuse_unauthenticated(self) -> None:
        """Send a browser to the login page; a form posted without a login gets a 401 page."""
        if self.request.method in ("GET", "HEAD"):
            self.redirect(login_url(self.request.uri or "/sessions"))
            return
        raise ApiError(401, "unauthorized", "Your login has expired. Log in, then try again.")

    # -- rendering ----------------------------------------------------------------------------

    def base_context(self) -> dict[str, Any]:
        """What every template may use: the user, the XSRF token, static URLs."""
        return {
            "user": getattr(self, "principal", None),
            "xsrf_token": self.xsrf_token.decode(),
            "static_url": self.static_url,
            "path": self.request.path,
            "backend": self.manager.backend_name,
        }

    def render_page(self, template: str, *, status: int = 200, **context: Any) -> None:
        """Finish the request with a rendered template."""
        self.set_status(status)
        self.finish(view.render(template, {**self.base_context(), **context}))

    def render_error(self, reply: ErrorReply) -> None:
        """An HTML error page in plain words; never a traceback."""
        title, message = error_words(reply, request_id=self.request_id)
        try:
            self.render_page("error.html", status=reply.status, title=title, message=message)
        except Exception:  # the error page must not fail; the cause is in the server log
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"{title}\n\n{message}\n")

    # -- session detail -----------------------------------------------------------------------

    async def session_context(self, session_id: str) -> dict[str, Any]:
        """Everything the detail page and its live panel show about a session."""
        status = await self.manager.status(self.principal, session_id)
        session = status["session"]
        backend = status.get("backend") or {}
        return {
            "session": session,
            "state": view.state_view(session["state"]),
            "explanation": view.explain(session),
            "sleep_note": view.sleep_note(session),
            "actions": view.actions_for(session["state"]),
            "compute": backend,
            "kube_events": backend.get("events") or [],
        }


def error_words(reply: ErrorReply, *, request_id: str) -> tuple[str, str]:
    """A title and a sentence for an error page."""
    status, exc = reply.status, reply.cause
    title = view.ERROR_TITLES.get(status, "Something went wrong")
    if isinstance(exc, errors.SessionNotFound):
        return "Session not found", (
            "There is no such session: it may have been deleted, or it belongs to someone else."
        )
    if reply.message is not None:
        return title, reply.message
    if isinstance(exc, tornado.web.HTTPError) and "xsrf" in (exc.log_message or "").lower():
        return "This form has expired", (
            "The form was out of date or came from another site, so nothing was changed. Go "
            "back, reload the page and try again."
        )
    if status >= 500:
        return title, f"The server could not finish this request (request id {request_id})."
    return title, view.ERROR_MESSAGES.get(status, "The request could not be completed.")
