"""Finding a local session's processes by the marker each one carries in its environment.

Every session process is started with ``RAWORC_COMPUTE_ID=<instance>:<session id>:<container
id>`` (:class:`Marker`), where ``instance`` is derived from the data directory. The marker is
written into the process before it runs any code of its own and is inherited by everything it
starts, so it survives what a pid file cannot: a server killed between spawning a process and
recording it, a child that left the process group (``setsid``), a leader that exited and left
children behind. A restarted server scans for it (:func:`scan`) to re-adopt or stop them.

A process that clears its own environment (``env -i``) still belongs to the session while it
descends from a marked process: :meth:`ProcessTable.tree` follows parent links too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

#: The environment variable that marks a process as a local session's compute.
MARKER_VAR = "RAWORC_COMPUTE_ID"


def instance_key(data_dir: str) -> str:
    """A short key naming one data directory (servers sharing it share their sessions)."""
    return hashlib.sha256(data_dir.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Marker:
    """Which instance, session and start (container id) a process belongs to."""

    instance: str
    session_id: str
    container_id: str

    def value(self) -> str:
        """The text of ``RAWORC_COMPUTE_ID``."""
        return f"{self.instance}:{self.session_id}:{self.container_id}"

    @classmethod
    def parse(cls, text: str | None) -> Marker | None:
        """The marker in ``text``, or None when it is not one."""
        parts = (text or "").split(":")
        if len(parts) != 3 or not all(parts):
            return None
        return cls(*parts)


@dataclass(frozen=True, slots=True)
class SeenProcess:
    """One process as a scan saw it.

    ``cpu`` is its CPU time in seconds: user and system, plus the time of the children it has
    reaped (``children_user``/``children_system``). ``created`` is seconds since the epoch.
    """

    pid: int
    ppid: int
    created: float
    cpu: float
    marker: Marker | None
    host: str | None

    @property
    def key(self) -> tuple[int, float]:
        """The process's identity: a pid alone may be reused."""
        return (self.pid, self.created)


class ProcessTable:
    """Every process of one instance's sessions at one moment, and their descendants."""

    def __init__(self, instance: str, processes: Iterable[SeenProcess]) -> None:
        self.instance = instance
        self._all = {p.pid: p for p in processes}
        self._children: dict[int, list[int]] = {}
        for p in self._all.values():
            self._children.setdefault(p.ppid, []).append(p.pid)

    def sessions(self) -> set[str]:
        """Sessions with at least one marked process."""
        return {p.marker.session_id for p in self._marked() if p.marker is not None}

    def containers(self, session_id: str) -> dict[str, list[SeenProcess]]:
        """The session's marked processes by container id, oldest first."""
        found: dict[str, list[SeenProcess]] = {}
        for p in sorted(self._marked(session_id), key=lambda p: (p.created, p.pid)):
            assert p.marker is not None
            found.setdefault(p.marker.container_id, []).append(p)
        return found

    def leader(self, session_id: str, container_id: str) -> SeenProcess | None:
        """The process a start ran: the oldest marked one leading its own process group."""
        for p in self.containers(session_id).get(container_id, []):
            with contextlib.suppress(OSError):
                if os.getpgid(p.pid) == p.pid:
                    return p
        return None

    def tree(self, session_id: str, container_id: str | None = None) -> list[SeenProcess]:
        """The session's marked processes (of one start, or all) and all their descendants."""
        todo = [p.pid for p in self._marked(session_id, container_id)]
        seen: dict[int, SeenProcess] = {}
        while todo:
            pid = todo.pop()
            if pid in seen or pid not in self._all:
                continue
            seen[pid] = self._all[pid]
            todo.extend(self._children.get(pid, ()))
        return list(seen.values())

    def _marked(
        self, session_id: str | None = None, container_id: str | None = None
    ) -> list[SeenProcess]:
        return [
            p
            for p in self._all.values()
            if p.marker is not None
            and p.marker.instance == self.instance
            and session_id in (None, p.marker.session_id)
            and container_id in (None, p.marker.container_id)
        ]


_ATTRS = ["pid", "ppid", "create_time", "cpu_times", "environ"]


def scan(instance: str) -> ProcessTable:
    """Look at every process once (blocking: run it in a thread); about 0.1 ms per process.

    Processes this user may not inspect and zombies show no environment, hence no marker.
    """
    seen = []
    for proc in psutil.process_iter(_ATTRS, ad_value=None):
        info = proc.info
        if info["create_time"] is None:
            continue
        env = info["environ"] or {}
        times = info["cpu_times"]
        cpu = (
            times.user + times.system + times.children_user + times.children_system
            if times is not None
            else 0.0
        )
        seen.append(
            SeenProcess(
                pid=info["pid"],
                ppid=info["ppid"] or 0,
                created=info["create_time"],
                cpu=cpu,
                marker=Marker.parse(env.get(MARKER_VAR)),
                host=env.get("SESSION_HOST"),
            )
        )
    return ProcessTable(instance, seen)


def kill_all(processes: Iterable[SeenProcess]) -> int:
    """SIGKILL each process that is still the one seen (same pid and start); how many."""
    killed = 0
    for seen in processes:
        with contextlib.suppress(psutil.Error, OSError):
            proc = psutil.Process(seen.pid)
            if proc.create_time() == seen.created:
                proc.send_signal(signal.SIGKILL)
                killed += 1
    return killed
