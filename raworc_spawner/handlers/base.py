"""The base of every handler: bearer auth, JSON bodies, JSON errors and request metrics.

This module is the one place that maps the error hierarchy of :mod:`raworc_spawner.errors` to
HTTP status codes (:data:`ERROR_STATUS`). Every error response, Tornado's own 404 and 405
included, is JSON ``{"error": {"code", "message"}}``; a traceback only ever reaches the server
log.

Callers authenticate with ``Authorization: Bearer <token>`` or, from the browser pages, with the
signed login cookie (:data:`LOGIN_COOKIE`). Only cookie-authenticated requests need an XSRF
token on state-changing methods: a bearer header is not sent by browsers on their own, so API
clients stay exempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import tornado.web
from prometheus_client import Counter, Histogram

from raworc_spawner import errors
from raworc_spawner.handlers.auth import TokenAuthenticator
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal

log = logging.getLogger("raworc_spawner.handlers")
T = TypeVar("T")

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

#: Deepest nesting of arrays and objects accepted in a JSON body.
MAX_JSON_DEPTH = 64
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: The signed cookie the login page sets (it holds the token's SHA-256 digest, never the token
#: itself; HttpOnly, SameSite=Lax).
LOGIN_COOKIE = "raworc-login"
#: Days a login cookie stays valid.
LOGIN_MAX_AGE_DAYS = 7

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


def _check_json_value(value: object, depth: int = 0) -> None:
    """Reject what JSON parsers accept but nothing downstream can store or echo back."""
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, "malformed_json", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json_value(key, depth + 1)
            _check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "malformed_json", "strings must be valid Unicode") from None


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} is out of range")
    return number


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Parse a request body as strict JSON (no NaN/Infinity, finite numbers, sane depth)."""
    try:
        value = json.loads(body, parse_float=_finite_float, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError(400, "malformed_json", "JSON nested too deeply") from None
    except ValueError as e:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {e}") from None
    _check_json_value(value)
    return value


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Authenticates the caller, reads JSON bodies and answers errors as JSON.

    Subclasses set ``auth_required = False`` for public endpoints. ``self.principal`` is the
    authenticated caller. Bodies larger than the ``max_body_bytes`` setting answer 413.
    """

    auth_required: ClassVar[bool] = True
    principal: Principal

    def initialize(self, route_name: str = "unknown") -> None:
        """Remember the route's name (the label of the request metrics)."""
        self.route_name = route_name
        self._chunks: list[bytes] = []
        self._body_size = 0
        self._started = time.monotonic()
        self._client_gone = asyncio.Event()

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

    def set_default_headers(self) -> None:
        """JSON, never cached, tagged with the request id."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Request-Id", self.request_id)

    def compute_etag(self) -> str | None:
        """No ETags: API answers are never cached (``Cache-Control: no-store``)."""
        return None

    # -- request ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Authenticate, then refuse bodies announced larger than the limit."""
        if self.auth_required:
            self.principal = self._authenticate()
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self._max_body_bytes:
            # Answered before the body is read; Tornado then closes the connection, so a
            # client still sending a very large body may see a reset rather than the 413.
            raise self._too_large()

    def data_received(self, chunk: bytes) -> None:
        """Collect the body; past the limit, stop keeping it (``json_body`` answers 413)."""
        self._body_size += len(chunk)
        if self._body_size <= self._max_body_bytes:
            self._chunks.append(chunk)
        else:
            self._chunks.clear()

    def json_body(self, *, allow_empty: bool = False) -> Any:
        """The request body parsed as JSON (400 if malformed, 413 if too large).

        With ``allow_empty`` an empty body reads as ``{}``.
        """
        if self._body_size > self._max_body_bytes:
            raise self._too_large()
        body = b"".join(self._chunks)
        if allow_empty and not body.strip():
            return {}
        return parse_json(body)

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

    @property
    def _max_body_bytes(self) -> int:
        return int(self.settings["max_body_bytes"])

    def _too_large(self) -> ApiError:
        limit = self._max_body_bytes
        return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")

    def login_principal(self) -> Principal | None:
        """The caller by bearer header or, when there is none, by login cookie; else None."""
        auth: TokenAuthenticator = self.settings["auth"]
        header = self.request.headers.get("Authorization")
        if header is None:
            cookie = self.get_signed_cookie(LOGIN_COOKIE, max_age_days=LOGIN_MAX_AGE_DAYS)
            return auth.authenticate_digest(cookie.decode()) if cookie else None
        return auth.authenticate(auth.bearer(header))

    def check_xsrf_cookie(self) -> None:
        """Enforce XSRF only for requests that the login cookie would authenticate.

        A valid bearer header is exempt (browsers never add one by themselves); a request with
        neither header nor cookie goes on to answer 401.
        """
        if "Authorization" in self.request.headers or not self.get_cookie(LOGIN_COOKIE):
            return
        super().check_xsrf_cookie()

    def _authenticate(self) -> Principal:
        auth: TokenAuthenticator = self.settings["auth"]
        principal = self.login_principal()
        if principal is not None:
            return principal
        token = auth.bearer(self.request.headers.get("Authorization"))
        challenge = 'Bearer realm="raworc"'
        if token is None:
            message = "missing bearer token (send 'Authorization: Bearer <token>')"
        else:
            challenge += ', error="invalid_token"'
            message = "invalid bearer token"
        raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})

    # -- streaming ----------------------------------------------------------------------------

    def on_connection_close(self) -> None:
        """Note that the client went away, so streams stop waiting for more to send."""
        self._client_gone.set()

    async def _stream_should_end(self) -> None:
        """Return when the client goes away or the server is shutting down."""
        ending: asyncio.Event = self.settings["streams_ending"]
        waits = [
            asyncio.ensure_future(self._client_gone.wait()),
            asyncio.ensure_future(ending.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel(*waits)

    async def stream_items(
        self,
        items: AsyncIterator[T],
        on_item: Callable[[T], Awaitable[None]],
        *,
        heartbeat: float | None = None,
        on_idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Pass each item to ``on_item`` until ``items`` ends, the client disconnects or the
        server shuts down (:func:`raworc_spawner.handlers.end_streams`).

        With ``heartbeat``, ``on_idle`` runs whenever that many seconds pass without an item.
        Waiting for the next item is cancelled when the client goes, so a quiet stream does
        not outlive its reader.
        """
        gone: asyncio.Future[Any] = asyncio.ensure_future(self._stream_should_end())
        pending: asyncio.Future[Any] | None = None
        try:
            while not gone.done():
                pending = pending or asyncio.ensure_future(_next(items))
                done, _ = await asyncio.wait(
                    {pending, gone}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
                )
                if pending in done:
                    ready, pending = pending, None
                    try:
                        item: T = ready.result()
                    except StopAsyncIteration:
                        return
                    await on_item(item)
                elif not done and on_idle is not None:
                    await on_idle()
        finally:
            await _cancel(gone, pending)

    # -- response -----------------------------------------------------------------------------

    def write_json(self, data: Any, *, status: int = 200) -> None:
        """Finish the request with ``data`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(data, ensure_ascii=False, allow_nan=False).encode())

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Answer with the status our error hierarchy maps the exception to."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, errors.RaworcError):
            status_code, _ = error_status(exc)
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write ``{"error": {"code", "message"}}``; never a traceback."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        error: dict[str, Any] = {"code": HTTP_CODES.get(status_code, "error"), "message": None}
        if isinstance(exc, ApiError):
            error.update(code=exc.code, message=exc.message)
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, errors.RaworcError) and status_code != 500:
            error.update(code=exc.code, message=exc.message)
            if isinstance(exc, errors.ValidationError):
                error["field"] = exc.field
            _, retry_after = error_status(exc)
            if retry_after is not None:
                self.set_header("Retry-After", str(retry_after))
        if error["message"] is None:
            error["message"] = self._default_message(status_code)
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


async def _next(items: AsyncIterator[T]) -> T:
    return await anext(items)


async def _cancel(*futures: asyncio.Future[Any] | None) -> None:
    waiting = [future for future in futures if future is not None and not future.done()]
    for future in waiting:
        future.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


def checked_session_id(raw: str) -> str:
    """A session id from a URL in canonical form; anything not a UUID is simply not found."""
    try:
        canonical = str(uuid.UUID(raw))
    except ValueError:
        raise errors.SessionNotFound(raw[:100]) from None
    if canonical != raw.lower():
        raise errors.SessionNotFound(raw[:100])
    return canonical


def route(pattern: str, handler: type[BaseHandler], name: str) -> tornado.web.URLSpec:
    """A URL rule whose handler knows the route's name (for metrics and ``reverse_url``)."""
    return tornado.web.URLSpec(pattern, handler, {"route_name": name}, name=name)


class NotFoundHandler(BaseHandler):
    """Answers every unknown path with a JSON 404."""

    auth_required = False

    async def prepare(self) -> None:
        """There is nothing here, whatever the method."""
        raise ApiError(404, "not_found", f"no such path: {self.request.path}")
