"""The standard verbs on stored resources: get, list, watch, create, update, patch, delete."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ..deletion import DeleteOptions
from ..errors import ApiError, bad_request
from ..registry import ListOptions, WriteOptions, Written, int_or_400
from ..selectors import Selector
from ..tables import IncludeObject, to_table, wants_table
from ..watch import Watcher, error_event
from .responses import COUNTED, read_body, respond, warning_headers
from .routing import Route

if TYPE_CHECKING:
    from ..server import KubeSim


def list_options(request: web.Request, route: Route) -> ListOptions:
    q = request.query
    limit = q.get("limit", "0")
    return ListOptions(
        selector=Selector.parse(q.get("labelSelector"), q.get("fieldSelector"), route.rt.key),
        limit=int(limit) if limit.isdigit() else 0,
        continue_token=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
    )


def write_options(request: web.Request) -> WriteOptions:
    q = request.query
    validation = q.get("fieldValidation", "Warn")
    if validation not in ("Strict", "Warn", "Ignore"):
        raise bad_request(
            f"fieldValidation must be one of Strict, Warn, Ignore, not {validation!r}"
        )
    return WriteOptions(
        field_validation=validation,
        dry_run=q.get("dryRun") == "All",
        field_manager=q.get("fieldManager", ""),
    )


def _single(
    sim: KubeSim, request: web.Request, route: Route, obj: dict[str, object]
) -> web.Response:
    if wants_table(request.headers.get("Accept", "")):
        include = IncludeObject.parse(request.query.get("includeObject"))
        list_meta = {"resourceVersion": str(sim.store.rv)}
        return respond(to_table(route.rt.key, [obj], list_meta, include))
    return respond(obj)


def _written(written: Written) -> web.Response:
    return respond(written.obj, written.code, headers=warning_headers(written.warnings) or None)


async def get(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    obj = sim.registry.get(route.rt, route.ns, route.name)
    return _single(sim, request, route, obj)


async def list_(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    listed = sim.registry.list(
        route.rt, route.namespace if route.rt.namespaced else None, list_options(request, route)
    )
    if wants_table(request.headers.get("Accept", "")):
        include = IncludeObject.parse(request.query.get("includeObject"))
        return respond(to_table(route.rt.key, listed["items"], listed["metadata"], include))
    return respond(listed)


async def create(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    body = await read_body(request)
    if route.subresource == "token":
        return respond(sim.service_accounts.issue(route.ns, route.name, body), 201)
    if route.subresource == "binding":
        return respond(sim.bind_pod(route.ns, route.name, body), 201)
    return _written(sim.registry.create(route.rt, route.ns, body, write_options(request)))


async def update(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    body = await read_body(request)
    written = sim.registry.update(
        route.rt, route.ns, route.name, body, write_options(request), subresource=route.subresource
    )
    return _written(written)


async def patch(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    body = await read_body(request)
    patch_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    written = sim.registry.patch(
        route.rt,
        route.ns,
        route.name,
        patch_type,
        body,
        write_options(request),
        subresource=route.subresource,
    )
    return _written(written)


async def delete(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    opts = DeleteOptions.from_body(await read_body(request), dict(request.query))
    written = sim.deleter.delete(route.rt, route.ns, route.name, opts)
    return respond(written.obj, written.code)


async def delete_collection(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    opts = DeleteOptions.from_body(await read_body(request), dict(request.query))
    namespace = route.namespace if route.rt.namespaced else None
    return respond(
        sim.deleter.delete_collection(route.rt, namespace, list_options(request, route), opts)
    )


def _watch_timeout(sim: KubeSim, request: web.Request) -> float:
    text = request.query.get("timeoutSeconds")
    if text is None:
        return sim.config.default_watch_timeout
    return float(int_or_400(text))


async def watch(sim: KubeSim, request: web.Request, route: Route) -> web.StreamResponse:
    """Stream watch events as newline-delimited JSON until timeout, drop or disconnect."""
    opts = list_options(request, route)
    if route.name:
        opts.selector = Selector(
            opts.selector.labels,
            (
                *opts.selector.fields,
                *Selector.parse(None, f"metadata.name={route.name}", route.rt.key).fields,
            ),
        )
    q = request.query
    bookmarks = q.get("allowWatchBookmarks", "").lower() in ("true", "1")
    initial_end = bookmarks and q.get("sendInitialEvents", "").lower() == "true"
    rv = opts.resource_version
    if q.get("sendInitialEvents", "").lower() == "true":
        rv = "0"
    transform = None
    if wants_table(request.headers.get("Accept", "")):
        include = IncludeObject.parse(request.query.get("includeObject"))
        transform = _table_lines(route.rt.key, include)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    namespace = route.namespace if route.rt.namespaced else None
    try:
        watcher = sim.hub.open(route.rt, namespace, opts.selector, rv, send_initial_end=initial_end)
    except ApiError as e:
        if e.code != 410:
            raise
        # An expired version is reported inside a successful stream, as the watch cache does.
        await response.prepare(request)
        await response.write(error_event(e))
        await response.write_eof()
        return response
    await response.prepare(request)
    # Counted now: a watch ends by cancellation when the client goes away.
    request[COUNTED] = True
    sim.counters.record("watch", route.rt.plural, 200)
    sim.counters.watches_open += 1
    sim.counters.watches_opened += 1
    try:
        await _pump(sim, response, watcher, _watch_timeout(sim, request), bookmarks, transform)
    finally:
        sim.counters.watches_open -= 1
        sim.hub.close(watcher)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


def _table_lines(resource_key: str, include: IncludeObject) -> Callable[[bytes], bytes]:
    """Rewrite watch lines so each object is a one-row Table (``kubectl get -w``)."""

    def transform(chunk: bytes) -> bytes:
        out = []
        for line in chunk.splitlines():
            event = json.loads(line)
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                obj = event["object"]
                list_meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                event["object"] = to_table(resource_key, [obj], list_meta, include)
            out.append(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        return b"".join(out)

    return transform


async def _pump(
    sim: KubeSim,
    response: web.StreamResponse,
    watcher: Watcher,
    timeout: float,
    bookmarks: bool,
    transform: Callable[[bytes], bytes] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = sim.config.bookmark_interval
    while (remaining := deadline - loop.time()) > 0:
        wait = min(remaining, interval) if bookmarks else remaining
        try:
            async with asyncio.timeout(wait):
                item = await watcher.queue.get()
        except TimeoutError:
            if bookmarks and loop.time() < deadline:
                await response.write(sim.hub.bookmark(watcher.rt))
            continue
        if item is None:
            return
        chunks = [item]
        while not watcher.queue.empty():
            more = watcher.queue.get_nowait()
            if more is None:
                await response.write(_apply(transform, b"".join(chunks)))
                return
            chunks.append(more)
        await response.write(_apply(transform, b"".join(chunks)))


def _apply(transform: Callable[[bytes], bytes] | None, chunk: bytes) -> bytes:
    return transform(chunk) if transform is not None else chunk
