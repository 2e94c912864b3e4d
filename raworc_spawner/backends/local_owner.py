"""The local backend's owner record of each session: ``<data dir>/sessions/<id>.json``.

The local stand-in for the annotations a Kubernetes backend puts on a session's claim and pod:
the instance that owns the session (``instance``, the backend's ``instance_name``) and what a
server whose store lost the session's record needs to rebuild it (name, owner, logical
namespace, profile, creation time, the session it was cloned from, the workspace's volume id).

Lifetime: written at every create, atomically and with mode 0600 (it names the session's
owner), *before* the workspace directory is made and the process started, so that a server
killed at any moment leaves no workspace of its making without one. Kept through pause (the
workspace is what survives a pause), removed only by delete, with the workspace.

Workspaces made by a version that wrote no record stay this data directory's (the inventory
lists them) but cannot be described (nothing to rebuild a record from); their next create
writes one. A record naming another instance means the data directory is shared by mistake
by two servers with different identities: that session is the other server's, never touched.

Example of a record::

    {"instance": "raworc-3f9a1c0b2d", "name": "demo", "owner": "alice",
     "namespace": "default", "profile": null, "created_at": "2025-01-02T03:04:05.678Z",
     "cloned_from": null, "volume_id": "pvc-0b5e…"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from raworc_spawner.backends.base import FoundSession, HubServer
from raworc_spawner.backends.localfiles import write_atomic

#: Owner records hold who owns a session: readable by the server's user only.
RECORD_MODE = 0o600


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix (a naive time is taken as UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: Any) -> datetime | None:
    """The time in an RFC 3339 string, in UTC; None when ``text`` is not one."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """Who owns a session's workspace and what its store record held (see module docstring)."""

    instance: str
    name: str
    owner: str
    namespace: str = "default"
    profile: str | None = None
    created_at: datetime | None = None
    cloned_from: str | None = None
    volume_id: str | None = None
    #: The workspace directory's identity (``<device>:<inode>``) once made: a directory
    #: replaced in place (removed and made again, moved aside) has another.
    directory: str | None = None
    waiting_timeout_seconds: int | None = None
    hub_server: HubServer | None = None

    def to_json(self) -> str:
        """The record as the JSON object written to its file."""
        data = {
            "instance": self.instance,
            "name": self.name,
            "owner": self.owner,
            "namespace": self.namespace,
            "profile": self.profile,
            "created_at": format_time(self.created_at) if self.created_at else None,
            "cloned_from": self.cloned_from,
            "volume_id": self.volume_id,
            "directory": self.directory,
            "waiting_timeout_seconds": self.waiting_timeout_seconds,
            "hub_server": (
                None
                if self.hub_server is None
                else {"user": self.hub_server.user, "name": self.hub_server.name}
            ),
        }
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def parse(cls, data: Any) -> OwnerRecord | None:
        """The record in decoded JSON; None when it lacks an instance, name or owner."""
        if not isinstance(data, dict):
            return None

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        instance, name, owner = text("instance"), text("name"), text("owner")
        if instance is None or name is None or owner is None:
            return None
        return cls(
            instance=instance,
            name=name,
            owner=owner,
            namespace=text("namespace") or "default",
            profile=text("profile"),
            created_at=parse_time(data.get("created_at")),
            cloned_from=text("cloned_from"),
            volume_id=text("volume_id"),
            directory=text("directory"),
            waiting_timeout_seconds=_seconds(data.get("waiting_timeout_seconds")),
            hub_server=_hub_server(data.get("hub_server")),
        )

    def found(
        self, session_id: str, *, container_id: str | None, volume_id: str | None
    ) -> FoundSession:
        """The session as :meth:`Backend.describe` answers it (compute when ``container_id``)."""
        return FoundSession(
            session_id=session_id,
            name=self.name,
            owner=self.owner,
            namespace=self.namespace,
            profile=self.profile,
            created_at=self.created_at,
            parent_session_id=self.cloned_from,
            persistent_volume_id=volume_id or self.volume_id,
            container_id=container_id,
            has_compute=container_id is not None,
            waiting_timeout_seconds=self.waiting_timeout_seconds,
            hub_server=self.hub_server,
        )


class OwnerRecords:
    """The ``sessions/*.json`` files of one data directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, session_id: str) -> Path:
        """The record file of a session."""
        return self.directory / f"{session_id}.json"

    def write(self, session_id: str, record: OwnerRecord) -> None:
        """Replace the session's record at once, mode 0600."""
        write_atomic(self.path(session_id), record.to_json(), mode=RECORD_MODE)

    def read(self, session_id: str) -> OwnerRecord | None:
        """The session's record; None when there is none or it cannot be read."""
        return self._load(self.path(session_id))

    def remove(self, session_id: str) -> None:
        """Remove the session's record (nothing when there is none)."""
        self.path(session_id).unlink(missing_ok=True)

    def all(self) -> dict[str, OwnerRecord]:
        """Every readable record, by session id."""
        if not self.directory.is_dir():
            return {}
        found = {path.stem: self._load(path) for path in sorted(self.directory.glob("*.json"))}
        return {sid: record for sid, record in found.items() if record is not None}

    @staticmethod
    def _load(path: Path) -> OwnerRecord | None:
        try:
            return OwnerRecord.parse(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None


def _seconds(value: object) -> int | None:
    """A non-negative whole number of seconds, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _hub_server(value: object) -> HubServer | None:
    """The hub server a record names, or None."""
    if not isinstance(value, dict) or not isinstance(value.get("user"), str):
        return None
    name = value.get("name")
    return HubServer(value["user"], name if isinstance(name, str) else "")
