"""The Tornado application: every handler module contributes its ``routes`` list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import tornado.web

from raworc_spawner.handlers import api, events, metrics, openapi, pages, system
from raworc_spawner.handlers import proxy as proxy_module
from raworc_spawner.handlers.api_base import NotFoundHandler
from raworc_spawner.handlers.auth import TokenAuthenticator
from raworc_spawner.handlers.pages_base import StaticFiles
from raworc_spawner.handlers.pages_view import STATIC_PATH
from raworc_spawner.handlers.proxy import ProxyLimits
from raworc_spawner.sessions.manager import SessionManager

__all__ = ["ProxyLimits", "end_streams", "make_web_app"]

ACCESS_LOG = logging.getLogger("tornado.access")
ROUTE_MODULES = (api, events, system, metrics, openapi, proxy_module, pages)


def make_web_app(
    *,
    manager: SessionManager,
    auth: TokenAuthenticator,
    max_body_bytes: int,
    cookie_secret: bytes,
    proxy: ProxyLimits | None = None,
    extra_routes: Sequence[Any] = (),
    template_path: str | None = None,
    static_path: str | None = None,
    **settings: Any,
) -> tornado.web.Application:
    """Build the application: API, events, health, metrics, OpenAPI, proxy and page routes, then
    extras.

    Handlers find ``manager``, ``auth`` and ``max_body_bytes`` in the application settings;
    ``settings`` adds or overrides Tornado settings (``sse_heartbeat_seconds`` among them).
    The session proxy is served only with its limits (``proxy``; the ``proxy_*`` settings it
    reads may also be given directly). Unknown paths answer a JSON 404. XSRF checks are on, by
    each handler's rule (:class:`raworc_spawner.handlers.base.CrossSite`).
    """
    if proxy is not None:
        settings.update(proxy.settings())
    with_proxy = set(proxy_module.SETTINGS.values()) <= settings.keys()
    modules = [m for m in ROUTE_MODULES if with_proxy or m is not proxy_module]
    rules: list[Any] = [rule for module in modules for rule in module.routes]
    rules.extend(extra_routes)
    if template_path is not None:
        settings.setdefault("template_path", template_path)
    settings.setdefault("static_path", static_path or str(STATIC_PATH))
    settings.setdefault("static_handler_class", StaticFiles)
    settings.setdefault("xsrf_cookies", True)
    return tornado.web.Application(
        rules,
        manager=manager,
        auth=auth,
        max_body_bytes=max_body_bytes,
        cookie_secret=cookie_secret,
        default_handler_class=NotFoundHandler,
        default_handler_args={"route_name": "not_found"},
        streams_ending=asyncio.Event(),
        log_function=settings.pop("log_function", log_request),
        **settings,
    )


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log: failures at warning/error, successful requests only at debug.

    A line per successful request at info costs more than serving a cached read; turn them on
    with ``RAWORC_LOG=info,tornado.access=debug``.
    """
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.DEBUG
    if not ACCESS_LOG.isEnabledFor(level):
        return
    request = handler.request
    elapsed_ms = 1000.0 * request.request_time()
    ACCESS_LOG.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        request.uri,
        request.remote_ip,
        elapsed_ms,
    )


def end_streams(app: tornado.web.Application) -> None:
    """Finish every open event and log stream (call before waiting for connections to close)."""
    app.settings["streams_ending"].set()
