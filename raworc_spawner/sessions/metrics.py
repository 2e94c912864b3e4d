"""Prometheus metrics about sessions (the HTTP layer adds its own request metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)

SESSIONS_CREATED = Counter(
    "raworc_sessions_created_total", "Sessions created, by backend.", ["backend"]
)
SESSIONS_DELETED = Counter(
    "raworc_sessions_deleted_total", "Sessions deleted, by backend.", ["backend"]
)
SESSION_FAILURES = Counter(
    "raworc_session_failures_total", "Sessions that moved to error, by reason.", ["reason"]
)
TRANSITIONS = Counter(
    "raworc_session_transitions_total", "State transitions, by from and to state.", ["from", "to"]
)
CREATE_DURATION = Histogram(
    "raworc_session_create_duration_seconds",
    "Seconds from a create (or resume) request to the session being ready.",
    ["backend"],
    buckets=_DURATION_BUCKETS,
)
DELETE_DURATION = Histogram(
    "raworc_session_delete_duration_seconds",
    "Seconds to remove a session's compute, workspace and record.",
    ["backend"],
    buckets=_DURATION_BUCKETS,
)
SESSIONS_CULLED = Counter(
    "raworc_sessions_culled_total", "Sessions paused by the idle culler, by state.", ["state"]
)
SESSIONS_RETIRED = Counter(
    "raworc_sessions_retired_total", "Idle sessions deleted by the retention policy."
)
WAKES = Counter("raworc_session_wakes_total", "Sleeping sessions woken by a request.")
WAKE_DURATION = Histogram(
    "raworc_session_wake_duration_seconds",
    "Seconds from a request reaching a sleeping session to the session being ready.",
    buckets=_DURATION_BUCKETS,
)
ORPHANED_WORKSPACES = Gauge(
    "raworc_orphaned_workspaces",
    "Workspaces (PVCs, directories) with no session record, kept until an operator removes "
    "them (raworc-spawner cleanup --delete).",
)
