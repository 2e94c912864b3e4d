"""The wake-on-request session proxy: ``/sessions/{id}/proxy/{port}/{path}``.

Forwards HTTP and WebSocket traffic to the session's compute (the pod IP, or 127.0.0.1 for a
local process) on ``port``. The caller must be the owner or an admin (bearer token or page
login). A sleeping (``idle``) session is resumed and the request held until it is ready: all
concurrent requests share one resume; at most ``max_waiting`` requests wait per session and for
at most ``wake_timeout_seconds``, after which they get 503 with ``Retry-After``
(:class:`ProxyLimits`). Request and response bodies stream through; neither is buffered whole.
Our own credentials (``Authorization``, the login cookie) are not forwarded to the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import tornado.web
import tornado.websocket
from prometheus_client import Counter
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders

from raworc_spawner import errors
from raworc_spawner.handlers.base import (
    LOGIN_COOKIE,
    ApiError,
    CrossSite,
    Handler,
    checked_session_id,
    route,
)

PROXY_REQUESTS = Counter(
    "raworc_proxy_requests_total",
    "Requests through the session proxy, by kind and status.",
    ["kind", "code"],
)
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "authorization", "content-length",
    }
)  # fmt: skip
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The application settings the proxy reads on each request, by :class:`ProxyLimits` field.
SETTINGS = {
    "wake_timeout_seconds": "proxy_wake_timeout",
    "max_waiting": "proxy_max_waiting",
    "request_timeout_seconds": "proxy_request_timeout",
    "max_body_bytes": "proxy_max_body_bytes",
}


@dataclass(frozen=True, slots=True)
class ProxyLimits:
    """How long and how many requests the proxy holds for a waking session, and how much it
    passes through.

    No defaults here: ``RaworcApp``'s ``proxy_*`` traits are the one place they are set (their
    help says what each means).
    """

    wake_timeout_seconds: float
    max_waiting: int
    request_timeout_seconds: float
    max_body_bytes: int

    def settings(self) -> dict[str, float | int]:
        """The limits as the application settings the proxy reads on each request."""
        return {key: getattr(self, name) for name, key in SETTINGS.items()}


class _Waiting:
    """Counts requests held for a waking session, to bound the queue."""

    def __init__(self) -> None:
        self.by_session: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, session_id: str, limit: int) -> Any:
        count = self.by_session.get(session_id, 0)
        if count >= limit:
            raise ApiError(
                503,
                "wake_queue_full",
                f"{count} requests are already waiting for this session to wake; retry shortly",
                headers={"Retry-After": "5"},
            )
        self.by_session[session_id] = count + 1
        try:
            yield
        finally:
            self.by_session[session_id] -= 1
            if not self.by_session[session_id]:
                del self.by_session[session_id]


WAITING = _Waiting()


@tornado.web.stream_request_body
class SessionProxyHandler(tornado.websocket.WebSocketHandler, Handler):
    """Proxies one request (or one WebSocket) to a session, waking it first if it sleeps.

    The caller is authenticated like an API client (bearer header or login cookie); errors of
    the proxy itself are JSON. There is no XSRF token (the session's own pages cannot carry
    ours): cross-origin requests are refused instead (:attr:`CrossSite.SAME_ORIGIN`).
    """

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    cross_site = CrossSite.SAME_ORIGIN

    def initialize(self, route_name: str = "session_proxy") -> None:
        """Per-request state: the upstream target and the body pipe."""
        super().initialize(route_name)
        self._body: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)
        self._upstream: asyncio.Task[HTTPResponse] | None = None
        self._ws: tornado.websocket.WebSocketClientConnection | None = None
        self._headers_sent = False

    # -- set-up -------------------------------------------------------------------------------

    @property
    def max_body_bytes(self) -> int:
        """Proxied bodies stream through: the proxy's own limit, not the API's small one."""
        return int(self.settings[SETTINGS["max_body_bytes"]])

    async def prepare(self) -> None:
        """Authenticate, wake the session, and start the upstream request (bodies stream in)."""
        await super().prepare()
        self.request.connection.set_max_body_size(self.max_body_bytes)  # type: ignore[union-attr]
        args = self.path_kwargs
        self.session_id = checked_session_id(args["id"])
        self.target = f"{await self._wake_address()}:{_port(args['port'])}/{args['path']}"
        if self.request.query:
            self.target += f"?{self.request.query}"
        if self._is_websocket():
            return
        self._upstream = asyncio.ensure_future(self._fetch())

    async def _wake_address(self) -> str:
        timeout = float(self.settings[SETTINGS["wake_timeout_seconds"]])
        limit = int(self.settings[SETTINGS["max_waiting"]])
        with WAITING.hold(self.session_id, limit):
            try:
                await self.manager.wake(self.principal, self.session_id, timeout=timeout)
            except TimeoutError:
                raise ApiError(
                    503,
                    "wake_timeout",
                    f"the session did not wake within {timeout:g} s; retry shortly",
                    headers={"Retry-After": "10"},
                ) from None
        address = self.manager.address(self.session_id)
        if address is None:
            raise errors.BackendUnavailable("the session is not reachable right now")
        self.manager.note_activity(self.session_id)
        return address

    def data_received(self, chunk: bytes) -> Any:
        """Pipe a body chunk upstream (waits while the pipe is full: backpressure)."""
        return self._body.put(chunk)

    # -- HTTP ---------------------------------------------------------------------------------

    async def get(self, **kwargs: str) -> None:
        """A WebSocket upgrade, or a plain GET."""
        if self._is_websocket():
            await self._open_upstream_websocket()
            await tornado.websocket.WebSocketHandler.get(self, **kwargs)
            return
        await self._finish_http()

    async def head(self, **kwargs: str) -> None:
        """Forward a HEAD."""
        await self._finish_http()

    post = put = patch = delete = options = head

    async def _finish_http(self) -> None:
        await self._body.put(None)
        assert self._upstream is not None
        try:
            response = await self._upstream
        except HTTPClientError as e:
            response = e.response  # type: ignore[assignment]
        except (TimeoutError, OSError) as e:
            PROXY_REQUESTS.labels("http", "502").inc()
            raise ApiError(502, "upstream_unreachable", f"the session did not answer: {e}") from e
        code = response.code if response is not None else 502
        PROXY_REQUESTS.labels("http", str(code)).inc()
        self.finish()

    async def _fetch(self) -> HTTPResponse:
        method = self.request.method or "GET"
        has_body = method in BODY_METHODS
        request = HTTPRequest(
            f"http://{self.target}",
            method=method,
            headers=self._forward_headers(),
            body_producer=self._body_producer() if has_body else None,
            streaming_callback=self._on_chunk,
            header_callback=self._on_header_line,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            connect_timeout=10,
            request_timeout=float(self.settings[SETTINGS["request_timeout_seconds"]]),
        )
        return await AsyncHTTPClient().fetch(request, raise_error=False)

    def _body_producer(self) -> Any:
        return self._produce_body

    async def _produce_body(self, write: Any) -> None:
        while (chunk := await self._body.get()) is not None:
            await write(chunk)

    def _forward_headers(self) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in self.request.headers.get_all():
            if name.lower() in HOP_BY_HOP:
                continue
            if name.lower() == "cookie":
                value = _without_cookie(value, LOGIN_COOKIE)
                if not value:
                    continue
            headers.add(name, value)
        headers["X-Forwarded-Proto"] = self.request.protocol
        headers["X-Forwarded-Host"] = self.request.host
        if "Content-Length" in self.request.headers:
            headers["Content-Length"] = self.request.headers["Content-Length"]
        return headers

    def _on_header_line(self, line: str) -> None:
        if line.startswith("HTTP/"):
            parts = line.split(" ", 2)
            self._status = (int(parts[1]), parts[2].strip() if len(parts) > 2 else None)
            self._upstream_headers = HTTPHeaders()
        elif line.strip():
            self._upstream_headers.parse_line(line)
        elif self._status[0] != 100:
            self._send_head()

    def _send_head(self) -> None:
        self.clear_header("Content-Type")  # Tornado's default; the session says its own
        self.set_status(*self._status)
        for name, value in self._upstream_headers.get_all():
            if name.lower() not in HOP_BY_HOP or name.lower() == "content-length":
                self.add_header(name, value)
        self._headers_sent = True

    def _on_chunk(self, chunk: bytes) -> None:
        self.write(chunk)
        self.flush()

    # -- WebSocket ----------------------------------------------------------------------------

    def _is_websocket(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    async def _open_upstream_websocket(self) -> None:
        request = HTTPRequest(f"ws://{self.target}", headers=self._forward_headers())
        for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"):
            request.headers.pop(name, None)
        try:
            self._ws = await tornado.websocket.websocket_connect(request)
        except (OSError, HTTPClientError) as e:
            PROXY_REQUESTS.labels("websocket", "502").inc()
            raise ApiError(502, "upstream_unreachable", f"the session refused: {e}") from e
        PROXY_REQUESTS.labels("websocket", "101").inc()

    def open(self, **kwargs: str) -> None:
        """Start relaying the session's messages to the client."""
        asyncio.ensure_future(self._relay_from_upstream())

    async def on_message(self, message: str | bytes) -> None:
        """Relay a client message to the session."""
        if self._ws is not None:
            await self._ws.write_message(message, binary=isinstance(message, bytes))
            self.manager.note_activity(self.session_id)

    def on_close(self) -> None:
        """The client left: close the upstream side."""
        if self._ws is not None:
            self._ws.close()

    async def _relay_from_upstream(self) -> None:
        assert self._ws is not None
        while (message := await self._ws.read_message()) is not None:
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except tornado.websocket.WebSocketClosedError:
                return
        self.close()

    def check_origin(self, origin: str) -> bool:
        """Same-origin only for cookie-authenticated browsers; token clients have no Origin."""
        return super().check_origin(origin)


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise errors.ValidationError("port", f"must be 1 to 65535, not {port}")
    return port


def _without_cookie(header: str, name: str) -> str:
    kept = [part for part in header.split(";") if part.strip().split("=", 1)[0] != name]
    return ";".join(kept).strip()


routes = [
    route(
        r"/sessions/(?P<id>[^/]+)/proxy/(?P<port>[0-9]{1,5})/(?P<path>.*)",
        SessionProxyHandler,
        "session_proxy",
    ),
]
