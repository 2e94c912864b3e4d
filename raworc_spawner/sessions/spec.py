"""What a caller may add to a session's backend spec, and the spec built from a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.sessions.model import Session


@dataclass(frozen=True, slots=True)
class SpecOverrides:
    """Fields a caller sets on a session's compute beyond the record's own.

    The hub's spawner passes its server's ``command``, ``port``, ``env`` and ``resources``
    (``cpu_request``/``cpu_limit``/``memory_request``/``memory_limit`` → Kubernetes quantities)
    and picks the ``session_id`` itself; a remix sets ``clone_from`` (the parent session whose
    workspace is copied). None and empty values leave the backend's defaults.
    ``new_workspace``: the caller accepts a new, empty workspace in place of the record's
    (after ``WorkspaceLost``, or to move a session to this server's backend).
    """

    session_id: str | None = None
    clone_from: str | None = None
    command: Sequence[str] | None = None
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, str] = field(default_factory=dict)
    new_workspace: bool = False


NO_OVERRIDES = SpecOverrides()


def build_spec(session: Session, overrides: SpecOverrides = NO_OVERRIDES) -> SessionSpec:
    """The backend spec of ``session`` with the caller's overrides applied."""
    return SessionSpec(
        session_id=session.id,
        name=session.name,
        owner=session.owner,
        starting_prompt=session.starting_prompt,
        profile=session.profile,
        env=overrides.env,
        command=overrides.command,
        port=overrides.port,
        resources=overrides.resources,
        clone_from=overrides.clone_from,
        namespace=session.namespace,
        created_at=session.created_at,
        expected_volume=None if overrides.new_workspace else session.persistent_volume_id,
    )
