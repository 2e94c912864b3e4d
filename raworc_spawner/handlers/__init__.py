"""The Tornado application: every handler module contributes its ``routes`` list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import tornado.web

from raworc_spawner.handlers import api, events, metrics, openapi, pages, proxy, system
from raworc_spawner.handlers.auth import TokenAuthenticator
from raworc_spawner.handlers.base import NotFoundHandler
from raworc_spawner.sessions.manager import SessionManager

ACCESS_LOG = logging.getLogger("tornado.access")
ROUTE_MODULES = (api, events, system, metrics, openapi, proxy, pages)


def make_web_app(
    *,
    manager: SessionManager,
    auth: TokenAuthenticator,
    max_body_bytes: int,
    cookie_secret: bytes,
    extra_routes: Sequence[Any] = (),
    template_path: str | None = None,
    static_path: str | None = None,
    **settings: Any,
) -> tornado.web.Application:
    """Build the application: API, events, health, metrics, OpenAPI and page routes, then extras.

    Handlers find ``manager``, ``auth`` and ``max_body_bytes`` in the application settings;
    ``settings`` adds or overrides Tornado settings (``sse_heartbeat_seconds`` among them).
    Unknown paths answer a JSON 404. XSRF checks are on; requests with an ``Authorization``
    header are exempt (see ``BaseHandler.check_xsrf_cookie``).
    """
    rules: list[Any] = [rule for module in ROUTE_MODULES for rule in module.routes]
    rules.extend(extra_routes)
    if template_path is not None:
        settings.setdefault("template_path", template_path)
    settings.setdefault("static_path", static_path or pages.STATIC_PATH)
    settings.setdefault("static_handler_class", pages.StaticFiles)
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
