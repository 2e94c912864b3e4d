"""The local sessions' processes: start, watch, stop, and find them again after a restart.

Each start is recorded before its process exists (:mod:`~raworc_spawner.backends.local_records`)
and the process carries a marker naming it (:mod:`~raworc_spawner.backends.local_scan`), so that
whenever a server dies, the next one finds every process: by the recorded pid, else by the
marker. What a session leaves behind (children of an exited process, processes of an older
start, a start nobody recorded) is stopped, never left running unowned.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from raworc_spawner.backends.base import BackendEvent, BackendEventKind, EventSink
from raworc_spawner.backends.local_exec import check_exec_size
from raworc_spawner.backends.local_records import StartRecord, StartRecords
from raworc_spawner.backends.local_scan import (
    MARKER_VAR,
    Marker,
    ProcessTable,
    SeenProcess,
    kill_all,
    scan,
)
from raworc_spawner.backends.localfiles import last_output
from raworc_spawner.backends.procs import (
    ExitCallback,
    ProcessExit,
    ProcessWatcher,
    SessionProcess,
    address_space_limit,
    process_start_time,
    signal_group,
)
from raworc_spawner.errors import SessionFailed, ValidationError
from raworc_spawner.loops import BackgroundTasks

#: The most characters of a process's last output that go into its exit message.
MAX_OUTPUT_CHARS = 4000


def loopback_for(session_id: str, *, taken: set[str]) -> str:
    """A loopback address derived from the session id, not among ``taken``.

    Stable across restarts (a hash of the id); 127.0.0.1 when every candidate is taken.
    """
    digest = hashlib.sha256(session_id.encode()).digest()
    for i in range(len(digest) - 2):
        host = f"127.{100 + digest[i] % 100}.{digest[i + 1]}.{1 + digest[i + 2] % 254}"
        if host not in taken:
            return host
    return "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Launch:
    """What to start for a session: the command, its environment and where it runs."""

    session_id: str
    command: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    log_file: Path
    host: str
    port: int | None
    memory_limit: int | None = None


class ComputeSettings(Protocol):
    """The backend's settings read here (read at each use: they may change at run time)."""

    stop_grace_seconds: float
    log_tail_lines: int


class LocalCompute:
    """The session processes of one data directory, as this server watches them.

    ``procs`` holds the running (or stopping) process of each session; ``exits`` how the last
    one ended when none runs. Both are read by the backend without I/O.
    """

    def __init__(
        self,
        *,
        instance: str,
        records: StartRecords,
        log_file: Callable[[str], Path],
        settings: ComputeSettings,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.instance = instance
        self.records = records
        self.log = log
        self.procs: dict[str, SessionProcess] = {}
        self.exits: dict[str, ProcessExit] = {}
        self.sink: EventSink = lambda event: None
        self._settings = settings
        self._log_file = log_file
        self._spawning: set[str] = set()
        self._tasks = BackgroundTasks(log)
        self._scan_lock = asyncio.Lock()
        self._scans_started = 0
        self._last_scan: tuple[int, ProcessTable] | None = None  # (its number, the table)

    async def close(self) -> None:
        """Stop watching; the processes keep running."""
        for proc in self.procs.values():
            proc.watcher.close()
        self.procs.clear()
        await self._tasks.close()

    # -- starting ------------------------------------------------------------------------------

    async def spawn(self, launch: Launch) -> SessionProcess | None:
        """Start a session's process; None when it cannot start (``exits`` says why)."""
        sid = launch.session_id
        self.exits.pop(sid, None)
        container_id = str(uuid.uuid4())
        marker = Marker(self.instance, sid, container_id)
        launch = replace(launch, env={**launch.env, MARKER_VAR: marker.value()})
        try:
            check_exec_size(launch.command, launch.env)
        except ValidationError as e:
            self.exits[sid] = ProcessExit.start_error(f"cannot start: {e.message}")
            return None
        # Recorded before the process exists: a crash from here on leaves a record to find it.
        self.records.write(sid, StartRecord(container_id, launch.host, launch.port))
        self._spawning.add(sid)
        try:
            child = await _exec(launch)
        except (OSError, ValueError) as e:
            self.records.forget(sid, container_id)
            detail = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            program = launch.command[0]
            self.exits[sid] = ProcessExit.start_error(f"cannot run {program!r}: {detail}")
            return None
        finally:
            self._spawning.discard(sid)
        proc = SessionProcess(
            pid=child.pid,
            start_time=process_start_time(child.pid) or 0,
            container_id=container_id,
            port=launch.port,
            host=launch.host,
            watcher=ProcessWatcher.for_child(child, self._on_exit_of(sid, container_id, child.pid)),
        )
        self.procs[sid] = proc
        self.records.write(sid, StartRecord.of(proc))
        started = f"process {child.pid} started"
        self.sink(BackendEvent(sid, BackendEventKind.PROGRESS, started, "Started"))
        return proc

    def mark_ready(self, session_id: str, proc: SessionProcess) -> None:
        """Note that ``proc`` is ready: from now on its exit is an event."""
        if not proc.ready:
            proc.ready = True
            self.records.write(session_id, StartRecord.of(proc))

    def failure(self, session_id: str) -> SessionFailed:
        """Why a session has no process (for a wait for readiness)."""
        ended = self.exits.get(session_id)
        if ended is None:
            return SessionFailed("ProcessMissing", "the session process is not running")
        # Exiting, even cleanly, before being ready is a failed start.
        reason = "ProcessExited" if ended.reason == "Completed" else ended.reason
        return SessionFailed(reason, ended.message)

    # -- exits and stops -----------------------------------------------------------------------

    def _on_exit_of(self, sid: str, container_id: str, pid: int) -> ExitCallback:
        return lambda code: self._on_exit(sid, container_id, pid, code)

    def _on_exit(self, sid: str, container_id: str, pid: int, code: int | None) -> None:
        # What the process left goes with it, as a container's processes do: its group now,
        # what left the group once found. The record stays until then: a server that dies
        # meanwhile leaves the next one a dead pid, whose start's remains it then stops.
        signal_group(pid, signal.SIGKILL)
        self._tasks.spawn(self._clear_remains(sid, container_id), name=f"remains-{sid}")
        proc = self.procs.get(sid)
        if proc is None or proc.container_id != container_id:
            return
        del self.procs[sid]
        if proc.stopping:
            return
        output = last_output(
            self._log_file(sid), lines=self._settings.log_tail_lines, max_chars=MAX_OUTPUT_CHARS
        )
        ended = self.exits[sid] = ProcessExit.of(code, output=output)
        if proc.ready:  # an exit before ready is the readiness wait's to report
            event = BackendEvent(
                sid, BackendEventKind.EXITED, ended.message, ended.reason, ended.exit_code
            )
            self.sink(event)

    async def _clear_remains(self, session_id: str, container_id: str) -> None:
        """Stop what an exited start left running, then drop its record."""
        self._kill_strays(session_id, (await self.scan()).tree(session_id, container_id))
        self.records.forget(session_id, container_id)

    async def stop(self, session_id: str) -> None:
        """Stop the session's process (SIGTERM, grace, SIGKILL) and all it left behind."""
        proc = self.procs.get(session_id)
        if proc is None:
            # Started by a server that crashed, or by another server on this data directory
            # (a hub next to its service): find it so that it is stopped, not leaked.
            proc = self.recover(session_id, await self.scan())
        if proc is not None:
            proc.stopping = True
            signal_group(proc.pid, signal.SIGTERM)
            grace = self._settings.stop_grace_seconds
            if not await proc.watcher.wait(grace):
                self.log.warning("session %s ignored SIGTERM; sending SIGKILL", session_id)
                signal_group(proc.pid, signal.SIGKILL)
                await proc.watcher.wait(grace)
            proc.watcher.close()
            if self.procs.get(session_id) is proc:
                del self.procs[session_id]
        self.records.remove(session_id)
        self._kill_strays(session_id, (await self.scan()).tree(session_id))

    def _kill_strays(self, session_id: str, strays: Sequence[SeenProcess]) -> None:
        killed = kill_all(strays)
        if killed:
            self.log.warning("killed %d stray processes of session %s", killed, session_id)

    # -- finding processes ---------------------------------------------------------------------

    async def scan(self) -> ProcessTable:
        """A look at every process, taken after this call; concurrent callers share one.

        A caller needs the first scan that starts after it asks: while one runs, every caller
        arriving waits for the next, and the first of them to get the lock takes it for all.
        """
        needed = self._scans_started + 1
        async with self._scan_lock:
            if self._last_scan is not None and self._last_scan[0] >= needed:
                return self._last_scan[1]
            self._scans_started += 1
            number = self._scans_started
            table = await asyncio.to_thread(scan, self.instance)
            self._last_scan = (number, table)
            return table

    def recover(self, session_id: str, table: ProcessTable) -> SessionProcess | None:
        """Adopt the session's process by its record or its marker; kill the rest of it."""
        if session_id in self.procs or session_id in self._spawning:
            return self.procs.get(session_id)
        record = self.records.read(session_id)
        proc = self._adopt_recorded(session_id, record) or self._adopt_found(
            session_id, record, table
        )
        kept = {p.pid for p in table.tree(session_id, proc.container_id)} if proc else set()
        self._kill_strays(session_id, [p for p in table.tree(session_id) if p.pid not in kept])
        if proc is None and record.container_id is not None:
            self.records.forget(session_id, record.container_id)  # not a newer start's
        elif proc is None:
            self.records.remove(session_id)
        return proc

    def _adopt_recorded(self, session_id: str, record: StartRecord) -> SessionProcess | None:
        if record.pid is None or process_start_time(record.pid) != record.start_time:
            return None
        container_id = record.container_id or str(uuid.uuid4())
        return self._adopt(session_id, record.pid, replace(record, container_id=container_id))

    def _adopt_found(
        self, session_id: str, record: StartRecord, table: ProcessTable
    ) -> SessionProcess | None:
        """Adopt a start recorded without its pid (the server died spawning it) by its marker.

        Only then: a start whose pid was recorded has ended once that pid is gone, and a
        process without any record is what a start left behind (a daemon leading a group of
        its own looks like a start's process, but is younger than it).
        """
        if record.container_id is None or record.pid is not None:
            return None
        leader = table.leader(session_id, record.container_id)
        if leader is None:
            return None
        return self._adopt(session_id, leader.pid, replace(record, host=record.host or leader.host))

    def _adopt(self, session_id: str, pid: int, record: StartRecord) -> SessionProcess | None:
        start_time = process_start_time(pid)
        if start_time is None or record.container_id is None:
            return None
        on_exit = self._on_exit_of(session_id, record.container_id, pid)
        proc = SessionProcess(
            pid=pid,
            start_time=start_time,
            container_id=record.container_id,
            port=record.port if record.port and record.port > 0 else None,
            host=record.host or "127.0.0.1",
            watcher=ProcessWatcher.for_pid(pid, on_exit),
            ready=record.ready,
        )
        self.procs[session_id] = proc
        self.records.write(session_id, StartRecord.of(proc))
        self.log.info("re-adopted process %d of session %s", pid, session_id)
        return proc


async def _exec(launch: Launch) -> asyncio.subprocess.Process:
    launch.log_file.parent.mkdir(parents=True, exist_ok=True)
    limit = launch.memory_limit
    with launch.log_file.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *launch.command,
            cwd=launch.cwd,
            env=dict(launch.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=address_space_limit(limit) if limit else None,
        )
