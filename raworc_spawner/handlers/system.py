"""Operational endpoints: ``/health`` (with store reachability) and ``/version``."""

from __future__ import annotations

import asyncio
import logging

from raworc_spawner import __version__
from raworc_spawner.handlers.api_base import ApiHandler
from raworc_spawner.handlers.base import route

log = logging.getLogger("raworc_spawner.handlers")
STORE_CHECK_SECONDS = 5.0


class HealthHandler(ApiHandler):
    """200 ``{"status": "ok"}`` when the store answers; 503 ``{"status": "unavailable"}`` if not."""

    auth_required = False

    async def get(self) -> None:
        """Check that the store answers a query."""
        store_ok = await self._store_reachable()
        body = {
            "status": "ok" if store_ok else "unavailable",
            "version": __version__,
            "backend": self.manager.backend_name,
            "store": "ok" if store_ok else "unreachable",
        }
        self.write_json(body, status=200 if store_ok else 503)

    async def _store_reachable(self) -> bool:
        try:
            async with asyncio.timeout(STORE_CHECK_SECONDS):
                await self.manager.count_by_state()
        except Exception as e:  # any failure means "not reachable"; the cause goes to the log
            log.warning("health check: the store is not reachable: %r", e)
            return False
        return True


class VersionHandler(ApiHandler):
    """The server's version and API version."""

    auth_required = False

    async def get(self) -> None:
        """``{"version": ..., "api": "v0"}``."""
        self.write_json({"version": __version__, "api": "v0"})


routes = [
    route(r"/health", HealthHandler, "health"),
    route(r"/version", VersionHandler, "version"),
]
