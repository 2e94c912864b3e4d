"""The local backend: a process per session and a workspace directory on disk.

This is the embedded default (``KUBERNETES_ENABLED=false``): the product runs on a laptop with no
cluster. Its stand-ins for the Kubernetes objects:

- the workspace (the PVC) is ``<data dir>/workspaces/<id>``; its ``persistent_volume_id`` is
  ``pvc-<uuid>``, a UUID made when the directory is first created and kept with it;
- the compute (the pod) is one process in its own process group, started in the workspace with
  the session's environment; its ``container_id`` is a UUID made at each start, as a pod's UID is.

A small state file per session (``<data dir>/run/<id>.json``) records the pid and its start time
so that a restarted server re-adopts running processes instead of leaking or duplicating them.
Memory limits use ``RLIMIT_AS`` and are best effort: they cap address space, not resident memory,
and are not applied on systems without ``resource``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import (
    BackendEvent,
    BackendEventKind,
    ComputeState,
    EventSink,
    Inventory,
    Placement,
    Profile,
    SessionSpec,
)
from raworc_spawner.backends.localfiles import read_from, read_tail, write_atomic
from raworc_spawner.backends.procs import (
    ProcessWatcher,
    SessionProcess,
    address_space_limit,
    process_start_time,
    signal_group,
)
from raworc_spawner.backends.status import LocalStatus, ProcessStatus, WorkspaceStatus
from raworc_spawner.errors import InvalidConfig, SessionFailed, ValidationError
from raworc_spawner.loops import Backoff
from raworc_spawner.quantity import QUANTITY_HELP, QuantityError, parse_quantity

KEEPALIVE = [
    sys.executable,
    "-c",
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "while True: time.sleep(3600)\n",
]


class LocalBackend(LoggingConfigurable):
    """Runs each session as a local process with a workspace directory."""

    name = "local"

    data_dir = Unicode(
        "data",
        help="""Directory holding workspaces (``workspaces/<id>``), process state (``run/``) and
        session logs (``logs/sessions/``). Relative paths are resolved against the working
        directory. Normally set by RaworcApp.data_dir.""",
    ).tag(config=True)

    command = List(
        Unicode(),
        default_value=KEEPALIVE,
        help="""Command each session runs (argv list), in its workspace directory. Default: a
        keep-alive Python process that sleeps until stopped.""",
    ).tag(config=True)

    extra_env = Dict(
        value_trait=Unicode(),
        help="""Extra environment variables for every session, after SESSION_ID, SESSION_NAME and
        STARTING_PROMPT (which they may not override).""",
    ).tag(config=True)

    memory_limit = Unicode(
        "",
        help="""Address-space limit per session process as a Kubernetes quantity (``1Gi``),
        enforced with RLIMIT_AS where the OS allows. Best effort: it limits virtual memory, not
        resident memory. Empty (the default) means no limit.""",
    ).tag(config=True)

    loopback_per_session = Bool(
        True,
        help="""Give each session its own loopback address (127.x.y.z, in ``SESSION_HOST``) so
        that several sessions can serve the same port; the session proxy forwards there. False:
        every session is reached on 127.0.0.1.""",
    ).tag(config=True)

    stop_grace_seconds = Float(
        5.0,
        help="""Seconds a session process gets after SIGTERM before SIGKILL (pause and delete).""",
    ).tag(config=True)

    ready_after_seconds = Float(
        0.2,
        help="""A started process counts as ready once it has stayed alive this many seconds. A
        process that exits sooner fails the session with its exit status and last log lines.""",
    ).tag(config=True)

    log_tail_lines = Int(
        20,
        help="""How many of a failed process's last log lines go into the session's error.""",
    ).tag(config=True)

    @validate("memory_limit")
    def _check_memory_limit(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        if value:
            try:
                parse_quantity(value)
            except QuantityError as e:
                raise InvalidConfig("LocalBackend.memory_limit", value, QUANTITY_HELP) from e
        return value

    @default("extra_env")
    def _default_extra_env(self) -> dict[str, str]:
        return {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._procs: dict[str, SessionProcess] = {}
        self._failures: dict[str, SessionFailed] = {}
        self._sink: EventSink = lambda event: None

    # -- paths -------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The data directory, absolute."""
        return Path(self.data_dir).resolve()

    def workspace(self, session_id: str) -> Path:
        """The workspace directory of a session."""
        return self.root / "workspaces" / session_id

    def _state_file(self, session_id: str) -> Path:
        return self.root / "run" / f"{session_id}.json"

    def _volume_file(self, session_id: str) -> Path:
        return self.root / "run" / f"{session_id}.volume"

    def log_file(self, session_id: str) -> Path:
        """Where a session process's stdout and stderr go."""
        return self.root / "logs" / "sessions" / f"{session_id}.log"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, sink: EventSink) -> None:
        """Create the directories and re-adopt processes left by a previous server."""
        self._sink = sink
        for sub in ("workspaces", "run", "logs/sessions"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for state_file in sorted((self.root / "run").glob("*.json")):
            self._adopt(state_file.stem)

    async def close(self) -> None:
        """Stop watching processes; they keep running and are re-adopted on the next start."""
        for proc in self._procs.values():
            proc.watcher.close()
        self._procs.clear()

    def profiles(self) -> Mapping[str, Profile]:
        """The local backend has no profiles."""
        return {}

    def validate(self, spec: SessionSpec) -> None:
        """Reject profiles: the local backend has none."""
        if spec.profile:
            raise ValidationError(
                "profile", f"unknown profile {spec.profile!r}: the local backend has no profiles"
            )

    async def create(self, spec: SessionSpec) -> Placement:
        """Create the workspace if needed and start the process if none runs."""
        volume_id = self._ensure_workspace(spec.session_id, clone_from=spec.clone_from)
        proc = self._procs.get(spec.session_id)
        if proc is None or proc.stopping:
            if proc is not None:
                await self._stop(spec.session_id)
            proc = await self._spawn(spec)
        return self._placement(spec.session_id, proc, volume_id)

    async def wait_ready(self, session_id: str, *, timeout: float) -> Placement:
        """Wait until the process has stayed up for ``ready_after_seconds``.

        A process that exits sooner fails at once (``SessionFailed`` with its exit status);
        one being stopped meanwhile is waited for until it is replaced or gone.
        """
        async with asyncio.timeout(timeout):
            proc = self._procs.get(session_id)
            if proc is not None and not proc.stopping:
                await proc.watcher.wait(self.ready_after_seconds)  # returns early on exit
            return await self._settled(session_id)

    async def _settled(self, session_id: str) -> Placement:
        """The placement of a running process; raise if it failed or is gone."""
        # Only a stop in progress (pause racing a start) is polled: it ends within
        # stop_grace_seconds, and the replacement process is not announced otherwise.
        backoff = Backoff(initial=0.01, maximum=0.1, jitter=0.0)
        while True:
            failure = self._failures.get(session_id)
            if failure is not None:
                raise failure
            proc = self._procs.get(session_id)
            if proc is None:
                raise SessionFailed("ProcessMissing", "the session process is not running")
            if not proc.stopping:
                return self._placement(session_id, proc, self._volume_id(session_id))
            await asyncio.sleep(backoff.next())

    async def pause(self, session_id: str) -> None:
        """Stop the process (SIGTERM, grace, SIGKILL) and keep the workspace."""
        await self._stop(session_id)

    async def delete(self, session_id: str) -> None:
        """Stop the process, then remove the workspace, state and log."""
        await self._stop(session_id)
        self._failures.pop(session_id, None)
        await asyncio.to_thread(shutil.rmtree, self.workspace(session_id), ignore_errors=True)
        for path in (
            self._volume_file(session_id),
            self._state_file(session_id),
            self.log_file(session_id),
        ):
            path.unlink(missing_ok=True)

    def compute_state(self, session_id: str) -> ComputeState:
        """Running, stopping, failed or absent, from the in-memory process table."""
        proc = self._procs.get(session_id)
        if proc is not None:
            return ComputeState.STOPPING if proc.stopping else ComputeState.RUNNING
        if session_id in self._failures:
            return ComputeState.FAILED
        return ComputeState.ABSENT

    def address(self, session_id: str) -> str | None:
        """The session's loopback address while its process runs."""
        proc = self._procs.get(session_id)
        return proc.host if proc is not None and not proc.stopping else None

    async def status(self, session_id: str) -> LocalStatus:
        """The process and the workspace as the OS sees them."""
        proc = self._procs.get(session_id)
        workspace = self.workspace(session_id)
        failure = self._failures.get(session_id)
        return LocalStatus(
            backend=self.name,
            compute=ProcessStatus(
                state=self.compute_state(session_id),
                reason=failure.reason if failure else None,
                message=failure.detail if failure else None,
                pid=proc.pid if proc else None,
                container_id=proc.container_id if proc else None,
                port=proc.port if proc else None,
                host=proc.host if proc else None,
            ),
            workspace=WorkspaceStatus(
                path=str(workspace),
                exists=workspace.is_dir(),
                persistent_volume_id=self._volume_id(session_id),
            ),
        )

    def process_id(self, session_id: str) -> int | None:
        """The pid of the session's process while this server watches one; None otherwise.

        Read-only, no I/O. A process being stopped still counts until it has exited.
        """
        proc = self._procs.get(session_id)
        return proc.pid if proc is not None else None

    def process_ids(self) -> dict[str, int]:
        """Session id → pid of every session process this server watches (a new dict)."""
        return {session_id: proc.pid for session_id, proc in self._procs.items()}

    async def logs(
        self, session_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[str]:
        """Lines of the session's log file; with ``follow`` keep reading while it runs."""
        path = self.log_file(session_id)
        lines = await asyncio.to_thread(read_tail, path, tail)
        for line in lines:
            yield line
        if not follow:
            return
        offset = path.stat().st_size if path.exists() else 0
        # A file has no change notification here: poll it, more slowly while it is quiet.
        backoff = Backoff(initial=0.05, maximum=0.25, jitter=0.0)
        while True:
            chunk, offset = await asyncio.to_thread(read_from, path, offset)
            for line in chunk:
                yield line
            if chunk:
                backoff.reset()
                continue
            if session_id not in self._procs:
                return
            await asyncio.sleep(backoff.next())

    async def inventory(self) -> Inventory:
        """Sessions with a process, and sessions with a workspace directory."""
        workspaces_dir = self.root / "workspaces"
        names = (
            frozenset(p.name for p in workspaces_dir.iterdir() if p.is_dir())
            if workspaces_dir.is_dir()
            else frozenset()
        )
        return Inventory(compute=frozenset(self._procs), workspaces=names)

    # -- internals ----------------------------------------------------------------------------

    def _ensure_workspace(self, session_id: str, *, clone_from: str | None) -> str:
        workspace = self.workspace(session_id)
        if not workspace.is_dir():
            if clone_from is not None:
                source = self.workspace(clone_from)
                if not source.is_dir():
                    raise SessionFailed("CloneSourceMissing", f"workspace of {clone_from} is gone")
                shutil.copytree(source, workspace, symlinks=True)
            else:
                workspace.mkdir(parents=True)
        volume_id = self._volume_id(session_id)
        if volume_id is None:
            volume_id = f"pvc-{uuid.uuid4()}"
            write_atomic(self._volume_file(session_id), volume_id)
        return volume_id

    def _volume_id(self, session_id: str) -> str | None:
        try:
            return self._volume_file(session_id).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _placement(self, session_id: str, proc: SessionProcess, volume_id: str | None) -> Placement:
        return Placement(
            container_id=proc.container_id,
            persistent_volume_id=volume_id,
            host=proc.host,
            port=proc.port,
        )

    def _host_for(self, session_id: str) -> str:
        """A loopback address for the session, distinct from every running session's."""
        if not self.loopback_per_session:
            return "127.0.0.1"
        taken = {proc.host for sid, proc in self._procs.items() if sid != session_id}
        digest = hashlib.sha256(session_id.encode()).digest()
        for i in range(len(digest) - 2):
            host = f"127.{100 + digest[i] % 100}.{digest[i + 1]}.{1 + digest[i + 2] % 254}"
            if host not in taken:
                return host
        return "127.0.0.1"

    def _env(self, spec: SessionSpec, host: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(self.workspace(spec.session_id)),
            "SESSION_HOST": host,
        }
        env.update(self.extra_env)
        env.update(spec.session_env())
        return env

    async def _spawn(self, spec: SessionSpec) -> SessionProcess:
        sid = spec.session_id
        self._failures.pop(sid, None)
        command = list(spec.command or self.command)
        log_path = self.log_file(sid)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        limit = int(parse_quantity(self.memory_limit)) if self.memory_limit else None
        host = self._host_for(sid)
        with log_path.open("ab") as log:
            try:
                child = await asyncio.create_subprocess_exec(
                    *command,
                    cwd=self.workspace(sid),
                    env=self._env(spec, host),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=address_space_limit(limit) if limit else None,
                )
            except OSError as e:
                raise SessionFailed("StartError", f"cannot run {command[0]!r}: {e}") from e
        proc = SessionProcess(
            pid=child.pid,
            start_time=process_start_time(child.pid) or 0,
            container_id=str(uuid.uuid4()),
            port=spec.port,
            host=host,
            watcher=ProcessWatcher.for_child(child, lambda code: self._on_exit(sid, code)),
        )
        self._procs[sid] = proc
        self._save_state(sid, proc)
        started = f"process {child.pid} started"
        self._sink(BackendEvent(sid, BackendEventKind.PROGRESS, started, "Started"))
        return proc

    def _adopt(self, session_id: str) -> None:
        try:
            state = json.loads(self._state_file(session_id).read_text())
            pid, start_time = int(state["pid"]), int(state["start_time"])
        except (OSError, ValueError, KeyError, TypeError):
            self._state_file(session_id).unlink(missing_ok=True)
            return
        if process_start_time(pid) != start_time:
            self._state_file(session_id).unlink(missing_ok=True)
            return
        watcher = ProcessWatcher.for_pid(pid, lambda code: self._on_exit(session_id, code))
        self._procs[session_id] = SessionProcess(
            pid=pid,
            start_time=start_time,
            container_id=str(state.get("container_id") or uuid.uuid4()),
            port=state.get("port"),
            host=str(state.get("host") or "127.0.0.1"),
            watcher=watcher,
        )
        self.log.info("re-adopted process %d of session %s", pid, session_id)

    def _save_state(self, session_id: str, proc: SessionProcess) -> None:
        state = {
            "pid": proc.pid,
            "start_time": proc.start_time,
            "container_id": proc.container_id,
            "port": proc.port,
            "host": proc.host,
        }
        write_atomic(self._state_file(session_id), json.dumps(state))

    def _on_exit(self, session_id: str, code: int | None) -> None:
        proc = self._procs.pop(session_id, None)
        self._state_file(session_id).unlink(missing_ok=True)
        if proc is None or proc.stopping:
            return
        tail = "".join(read_tail(self.log_file(session_id), self.log_tail_lines)).strip()
        status = f"exit status {code}" if code is not None else "an unknown exit status"
        message = f"the session process exited with {status}"
        if tail:
            message += f"; last output:\n{tail}"
        failure = SessionFailed("ProcessExited", message)
        self._failures[session_id] = failure
        self._sink(BackendEvent(session_id, BackendEventKind.EXITED, message, "ProcessExited"))

    async def _stop(self, session_id: str) -> None:
        if session_id not in self._procs:
            # Started by another server on the same data directory (a hub next to its
            # service): adopt it from its state file so that it is stopped, not leaked.
            self._adopt(session_id)
        proc = self._procs.get(session_id)
        if proc is None:
            self._state_file(session_id).unlink(missing_ok=True)
            return
        proc.stopping = True
        signal_group(proc.pid, signal.SIGTERM)
        if not await proc.watcher.wait(self.stop_grace_seconds):
            self.log.warning("session %s ignored SIGTERM; sending SIGKILL", session_id)
            signal_group(proc.pid, signal.SIGKILL)
            await proc.watcher.wait(self.stop_grace_seconds)
        proc.watcher.close()
        self._procs.pop(session_id, None)
        self._state_file(session_id).unlink(missing_ok=True)
