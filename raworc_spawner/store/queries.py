"""Query pieces shared by the store's methods: filters, activity times, page cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from raworc_spawner import errors
from raworc_spawner.sessions.model import Session, SessionState
from raworc_spawner.store.schema import UTCDateTime, sessions_table, to_utc_ms

#: The most sessions or events one call returns.
MAX_PAGE_SIZE = 10_000

_S = sessions_table.c
# Milliseconds between the Julian-day epoch (SQLite's julianday()) and the Unix epoch.
_JULIAN_UNIX_EPOCH_MS = 210_866_760_000_000
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def list_conditions(
    owner: str | None,
    states: Collection[SessionState] | None,
    namespace: str | None,
    text: str | None,
    profile: str | None,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of a listing; ``None`` filters are left out."""
    conditions: list[sa.ColumnElement[bool]] = []
    if owner is not None:
        conditions.append(_S.owner == owner)
    if states is not None:
        conditions.append(_S.state.in_([SessionState(s).value for s in states]))
    if namespace is not None:
        conditions.append(_S.namespace == namespace)
    if profile is not None:
        conditions.append(_S.profile == profile)
    if text:
        conditions.append(
            sa.or_(_S.name.icontains(text, autoescape=True), _S.id.icontains(text, autoescape=True))
        )
    return conditions


def activity_anchor() -> sa.ColumnElement[datetime]:
    """When a session was last known to be in use."""
    return sa.func.coalesce(_S.last_activity_at, _S.started_at, _S.created_at, type_=UTCDateTime)


def later_of(column: sa.ColumnElement[datetime], value: datetime | None) -> Any:
    """SQL for the later of a timestamp column and ``value`` (either may be NULL)."""
    new = sa.literal(value, UTCDateTime)
    return sa.case((column.is_(None), new), (new > column, new), else_=column)


def sql_epoch_ms(value: sa.ColumnElement[datetime], dialect: str) -> sa.ColumnElement[Any]:
    """Milliseconds since the Unix epoch of a timestamp column, computed by the database."""
    if dialect == "sqlite":
        # julianday() is a double; rounding the product recovers SQLite's exact millisecond.
        julian_ms = sa.func.round(sa.func.julianday(value) * 86_400_000.0)
        return julian_ms - sa.literal(_JULIAN_UNIX_EPOCH_MS, sa.BigInteger)
    return sa.func.round(sa.extract("epoch", value) * 1000)


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    return (value - _UNIX_EPOCH) // timedelta(milliseconds=1)


def check_limit(limit: int) -> None:
    """Raise :class:`~raworc_spawner.errors.ValidationError` unless 1 <= ``limit`` <= 10 000."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise errors.ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")


def encode_cursor(last: Session) -> str:
    """The opaque, URL-safe cursor of the page that follows ``last``."""
    raw = json.dumps([to_utc_ms(last.created_at).isoformat(), last.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, id)`` of the last session of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, last_id = json.loads(raw)
        parsed = to_utc_ms(datetime.fromisoformat(created_at))
        if not isinstance(last_id, str):
            raise TypeError(last_id)
    except (binascii.Error, ValueError, TypeError) as e:
        raise errors.ValidationError("cursor", "is not a cursor returned by a list call") from e
    return parsed, last_id
