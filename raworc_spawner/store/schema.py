"""The store's tables and the mapping between their rows and the session model.

The migrations in ``raworc_spawner/migrations`` create these tables; a test checks that a migrated
database and these definitions agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from raworc_spawner.sessions.model import EventKind, Session, SessionEvent, SessionState

TIMESTAMPS = ("created_at", "started_at", "last_activity_at", "terminated_at")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, kept to the millisecond on every backend.

    SQLite has no time zones: values are stored as naive UTC text (which sorts correctly) and
    made aware again on read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC milliseconds; drop the zone where the backend cannot keep it."""
        if value is None:
            return None
        value = to_utc_ms(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend handed back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def to_utc_ms(value: datetime) -> datetime:
    """``value`` in UTC, truncated to the millisecond; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} (the store keeps aware UTC times)")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sessions_table = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("namespace", sa.Text, nullable=False),
    sa.Column("starting_prompt", sa.Text, nullable=False),
    sa.Column("agent_ids", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("profile", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("waiting_timeout_seconds", sa.Integer),
    sa.Column("container_id", sa.Text),
    sa.Column("persistent_volume_id", sa.Text),
    sa.Column("parent_session_id", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("last_activity_at", UTCDateTime),
    sa.Column("terminated_at", UTCDateTime),
    sa.Column("termination_reason", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("backend", sa.String(32)),
    sa.Column("instance", sa.String(63)),
    sa.Index("ix_sessions_owner_created_at", "owner", "created_at"),
    sa.Index("ix_sessions_state_last_activity_at", "state", "last_activity_at"),
    sa.Index("ix_sessions_namespace", "namespace"),
    # Serves the unfiltered newest-first listing (an admin's view) and its keyset pages.
    sa.Index("ix_sessions_created_at_id", "created_at", "id"),
)

events_table = sa.Table(
    "session_events",
    metadata,
    sa.Column(
        "session_id",
        sa.Text,
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("state", sa.String(16)),
    sa.Column("reason", sa.Text),
    sa.Column("timestamp", UTCDateTime, nullable=False),
)


def session_values(session: Session) -> dict[str, Any]:
    """The row values of a session (timestamps normalised; no version)."""
    values: dict[str, Any] = {
        "id": session.id,
        "name": session.name,
        "owner": session.owner,
        "namespace": session.namespace,
        "starting_prompt": session.starting_prompt,
        "agent_ids": list(session.agent_ids),
        "metadata": session.metadata,
        "profile": session.profile,
        "state": SessionState(session.state).value,
        "waiting_timeout_seconds": session.waiting_timeout_seconds,
        "container_id": session.container_id,
        "persistent_volume_id": session.persistent_volume_id,
        "parent_session_id": session.parent_session_id,
        "termination_reason": session.termination_reason,
        "error": session.error,
        "backend": session.backend,
        "instance": session.instance,
    }
    for name in TIMESTAMPS:
        value = getattr(session, name)
        values[name] = None if value is None else to_utc_ms(value)
    return values


def row_to_session(row: sa.Row[Any]) -> Session:
    """The session a ``sessions`` row holds."""
    m = row._mapping
    return Session(
        id=m["id"],
        name=m["name"],
        owner=m["owner"],
        namespace=m["namespace"],
        starting_prompt=m["starting_prompt"],
        agent_ids=tuple(m["agent_ids"]),
        metadata=dict(m["metadata"]),
        profile=m["profile"],
        state=SessionState(m["state"]),
        waiting_timeout_seconds=m["waiting_timeout_seconds"],
        container_id=m["container_id"],
        persistent_volume_id=m["persistent_volume_id"],
        parent_session_id=m["parent_session_id"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        last_activity_at=m["last_activity_at"],
        terminated_at=m["terminated_at"],
        termination_reason=m["termination_reason"],
        error=m["error"],
        version=m["version"],
        backend=m["backend"],
        instance=m["instance"],
    )


def event_values(event: SessionEvent) -> dict[str, Any]:
    """The row values of an event."""
    return {
        "session_id": event.session_id,
        "seq": event.seq,
        "kind": EventKind(event.kind).value,
        "message": event.message,
        "state": None if event.state is None else SessionState(event.state).value,
        "reason": event.reason,
        "timestamp": event.timestamp,
    }


def row_to_event(row: sa.Row[Any]) -> SessionEvent:
    """The event a ``session_events`` row holds."""
    m = row._mapping
    return SessionEvent(
        session_id=m["session_id"],
        seq=m["seq"],
        kind=_event_kind(m["kind"]),
        message=m["message"],
        state=None if m["state"] is None else SessionState(m["state"]),
        reason=m["reason"],
        timestamp=m["timestamp"],
    )


def _event_kind(value: str) -> EventKind:
    """The kind of a stored event; kinds older versions wrote (e.g. ``exited``) read as warnings."""
    try:
        return EventKind(value)
    except ValueError:
        return EventKind.WARNING
