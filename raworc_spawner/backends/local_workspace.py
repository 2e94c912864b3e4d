"""The local backend's workspaces: ``<data dir>/workspaces/<id>``, their volume ids and owners.

A workspace's ``persistent_volume_id`` (``pvc-<uuid>``) is made when its directory is made and
kept in ``run/<id>.volume`` and in the session's owner record
(:mod:`~raworc_spawner.backends.local_owner`); a directory made anew (after a loss, or on an
explicit request for a new workspace) gets a new one, so a record's volume id names one
directory's life.

Workspaces are not disposable: only :meth:`Workspaces.remove` (an explicit delete or the
retention policy) removes one. A create that expects a workspace (``expected_volume``) and
finds it gone, or finds another in its place, fails with ``WorkspaceLost`` and makes nothing.

Ownership: a workspace belongs to the instance its owner record names. One whose record names
another instance (a data directory shared by mistake by servers of different identities) is
left out of the backend's inventory and descriptions, reported as foreign, never deleted or
recreated. One without a record (made by a version that wrote none) is this data directory's,
and its next create writes the record; so a claim has nothing to do locally. Processes, by
contrast, belong to the data directory (:mod:`~raworc_spawner.backends.local_scan`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path

from raworc_spawner.backends.base import ForeignKind, ForeignObject, FoundSession, SessionSpec
from raworc_spawner.backends.local_owner import OwnerRecord, OwnerRecords
from raworc_spawner.backends.localfiles import write_atomic
from raworc_spawner.backends.procs import SessionProcess
from raworc_spawner.errors import SessionFailed


class Workspaces:
    """The workspace directories of one data directory, as seen by one owner instance."""

    def __init__(self, root: Path, *, instance_name: str) -> None:
        self.root = root
        self.instance_name = instance_name
        self.owners = OwnerRecords(root / "sessions")

    def path(self, session_id: str) -> Path:
        """The workspace directory of a session."""
        return self.root / "workspaces" / session_id

    def volume_file(self, session_id: str) -> Path:
        """Where the workspace's volume id is kept."""
        return self.root / "run" / f"{session_id}.volume"

    def volume_id(self, session_id: str) -> str | None:
        """The workspace's volume id: its volume file's, else its owner record's; None if none.

        The record holds it too because a server killed between writing the record and the
        volume file must still find the volume the record names.
        """
        found = self._volume_file_text(session_id)
        if found:
            return found
        record = self.owners.read(session_id)
        return record.volume_id if record is not None else None

    def _volume_file_text(self, session_id: str) -> str:
        try:
            return self.volume_file(session_id).read_text().strip()
        except FileNotFoundError:
            return ""

    def owner_of(self, session_id: str) -> str | None:
        """The instance the session's owner record names; None without a (readable) record."""
        record = self.owners.read(session_id)
        return record.instance if record is not None else None

    def is_foreign(self, session_id: str) -> bool:
        """Whether the session's record names another instance (never touched then)."""
        owner = self.owner_of(session_id)
        return owner is not None and owner != self.instance_name

    def names(self) -> frozenset[str]:
        """Sessions with a workspace directory, except those of other instances."""
        directory = self.root / "workspaces"
        if not directory.is_dir():
            return frozenset()
        found = {p.name for p in directory.iterdir() if p.is_dir()}
        return frozenset(found - self.foreign_sessions().keys())

    def foreign_sessions(self) -> dict[str, str]:
        """Session id → owner instance, for the records naming another instance."""
        return {
            sid: record.instance
            for sid, record in self.owners.all().items()
            if record.instance != self.instance_name
        }

    def foreign(self, *, running: Mapping[str, SessionProcess]) -> list[ForeignObject]:
        """The workspaces whose records name another instance, then their running processes.

        A workspace is reported with or without its directory (the record is what is there).
        """
        others = sorted(self.foreign_sessions().items())
        objects = [
            ForeignObject(ForeignKind.WORKSPACE, str(self.path(sid)), sid, instance)
            for sid, instance in others
        ]
        objects += [
            ForeignObject(ForeignKind.PROCESS, f"pid {running[sid].pid}", sid, instance)
            for sid, instance in others
            if sid in running
        ]
        return objects

    def describe(
        self, session_ids: Collection[str], *, running: Mapping[str, SessionProcess]
    ) -> list[FoundSession]:
        """The sessions among ``session_ids`` whose records name this instance, rebuilt.

        Only those whose directory exists or that are in ``running`` (their container id and
        ``has_compute`` come from there).
        """
        found = []
        for sid in sorted(set(session_ids)):
            record = self.owners.read(sid)
            if record is None or record.instance != self.instance_name:
                continue
            proc = running.get(sid)
            if proc is None and not self.path(sid).is_dir():
                continue
            container_id = proc.container_id if proc is not None else None
            volume_id = self.volume_id(sid)
            found.append(record.found(sid, container_id=container_id, volume_id=volume_id))
        return found

    def update_recorded(
        self, session_id: str, *, name: str, waiting_timeout_seconds: int | None
    ) -> None:
        """Put the session's changed fields in its owner record (only this instance's)."""
        record = self.owners.read(session_id)
        if record is not None and record.instance == self.instance_name:
            changed = dataclasses.replace(
                record, name=name, waiting_timeout_seconds=waiting_timeout_seconds
            )
            self.owners.write(session_id, changed)

    async def ensure(self, spec: SessionSpec) -> str:
        """Record the owner, make the workspace if it may be made, and return its volume id.

        Raises ``SessionFailed``: ``AlreadyExists`` when the record names another
        instance, ``WorkspaceLost`` when ``spec.expected_volume`` is set and the directory is
        gone or holds another volume, ``CloneSourceMissing`` when the workspace to copy is
        gone. The first two leave everything as it was.
        """
        sid = spec.session_id
        previous = self.owners.read(sid)
        if previous is not None and previous.instance != self.instance_name:
            raise SessionFailed(
                "AlreadyExists",
                f"workspace directory {self.path(sid)} exists and belongs to instance"
                f" {previous.instance} (record {self.owners.path(sid)}): left untouched",
            )
        present = self.path(sid).is_dir()
        volume_id = self.volume_id(sid) if present else None
        directory = directory_identity(self.path(sid)) if present else None
        recorded = previous.directory if previous else None
        replaced = present and recorded is not None and directory != recorded
        if spec.expected_volume is not None:
            self._check_expected(sid, spec.expected_volume, present=present, found=volume_id)
            if replaced:
                why = f"another directory ({directory}, was {recorded}) took its place"
                raise self._lost(sid, spec.expected_volume, why)
        if replaced:  # accepted as a new workspace: it gets a volume id of its own
            volume_id = None
        volume_id = volume_id or f"pvc-{uuid.uuid4()}"
        # The record comes first: a crash after it leaves no workspace without an owner.
        record = self._record(spec, previous, volume_id, directory)
        self.owners.write(sid, record)
        if not present:
            await self._make(sid, clone_from=spec.clone_from)
            made = directory_identity(self.path(sid))
            self.owners.write(sid, dataclasses.replace(record, directory=made))
        if self._volume_file_text(sid) != volume_id:
            write_atomic(self.volume_file(sid), volume_id)
        return volume_id

    def _record(
        self,
        spec: SessionSpec,
        previous: OwnerRecord | None,
        volume_id: str,
        directory: str | None,
    ) -> OwnerRecord:
        """The owner record of a session about to get (or keep) workspace ``volume_id``.

        A resume's spec carries no creation time or clone source: the previous record's stay.
        """
        return OwnerRecord(
            instance=self.instance_name,
            name=spec.name,
            owner=spec.owner,
            namespace=spec.namespace,
            profile=spec.profile,
            created_at=spec.created_at or (previous.created_at if previous else None),
            cloned_from=spec.clone_from or (previous.cloned_from if previous else None),
            volume_id=volume_id,
            directory=directory,
            waiting_timeout_seconds=spec.waiting_timeout_seconds,
            hub_server=spec.hub_server,
        )

    def _check_expected(self, sid: str, expected: str, *, present: bool, found: str | None) -> None:
        """Raise ``WorkspaceLost`` unless the workspace is there and is volume ``expected``."""
        if not present:
            raise self._lost(
                sid, expected, "its directory no longer exists (removed outside raworc)"
            )
        if found != expected:
            holds = f"volume {found}" if found else "a directory with no recorded volume"
            raise self._lost(sid, expected, f"another workspace ({holds}) took its place")

    def _lost(self, sid: str, volume: str, why: str) -> SessionFailed:
        """The failure of a resume whose workspace is not the one the record names."""
        return SessionFailed(
            "WorkspaceLost",
            f"cannot resume: workspace directory {self.path(sid)} (volume {volume}) is gone:"
            f" {why}; starting with a new empty workspace needs an explicit request"
            " (new_workspace)",
        )

    async def _make(self, sid: str, *, clone_from: str | None) -> None:
        """Create the directory, empty or as a copy of ``clone_from``'s workspace."""
        if clone_from is None:
            self.path(sid).mkdir(parents=True, exist_ok=True)
        else:
            await asyncio.to_thread(self._clone, clone_from, self.path(sid))

    def _clone(self, clone_from: str, workspace: Path) -> None:
        """Copy a workspace aside, then move it in place: a crash never leaves half a copy."""
        source = self.path(clone_from)
        if not source.is_dir():
            raise SessionFailed("CloneSourceMissing", f"workspace of {clone_from} is gone")
        partial = self.root / "clones" / f"{workspace.name}-{uuid.uuid4().hex[:8]}"
        shutil.copytree(source, partial, symlinks=True)
        os.replace(partial, workspace)

    async def remove(self, session_id: str) -> None:
        """Remove the workspace, its volume id and its owner record (the only path that does).

        The caller checks ownership first (:meth:`is_foreign`).
        """
        await asyncio.to_thread(shutil.rmtree, self.path(session_id), ignore_errors=True)
        self.volume_file(session_id).unlink(missing_ok=True)
        self.owners.remove(session_id)


def directory_identity(path: Path) -> str:
    """``<device>:<inode>`` of a directory: which directory it is, whatever its name."""
    stat = path.stat()
    return f"{stat.st_dev}:{stat.st_ino}"
