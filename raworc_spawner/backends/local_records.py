"""The local backend's record of each session's current start: ``<data dir>/run/<id>.json``.

A start is recorded twice: *before* its process is spawned (container id, address, port; no
pid yet), then with the pid and start time once it runs, and again when it is found ready. A
server killed between the two writes leaves a record naming the start's container id, which the
process carries in its marker; the next server finds the process by it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from raworc_spawner.backends.localfiles import write_atomic
from raworc_spawner.backends.procs import SessionProcess


@dataclass(frozen=True, slots=True)
class StartRecord:
    """One start of a session's process as recorded (``pid`` None: not known to be running)."""

    container_id: str | None = None
    host: str | None = None
    port: int | None = None
    pid: int | None = None
    start_time: int | None = None
    ready: bool = False

    @classmethod
    def of(cls, proc: SessionProcess) -> StartRecord:
        """The record of a running process."""
        return cls(proc.container_id, proc.host, proc.port, proc.pid, proc.start_time, proc.ready)

    @classmethod
    def parse(cls, data: Any) -> StartRecord:
        """A record from its JSON (fields of the wrong type are left out)."""
        if not isinstance(data, dict):
            return cls()

        def typed(name: str, kind: type) -> Any:
            value = data.get(name)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        return cls(
            container_id=typed("container_id", str),
            host=typed("host", str),
            port=typed("port", int),
            pid=typed("pid", int),
            start_time=typed("start_time", int),
            ready=data.get("ready") is True,
        )


class StartRecords:
    """The ``run/*.json`` files of one data directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def path(self, session_id: str) -> Path:
        """The record file of a session."""
        return self.run_dir / f"{session_id}.json"

    def sessions(self) -> set[str]:
        """Sessions with a record."""
        return {path.stem for path in self.run_dir.glob("*.json")}

    def write(self, session_id: str, record: StartRecord) -> None:
        """Replace the session's record at once."""
        write_atomic(self.path(session_id), json.dumps(asdict(record)))

    def read(self, session_id: str) -> StartRecord:
        """The session's record (an empty one when there is none, or it is unreadable)."""
        try:
            return StartRecord.parse(json.loads(self.path(session_id).read_text()))
        except (OSError, ValueError):
            return StartRecord()

    def remove(self, session_id: str) -> None:
        """Remove the session's record."""
        self.path(session_id).unlink(missing_ok=True)

    def forget(self, session_id: str, container_id: str) -> None:
        """Remove the session's record if it is still of this start (not of a newer one)."""
        if self.read(session_id).container_id == container_id:
            self.remove(session_id)
