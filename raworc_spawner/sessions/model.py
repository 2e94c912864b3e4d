"""The session record, its states and the transitions between them.

States::

    init ──► ready ⇄ idle          (pause: ready/busy/init → idle; resume: idle/error → init)
      │        ⇅                    busy is set by the session's agent, and cleared back to ready
      │      busy
      └──► error  (from any state, with a reason; a resume or retry leaves it)
    deleting  (from any state; the record goes once compute and workspace are gone)
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from raworc_spawner.errors import InvalidTransition


class SessionState(enum.StrEnum):
    """Where a session is in its life."""

    INIT = "init"
    READY = "ready"
    BUSY = "busy"
    IDLE = "idle"
    ERROR = "error"
    DELETING = "deleting"


S = SessionState

#: Allowed transitions: state → the states it may move to.
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.INIT: frozenset({S.READY, S.IDLE, S.ERROR, S.DELETING}),
    S.READY: frozenset({S.BUSY, S.IDLE, S.ERROR, S.DELETING, S.INIT}),
    S.BUSY: frozenset({S.READY, S.IDLE, S.ERROR, S.DELETING}),
    S.IDLE: frozenset({S.INIT, S.ERROR, S.DELETING}),
    S.ERROR: frozenset({S.INIT, S.IDLE, S.DELETING}),
    S.DELETING: frozenset({S.ERROR}),
}

#: States in which the session has (or is getting) compute.
ACTIVE_STATES = frozenset({S.INIT, S.READY, S.BUSY})


def check_transition(current: SessionState, target: SessionState) -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is allowed."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise InvalidTransition(
            f"cannot move a session from {current.value!r} to {target.value!r} "
            f"(allowed from {current.value!r}: {allowed})"
        )


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, to the millisecond (what every store keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_session_id() -> str:
    """A fresh session id (a random UUID, as Raworc uses)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Session:
    """One session: a workspace that persists and compute that comes and goes.

    ``namespace`` is a logical grouping chosen by the user, not the Kubernetes namespace.
    ``container_id`` identifies the current compute (the pod's UID on Kubernetes, a per-start
    UUID on the local backend); ``persistent_volume_id`` identifies the workspace
    (``pvc-<PVC UID>`` on Kubernetes, ``pvc-<workspace UUID>`` locally). ``backend`` is the
    backend they are on (``kubernetes``, ``local``; None for records older than that field
    until a server assigns its own): a session is never resumed on another backend without
    an explicit request for a new workspace. ``instance`` is the owner instance whose server
    made its objects: servers of other instances sharing the store leave it alone.
    """

    id: str
    name: str
    owner: str
    namespace: str = "default"
    starting_prompt: str = ""
    agent_ids: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    state: SessionState = SessionState.INIT
    waiting_timeout_seconds: int | None = None
    container_id: str | None = None
    persistent_volume_id: str | None = None
    parent_session_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    last_activity_at: datetime | None = None
    terminated_at: datetime | None = None
    termination_reason: str | None = None
    error: str | None = None
    version: int = 0
    backend: str | None = None
    instance: str | None = None

    def evolve(self, **changes: Any) -> Session:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The session as JSON-ready data (the REST API's representation)."""
        return {
            "id": self.id,
            "name": self.name,
            "namespace": self.namespace,
            "owner": self.owner,
            "starting_prompt": self.starting_prompt,
            "agent_ids": list(self.agent_ids),
            "metadata": self.metadata,
            "profile": self.profile,
            "state": self.state.value,
            "waiting_timeout_seconds": self.waiting_timeout_seconds,
            "container_id": self.container_id,
            "persistent_volume_id": self.persistent_volume_id,
            "parent_session_id": self.parent_session_id,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "last_activity_at": _iso(self.last_activity_at),
            "terminated_at": _iso(self.terminated_at),
            "termination_reason": self.termination_reason,
            "error": self.error,
            "backend": self.backend,
            "instance": self.instance,
        }


class EventKind(enum.StrEnum):
    """What a :class:`SessionEvent` records. Transitions carry the state they reached."""

    CREATED = "created"  # the record exists (state init)
    UPDATED = "updated"  # fields changed (no state change)
    RESUMING = "resuming"  # idle/error → init: compute is being created again
    RESTARTING = "restarting"  # lost compute is replaced (lost_compute_policy = restart)
    READY = "ready"  # compute is running
    AGENT = "agent"  # the session's agent set busy or ready
    PAUSED = "paused"  # scaled to zero on request or because compute went away
    CULLED = "culled"  # scaled to zero by the idle culler
    FAILED = "failed"  # moved to error, with a reason
    DELETING = "deleting"  # delete began
    DELETED = "deleted"  # the record is gone (live only, never stored)
    PROGRESS = "progress"  # a step towards ready (live only)
    WARNING = "warning"  # something worth a look that is not a failure
    RETENTION_WARNING = "retention-warning"  # the retention policy will delete the session
    RETIRED = "retired"  # the retention policy is deleting the session
    ADOPTED = "adopted"  # the record was rebuilt from the backend's objects (the store lacked it)


#: Kinds streamed live and kept in a small ring, never written to the store.
TRANSIENT_KINDS = frozenset({EventKind.PROGRESS, EventKind.WARNING})


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something that happened to a session: a transition, a progress step, a warning."""

    session_id: str
    seq: int
    kind: EventKind
    message: str
    state: SessionState | None = None
    reason: str | None = None
    timestamp: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, EventKind):  # a known kind given by value; else ValueError
            object.__setattr__(self, "kind", EventKind(self.kind))

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data."""
        return {
            "session_id": self.session_id,
            "seq": self.seq,
            "kind": self.kind.value,
            "message": self.message,
            "state": self.state.value if self.state else None,
            "reason": self.reason,
            "timestamp": _iso(self.timestamp),
        }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user name and whether they administer every session."""

    name: str
    admin: bool = False

    def may_see(self, session: Session) -> bool:
        """Admins see every session; users see their own."""
        return self.admin or session.owner == self.name
