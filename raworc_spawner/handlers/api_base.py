"""The base of the JSON API's handlers: strict JSON bodies, JSON answers, streamed responses.

Bodies are streamed in and kept only up to the ``max_body_bytes`` setting (413 past it, even
for chunked bodies with no ``Content-Length``). Answers are JSON and never cached. Event and log
streams end when the client goes away or the server shuts down
(:func:`raworc_spawner.handlers.end_streams`).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import tornado.web

from raworc_spawner.handlers.base import JSON_CONTENT_TYPE, ApiError, Handler

T = TypeVar("T")

#: Deepest nesting of arrays and objects accepted in a JSON body.
MAX_JSON_DEPTH = 64


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
class ApiHandler(Handler):
    """A JSON endpoint: reads JSON bodies, answers JSON, streams events and logs."""

    def initialize(self, route_name: str = "unknown") -> None:
        """Per-request state: the body read so far, and whether the client is still there."""
        super().initialize(route_name)
        self._chunks: list[bytes] = []
        self._body_size = 0
        self._client_gone = asyncio.Event()

    def set_default_headers(self) -> None:
        """JSON, never cached, tagged with the request id."""
        super().set_default_headers()
        self.set_header("Content-Type", JSON_CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")

    # -- request body -------------------------------------------------------------------------

    def data_received(self, chunk: bytes) -> None:
        """Collect the body; past the limit, stop keeping it (``json_body`` answers 413)."""
        self._body_size += len(chunk)
        if self._body_size <= self.max_body_bytes:
            self._chunks.append(chunk)
        else:
            self._chunks.clear()

    def json_body(self, *, allow_empty: bool = False) -> Any:
        """The request body parsed as JSON (400 if malformed, 413 if too large).

        With ``allow_empty`` an empty body reads as ``{}``.
        """
        if self._body_size > self.max_body_bytes:
            raise self.body_too_large()
        body = b"".join(self._chunks)
        if allow_empty and not body.strip():
            return {}
        return parse_json(body)

    # -- response -----------------------------------------------------------------------------

    def write_json(self, data: Any, *, status: int = 200) -> None:
        """Finish the request with ``data`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(data, ensure_ascii=False, allow_nan=False).encode())

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


async def _next(items: AsyncIterator[T]) -> T:
    return await anext(items)


async def _cancel(*futures: asyncio.Future[Any] | None) -> None:
    waiting = [future for future in futures if future is not None and not future.done()]
    for future in waiting:
        future.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


class NotFoundHandler(ApiHandler):
    """Answers every unknown path with a JSON 404."""

    auth_required = False

    async def prepare(self) -> None:
        """There is nothing here, whatever the method."""
        raise ApiError(404, "not_found", f"no such path: {self.request.path}")
