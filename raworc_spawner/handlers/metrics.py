"""``/metrics``: Prometheus text exposition of session and HTTP metrics.

Sessions by state are counted from the store at scrape time; the counters and histograms come
from :mod:`raworc_spawner.sessions.metrics` and the request metrics of
:mod:`raworc_spawner.handlers.base`.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from raworc_spawner.handlers.api_base import ApiHandler
from raworc_spawner.handlers.base import route

SESSIONS_BY_STATE = Gauge(
    "raworc_sessions", "Sessions that exist now, by state (counted at scrape time).", ["state"]
)


class MetricsHandler(ApiHandler):
    """Prometheus metrics (no token needed: counts only, no session data)."""

    auth_required = False

    async def get(self) -> None:
        """Refresh the by-state gauge, then expose every registered metric."""
        for state, count in (await self.manager.count_by_state()).items():
            SESSIONS_BY_STATE.labels(state.value).set(count)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


routes = [route(r"/metrics", MetricsHandler, "metrics")]
