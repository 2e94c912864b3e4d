"""What a caller may add to a session's backend spec, and the spec built from a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from raworc_spawner.backends.base import HubServer, SessionSpec
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
        waiting_timeout_seconds=session.waiting_timeout_seconds,
        hub_server=hub_server_of(session.metadata),
    )


#: The metadata key of a session that is a JupyterHub server (set by the hub's spawner).
HUB_METADATA_KEY = "jupyterhub"


def hub_server_of(metadata: Mapping[str, object]) -> HubServer | None:
    """The JupyterHub server a session's metadata names, if any."""
    entry = metadata.get(HUB_METADATA_KEY)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("user"), str):
        return None
    name = entry.get("server_name")
    return HubServer(str(entry["user"]), name if isinstance(name, str) else "")


def hub_metadata(server: HubServer | None) -> dict[str, object]:
    """The metadata that marks a session as JupyterHub ``server`` (empty for None)."""
    if server is None:
        return {}
    return {HUB_METADATA_KEY: {"user": server.user, "server_name": server.name}}
