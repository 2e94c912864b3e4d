"""The common base of every handler: the caller, request ids, metrics and errors mapped to HTTP.

This module is the one place that maps the error hierarchy of :mod:`raworc_spawner.errors` to
HTTP status codes (:data:`ERROR_STATUS`) and describes each error response (:class:`ErrorReply`).
Three kinds of handler derive from :class:`Handler`, side by side: the JSON API
(:class:`~raworc_spawner.handlers.api_base.ApiHandler`), the HTML pages
(:class:`~raworc_spawner.handlers.pages_base.PageHandler`) and the session proxy. Errors are
rendered as JSON ``{"error": {"code", "message"}}`` unless the handler renders them otherwise
(pages: an HTML page); a traceback only ever reaches the server log.

Callers authenticate with ``Authorization: Bearer <token>`` or, from the browser pages, with the
signed login cookie (:data:`LOGIN_COOKIE`). Each handler class says how it refuses forged
cross-site requests (:class:`CrossSite`).
"""

from __future__ import annotations

import enum
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import tornado.web
from prometheus_client import Counter, Histogram

from raworc_spawner import errors
from raworc_spawner.handlers.auth import TokenAuthenticator
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal

log = logging.getLogger("raworc_spawner.handlers")

#: Error class → (HTTP status, seconds for ``Retry-After`` or None). First match wins, so
#: subclasses come before their bases.
ERROR_STATUS: tuple[tuple[type[errors.RaworcError], int, int | None], ...] = (
    (errors.ValidationError, 422, None),
    (errors.SessionNotFound, 404, None),
    (errors.InvalidTransition, 409, None),
    (errors.Conflict, 409, None),
    (errors.Forbidden, 403, None),
    (errors.QuotaExceeded, 429, 30),
    (errors.BackendUnavailable, 503, 5),
    (errors.BackendError, 502, None),
)

#: Codes of errors raised as plain HTTP statuses (by Tornado or by this layer).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    422: "invalid_field",
    429: "too_many_requests",
    500: "internal_error",
    502: "backend_error",
    503: "unavailable",
}

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: The signed cookie the login page sets (it holds the token's SHA-256 digest, never the token
#: itself; HttpOnly, SameSite=Lax).
LOGIN_COOKIE = "raworc-login"
#: Days a login cookie stays valid.
LOGIN_MAX_AGE_DAYS = 7
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

HTTP_REQUESTS = Counter(
    "raworc_http_requests_total",
    "HTTP requests answered, by route name, method and status code.",
    ["handler", "method", "code"],
)
HTTP_DURATION = Histogram(
    "raworc_http_request_duration_seconds",
    "Seconds spent answering HTTP requests, by route name and method.",
    ["handler", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class ApiError(tornado.web.HTTPError):
    """An HTTP error with a machine-readable code and a message safe to show the client."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] = {}
    ) -> None:
        super().__init__(status, log_message=None, reason=None)
        self.code = code
        self.message = message
        self.headers = dict(headers)


def error_status(error: errors.RaworcError) -> tuple[int, int | None]:
    """The HTTP status (and ``Retry-After`` seconds) for one of our errors; 500 if unmapped."""
    for cls, status, retry_after in ERROR_STATUS:
        if isinstance(error, cls):
            return status, retry_after
    return 500, None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error response, before it is rendered as JSON or as a page.

    ``message`` is the error's own words, safe to show (None for a bare HTTP status: the
    renderer words it); ``field`` names the refused field of a 422; ``headers`` go out with it.
    """

    status: int
    code: str
    message: str | None
    field: str | None = None
    headers: Mapping[str, str] = dataclass_field(default_factory=dict)
    cause: BaseException | None = None


def describe_error(status: int, exc: BaseException | None) -> ErrorReply:
    """What to answer for ``exc`` at ``status``; unexpected errors say nothing of themselves."""
    if isinstance(exc, ApiError):
        return ErrorReply(status, exc.code, exc.message, headers=exc.headers, cause=exc)
    if isinstance(exc, errors.RaworcError) and status != 500:
        _, retry_after = error_status(exc)
        return ErrorReply(
            status,
            exc.code,
            exc.message,
            field=exc.field if isinstance(exc, errors.ValidationError) else None,
            headers={"Retry-After": str(retry_after)} if retry_after is not None else {},
            cause=exc,
        )
    return ErrorReply(status, HTTP_CODES.get(status, "error"), None, cause=exc)


class CrossSite(enum.Enum):
    """How a handler refuses forged cross-site requests (on state-changing methods)."""

    #: The XSRF token is needed only where the login cookie would authenticate the request (the
    #: API): a bearer header is not sent by browsers on their own, and a request with neither
    #: header nor cookie goes on to answer 401.
    TOKEN_WITH_LOGIN = "token-with-login"
    #: Every request without an ``Authorization`` header carries the XSRF token (forms, the
    #: login form included).
    TOKEN = "token"
    #: No token (a session's own pages cannot carry ours); a request whose ``Origin`` is another
    #: site is refused with 403 instead. The login cookie is SameSite=Lax, so browsers do not
    #: send it on cross-site POSTs either.
    SAME_ORIGIN = "same-origin"


class Handler(tornado.web.RequestHandler):
    """Authenticates the caller, maps errors to HTTP and counts requests by route.

    Subclasses set ``auth_required = False`` for public endpoints; ``self.principal`` is the
    authenticated caller. Request bodies announced larger than :attr:`max_body_bytes` answer
    413 before they are read.
    """

    auth_required: ClassVar[bool] = True
    cross_site: ClassVar[CrossSite] = CrossSite.TOKEN_WITH_LOGIN
    principal: Principal

    def initialize(self, route_name: str = "unknown") -> None:
        """Remember the route's name (the label of the request metrics)."""
        self.route_name = route_name
        self._started = time.monotonic()

    @property
    def manager(self) -> SessionManager:
        """The session manager every handler goes through."""
        manager: SessionManager = self.settings["manager"]
        return manager

    @property
    def request_id(self) -> str:
        """The client's ``X-Request-Id`` if it is sane, else a fresh one."""
        if not hasattr(self, "_request_id"):
            given = self.request.headers.get("X-Request-Id", "")
            self._request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        return self._request_id

    @property
    def max_body_bytes(self) -> int:
        """The largest request body accepted (the ``max_body_bytes`` setting)."""
        return int(self.settings["max_body_bytes"])

    def set_default_headers(self) -> None:
        """Every answer is tagged with the request id."""
        self.set_header("X-Request-Id", self.request_id)

    def compute_etag(self) -> str | None:
        """No ETags: nothing answered here is revalidated (our own answers are ``no-store``)."""
        return None

    # -- request ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Authenticate, then refuse bodies announced larger than the limit."""
        if self.auth_required:
            principal = self.login_principal()
            if principal is None:
                self.refuse_unauthenticated()
                return
            self.principal = principal
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            # Answered before the body is read; Tornado then closes the connection, so a
            # client still sending a very large body may see a reset rather than the 413.
            raise self.body_too_large()

    def login_principal(self) -> Principal | None:
        """The caller by bearer header or, when there is none, by login cookie; else None."""
        auth: TokenAuthenticator = self.settings["auth"]
        header = self.request.headers.get("Authorization")
        if header is None:
            cookie = self.get_signed_cookie(LOGIN_COOKIE, max_age_days=LOGIN_MAX_AGE_DAYS)
            return auth.authenticate_digest(cookie.decode()) if cookie else None
        return auth.authenticate(auth.bearer(header))

    def refuse_unauthenticated(self) -> None:
        """Answer a caller who could not be authenticated: 401 with a Bearer challenge."""
        auth: TokenAuthenticator = self.settings["auth"]
        token = auth.bearer(self.request.headers.get("Authorization"))
        challenge = 'Bearer realm="raworc"'
        if token is None:
            message = "missing bearer token (send 'Authorization: Bearer <token>')"
        else:
            challenge += ', error="invalid_token"'
            message = "invalid bearer token"
        raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})

    def body_too_large(self) -> ApiError:
        """The 413 for a body over :attr:`max_body_bytes`."""
        limit = self.max_body_bytes
        return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")

    def check_xsrf_cookie(self) -> None:
        """Refuse a forged cross-site request by this handler's :class:`CrossSite` rule."""
        if self.cross_site is CrossSite.SAME_ORIGIN:
            origin = self.request.headers.get("Origin")
            if origin and urlsplit(origin).netloc != self.request.host:
                raise ApiError(403, "cross_origin", "cross-origin requests are refused here")
            return
        if "Authorization" in self.request.headers:
            return
        if self.cross_site is CrossSite.TOKEN or self.get_cookie(LOGIN_COOKIE):
            super().check_xsrf_cookie()

    # -- query arguments ----------------------------------------------------------------------

    def check_query(self, allowed: frozenset[str]) -> None:
        """Refuse query arguments other than ``allowed`` (422 naming the first unknown)."""
        for name in sorted(self.request.query_arguments):
            if name not in allowed:
                raise errors.ValidationError(name, "unknown query argument")

    def query_text(self, name: str) -> str | None:
        """The last value of a query argument; control characters are refused."""
        value = self.get_query_argument(name, None)
        if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise errors.ValidationError(name, "must not contain control characters")
        return value

    def query_int(self, name: str, *, default: int | None, low: int, high: int) -> int | None:
        """An integer query argument within ``low..high``."""
        text = self.query_text(name)
        if text is None:
            return default
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", text.strip()):
            raise errors.ValidationError(name, f"must be an integer; got {text[:40]!r}")
        value = int(text)
        if not low <= value <= high:
            raise errors.ValidationError(name, f"must be between {low} and {high}; got {value}")
        return value

    def query_bool(self, name: str) -> bool:
        """A boolean query argument: 1/true/yes/on (or bare ``?name``) or 0/false/no/off."""
        text = self.query_text(name)
        text = "false" if text is None else text.strip().lower()
        if text in ("1", "true", "yes", "on", ""):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise errors.ValidationError(name, f"must be true or false; got {text[:40]!r}")

    def query_list(self, name: str) -> list[str]:
        """Every value of a repeatable query argument, comma-separated lists split."""
        values: list[str] = []
        for raw in self.get_query_arguments(name):
            values.extend(part.strip() for part in raw.split(",") if part.strip())
        return values

    # -- errors -------------------------------------------------------------------------------

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Answer with the status our error hierarchy maps the exception to."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, errors.RaworcError):
            status_code, _ = error_status(exc)
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Describe the error (:func:`describe_error`), send its headers, then render it."""
        reply = describe_error(status_code, kwargs.get("exc_info", (None, None, None))[1])
        for name, value in reply.headers.items():
            self.set_header(name, value)
        self.render_error(reply)

    def render_error(self, reply: ErrorReply) -> None:
        """Finish with ``{"error": {"code", "message"}}`` (and ``field`` on a 422)."""
        error: dict[str, Any] = {"code": reply.code, "message": reply.message}
        if reply.field is not None:
            error["field"] = reply.field
        if reply.message is None:
            error["message"] = self._default_message(reply.status)
        self.set_header("Content-Type", JSON_CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"error": error}, ensure_ascii=False).encode())

    def _default_message(self, status_code: int) -> str:
        if status_code == 500:
            return f"internal server error (request id {self.request_id})"
        if status_code == 405:
            return f"method {self.request.method} is not allowed on {self.request.path}"
        return self._reason

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Client errors get one line; anything unexpected gets its traceback, server-side."""
        if isinstance(value, tornado.web.HTTPError):
            return
        status = error_status(value)[0] if isinstance(value, errors.RaworcError) else 500
        if status < 500:
            return
        where = f"{self.request.method} {self.request.path} (request id {self.request_id})"
        if status != 500:
            log.warning("%s failed: %s", where, value)
            return
        exc_info = (typ, value, tb) if typ is not None and value is not None else None
        log.error("uncaught exception in %s", where, exc_info=exc_info)

    def on_finish(self) -> None:
        """Count the request and its duration under the route's name."""
        method = self.request.method or "?"
        HTTP_REQUESTS.labels(self.route_name, method, str(self.get_status())).inc()
        HTTP_DURATION.labels(self.route_name, method).observe(time.monotonic() - self._started)


def checked_session_id(raw: str) -> str:
    """A session id from a URL in canonical form; anything not a UUID is simply not found."""
    try:
        canonical = str(uuid.UUID(raw))
    except ValueError:
        raise errors.SessionNotFound(raw[:100]) from None
    if canonical != raw.lower():
        raise errors.SessionNotFound(raw[:100])
    return canonical


def route(pattern: str, handler: type[Handler], name: str) -> tornado.web.URLSpec:
    """A URL rule whose handler knows the route's name (for metrics and ``reverse_url``)."""
    return tornado.web.URLSpec(pattern, handler, {"route_name": name}, name=name)
