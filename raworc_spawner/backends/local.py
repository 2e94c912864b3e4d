"""The local backend: a process per session and a workspace directory on disk.

This is the embedded default (``KUBERNETES_ENABLED=false``): the product runs on a laptop with no
cluster. Its stand-ins for the Kubernetes objects:

- the workspace (the PVC) is ``<data dir>/workspaces/<id>``; its ``persistent_volume_id`` is
  ``pvc-<uuid>``, a UUID made when the directory is created and kept with it (see
  :mod:`~raworc_spawner.backends.local_workspace`);
- the annotations are an owner record per session, ``<data dir>/sessions/<id>.json`` (see
  :mod:`~raworc_spawner.backends.local_owner`): the owner instance (``instance_name``) and what
  rebuilds the session's store record (:meth:`LocalBackend.describe`);
- the compute (the pod) is one process in its own process group, started in the workspace with
  the session's environment; its ``container_id`` is a UUID made at each start, as a pod's UID is.

Every session process carries ``RAWORC_COMPUTE_ID`` in its environment (see
:mod:`~raworc_spawner.backends.local_scan`), and a small state file per session
(``<data dir>/run/<id>.json``) records its start *before* the process is spawned, then its pid.
A restarted server re-adopts running processes from either, so a server killed at any moment
leaves no process it cannot find and stop. When a session's process exits, what remains of its
process group goes with it.

Ownership: processes belong to the data directory (the marker key); workspaces belong to the
instance their owner record names (see :mod:`~raworc_spawner.backends.local_workspace`).

Memory limits use ``RLIMIT_AS`` and are best effort: they cap address space, not resident memory,
and are not applied on systems without ``resource``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import (
    ComputeState,
    EventSink,
    ForeignObject,
    FoundSession,
    Inventory,
    Placement,
    Profile,
    SessionSpec,
)
from raworc_spawner.backends.local_compute import Launch, LocalCompute, loopback_for
from raworc_spawner.backends.local_exec import check_exec_size
from raworc_spawner.backends.local_ready import until_ready, waiting_for
from raworc_spawner.backends.local_records import StartRecords
from raworc_spawner.backends.local_scan import MARKER_VAR, Marker, instance_key
from raworc_spawner.backends.local_usage import CpuMeter
from raworc_spawner.backends.local_workspace import Workspaces
from raworc_spawner.backends.localfiles import log_lines
from raworc_spawner.backends.procs import SessionProcess
from raworc_spawner.backends.status import LocalStatus, ProcessStatus, WorkspaceStatus
from raworc_spawner.errors import InvalidConfig, ValidationError
from raworc_spawner.loops import Backoff
from raworc_spawner.quantity import QUANTITY_HELP, QuantityError, parse_quantity

#: Sleeps until stopped; SIGTERM ends it at once with status 0 (nothing to clean up).
KEEPALIVE = [
    sys.executable,
    "-c",
    "import os, signal, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: os._exit(0))\n"
    "while True: time.sleep(3600)\n",
]


class LocalBackend(LoggingConfigurable):
    """Runs each session as a local process with a workspace directory."""

    name = "local"

    instance_name = Unicode(
        "raworc",
        help="""The owner instance this server is: recorded in each session's owner record
        (``sessions/<id>.json``); sessions whose record names another instance are never
        touched. Given by the composition root (RaworcApp.instance_name or derived).""",
    )

    data_dir = Unicode(
        "data",
        help="""Directory holding workspaces (``workspaces/<id>``), their owner records
        (``sessions/<id>.json``, mode 0600), process state (``run/``) and session logs
        (``logs/sessions/``). Relative paths are resolved against the working directory.
        Normally set by RaworcApp.data_dir.""",
    ).tag(config=True)

    command = List(
        Unicode(),
        default_value=KEEPALIVE,
        minlen=1,
        help="""Command each session runs (argv list), in its workspace directory. Default: a
        keep-alive Python process that sleeps until stopped.""",
    ).tag(config=True)

    port = Int(
        0,
        min=0,
        max=65535,
        help="""TCP port the session command serves on, if it serves one. When set (or when the
        caller gives a port, as the hub does), a session is ready once its processes listen on
        that port and accept a connection, not after ``ready_after_seconds``. 0 (the default):
        no port; readiness is ``ready_after_seconds`` alive.""",
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
        help="""Without a port: a started process counts as ready once it has stayed alive this
        many seconds. A process that exits sooner fails the session with its exit status and
        last log lines. Not used when the session has a port (see ``port``).""",
    ).tag(config=True)

    log_tail_lines = Int(
        20,
        help="""How many of a process's last log lines go into the message of its exit (at most
        4000 characters).""",
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
        self._meter = CpuMeter()
        self._processes: LocalCompute | None = None
        self._dirs: Workspaces | None = None

    @property
    def _compute(self) -> LocalCompute:
        """The session processes (made at first use, once ``data_dir`` is final)."""
        if self._processes is None:
            self._processes = LocalCompute(
                instance=self.marker_key,
                records=StartRecords(self.root / "run"),
                log_file=self.log_file,
                settings=self,
                log=self.log,
            )
        return self._processes

    @property
    def _workspaces(self) -> Workspaces:
        """The workspace directories and owner records (made at first use, like the above)."""
        if self._dirs is None:
            self._dirs = Workspaces(self.root, instance_name=self.instance_name)
        return self._dirs

    # -- paths -------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The data directory, absolute."""
        return Path(self.data_dir).resolve()

    @property
    def marker_key(self) -> str:
        """The key in this data directory's processes' markers (not the owner instance)."""
        return instance_key(str(self.root))

    def workspace(self, session_id: str) -> Path:
        """The workspace directory of a session."""
        return self._workspaces.path(session_id)

    def log_file(self, session_id: str) -> Path:
        """Where a session process's stdout and stderr go."""
        return self.root / "logs" / "sessions" / f"{session_id}.log"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, sink: EventSink) -> None:
        """Create the directories and re-adopt processes left by a previous server."""
        self._compute.sink = sink
        for sub in ("workspaces", "sessions", "run", "logs/sessions"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.root / "clones", ignore_errors=True)  # copies cut short
        table = await self._compute.scan()
        for session_id in sorted(self._compute.records.sessions() | table.sessions()):
            self._compute.recover(session_id, table)

    async def close(self) -> None:
        """Stop watching processes; they keep running and are re-adopted on the next start."""
        await self._compute.close()

    def profiles(self) -> Mapping[str, Profile]:
        """The local backend has no profiles."""
        return {}

    def validate(self, spec: SessionSpec) -> None:
        """Reject profiles (there are none) and what ``execve`` could never carry.

        Every argument and environment entry must fit Linux's limits (see
        :mod:`~raworc_spawner.backends.local_exec`); the error names the one at fault.
        """
        if spec.profile:
            raise ValidationError(
                "profile", f"unknown profile {spec.profile!r}: the local backend has no profiles"
            )
        launch = self._launch(spec, "127.255.255.255")  # the longest address it may get
        marker = Marker(self.marker_key, spec.session_id, str(uuid.UUID(int=0)))
        check_exec_size(launch.command, {**launch.env, MARKER_VAR: marker.value()})

    async def create(self, spec: SessionSpec) -> Placement:
        """Record the owner, create the workspace if needed and start the process if none runs.

        With ``spec.expected_volume`` the workspace must be that volume's: if its directory is
        gone or holds another volume, ``SessionFailed("WorkspaceLost")`` names both and
        nothing is created (no directory, no process). A session whose owner record names
        another instance fails with ``AlreadyExists``. A process that cannot be started is
        reported by :meth:`wait_ready` (``StartError``).
        """
        volume_id = await self._workspaces.ensure(spec)
        proc = self._compute.procs.get(spec.session_id)
        if proc is None or proc.stopping:
            if proc is not None:
                await self._compute.stop(spec.session_id)
            host = self._host_for(spec.session_id)
            proc = await self._compute.spawn(self._launch(spec, host))
        if proc is None:
            return Placement(persistent_volume_id=volume_id)
        return self._placement(proc, volume_id)

    async def wait_ready(self, session_id: str, *, timeout: float) -> Placement:
        """Wait until the process is ready: listening on its port, else up for a while.

        A process that exits first fails at once (``SessionFailed`` with its exit status and
        last output); one being stopped meanwhile is waited for until it is replaced or gone.
        """
        backoff = Backoff(initial=0.01, maximum=0.1, jitter=0.0)
        async with asyncio.timeout(timeout):
            while True:
                proc = self._compute.procs.get(session_id)
                if proc is None:
                    raise self._compute.failure(session_id)
                if proc.stopping:
                    # Only a stop in progress (pause racing a start) is polled: it ends
                    # within stop_grace_seconds, and its replacement is not announced.
                    await asyncio.sleep(backoff.next())
                    continue
                ready = proc.ready or await until_ready(
                    proc, ready_after_seconds=self.ready_after_seconds
                )
                if ready and self._compute.procs.get(session_id) is proc and not proc.stopping:
                    self._compute.mark_ready(session_id, proc)
                    await self._usage_baseline(session_id, proc)
                    return self._placement(proc, self._workspaces.volume_id(session_id))

    async def _usage_baseline(self, session_id: str, proc: SessionProcess) -> None:
        """Look at the tree's CPU once at readiness, so usage windows start there."""
        try:
            table = await self._compute.scan()
        except Exception:  # a baseline is an optimisation; readiness never fails on it
            self.log.debug("no CPU baseline for %s", session_id, exc_info=True)
            return
        tree = table.tree(session_id, proc.container_id)
        self._meter.measure(session_id, proc.container_id, tree, now=time.time())

    async def pause(self, session_id: str) -> None:
        """Stop the process (SIGTERM, grace, SIGKILL) and keep the workspace.

        Afterwards the compute is absent, not failed: a failure was already reported, and its
        removal was asked for (the record keeps the error).
        """
        await self._compute.stop(session_id)
        self._compute.exits.pop(session_id, None)

    async def delete(self, session_id: str) -> None:
        """Stop the process, then remove the workspace, owner record, state and log.

        The only path that removes a workspace. A session whose owner record names another
        instance is not this server's: nothing is stopped or removed (a warning is logged).
        """
        if self._workspaces.is_foreign(session_id):
            owner = self._workspaces.owner_of(session_id)
            self.log.warning("session %s belongs to instance %r: not deleted", session_id, owner)
            return
        await self._compute.stop(session_id)
        self._compute.exits.pop(session_id, None)
        await self._workspaces.remove(session_id)
        self.log_file(session_id).unlink(missing_ok=True)

    def compute_state(self, session_id: str) -> ComputeState:
        """Starting, running, stopping, failed or absent, from the in-memory process table."""
        proc = self._compute.procs.get(session_id)
        if proc is not None:
            if proc.stopping:
                return ComputeState.STOPPING
            return ComputeState.RUNNING if proc.ready else ComputeState.STARTING
        ended = self._compute.exits.get(session_id)
        return ComputeState.FAILED if ended is not None and ended.failed else ComputeState.ABSENT

    def address(self, session_id: str) -> str | None:
        """The session's loopback address while its process runs."""
        proc = self._compute.procs.get(session_id)
        return proc.host if proc is not None and not proc.stopping else None

    def waiting_on(self, session_id: str) -> str | None:
        """What a starting process waits for (its port, or time alive); None otherwise."""
        proc = self._compute.procs.get(session_id)
        if proc is None or proc.stopping or proc.ready:
            return None
        return waiting_for(proc, self.ready_after_seconds)

    async def status(self, session_id: str) -> LocalStatus:
        """The process and the workspace as the OS sees them."""
        proc = self._compute.procs.get(session_id)
        workspace = self.workspace(session_id)
        ended = self._compute.exits.get(session_id) if proc is None else None
        return LocalStatus(
            backend=self.name,
            compute=ProcessStatus(
                state=self.compute_state(session_id),
                reason=ended.reason if ended else None,
                message=ended.message if ended else None,
                pid=proc.pid if proc else None,
                container_id=proc.container_id if proc else None,
                port=proc.port if proc else None,
                host=proc.host if proc else None,
            ),
            workspace=WorkspaceStatus(
                path=str(workspace),
                exists=workspace.is_dir(),
                persistent_volume_id=self._workspaces.volume_id(session_id),
            ),
        )

    def process_id(self, session_id: str) -> int | None:
        """The pid of the session's process while this server watches one; None otherwise.

        Read-only, no I/O. A process being stopped still counts until it has exited.
        """
        proc = self._compute.procs.get(session_id)
        return proc.pid if proc is not None else None

    def process_ids(self) -> dict[str, int]:
        """Session id → pid of every session process this server watches (a new dict)."""
        return {session_id: proc.pid for session_id, proc in self._compute.procs.items()}

    def logs(
        self, session_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[str]:
        """Lines of the session's log file; with ``follow`` keep reading while it runs.

        Read in bounded chunks: a log of any size streams without being held in memory.
        """
        return log_lines(
            self.log_file(session_id),
            tail=tail,
            follow=follow,
            running=lambda: session_id in self._compute.procs,
        )

    async def inventory(self) -> Inventory:
        """Sessions with a process, and sessions with a workspace directory: this instance's.

        Processes found by their marker and not yet watched (their start was cut short by a
        crash, or another server on this data directory started them) are adopted first.
        Sessions whose owner record names another instance are left out.
        """
        table = await self._compute.scan()
        for session_id in sorted(table.sessions() - set(self._compute.procs)):
            self._compute.recover(session_id, table)
        foreign = self._workspaces.foreign_sessions().keys()
        return Inventory(
            compute=frozenset(self._compute.procs) - foreign,
            workspaces=self._workspaces.names(),
        )

    async def describe(self, session_ids: Collection[str]) -> Sequence[FoundSession]:
        """The sessions among ``session_ids`` rebuilt from their owner records.

        Only records naming this instance, of sessions whose workspace directory or process
        exists now; workspaces without a record (an older version's) are absent.
        """
        return self._workspaces.describe(session_ids, running=self._running())

    async def foreign(self) -> Sequence[ForeignObject]:
        """Workspaces whose owner record names another instance, and their running processes.

        Usually empty: only a data directory shared by servers of different instances has any.
        """
        return self._workspaces.foreign(running=self._running())

    async def update_recorded(
        self, session_id: str, *, name: str, waiting_timeout_seconds: int | None
    ) -> None:
        """Put the session's changed fields in its owner record."""
        self._workspaces.update_recorded(
            session_id, name=name, waiting_timeout_seconds=waiting_timeout_seconds
        )

    async def claim(self, session_ids: Collection[str]) -> Sequence[str]:
        """Nothing to claim locally: returns [].

        A workspace without an owner record (an older version's) already counts as this data
        directory's, and a claim knows only its id, too little for a record; the session's next
        create writes the record.
        """
        return []

    async def usage(self, session_ids: Collection[str]) -> Mapping[str, float]:
        """CPU of each session's process tree in millicores, since the previous call.

        The tree and what counts in it are described in
        :mod:`~raworc_spawner.backends.local_usage`. The window of a session's first call
        starts when it became ready (its start-up's CPU does not count); a process adopted
        after a restart averages over its life so far.
        """
        running = {
            sid: proc
            for sid in session_ids
            if (proc := self._compute.procs.get(sid)) is not None and not proc.stopping
        }
        self._meter.keep_only(self._compute.procs)  # forget only what no longer runs
        if not running:
            return {}
        table = await self._compute.scan()
        now = time.time()
        found: dict[str, float] = {}
        for sid, proc in running.items():
            used = self._meter.measure(
                sid, proc.container_id, table.tree(sid, proc.container_id), now=now
            )
            if used is not None:
                found[sid] = used
        return found

    # -- internals: workspace ------------------------------------------------------------------

    def _running(self) -> dict[str, SessionProcess]:
        """The processes running now (not being stopped), by session id."""
        return {sid: proc for sid, proc in self._compute.procs.items() if not proc.stopping}

    # -- internals: processes ------------------------------------------------------------------

    def _placement(self, proc: SessionProcess, volume_id: str | None) -> Placement:
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
        taken = {proc.host for sid, proc in self._compute.procs.items() if sid != session_id}
        return loopback_for(session_id, taken=taken)

    def _env(self, spec: SessionSpec, host: str) -> dict[str, str]:
        """The session's environment (its process also gets its marker, RAWORC_COMPUTE_ID)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(self.workspace(spec.session_id)),
            "SESSION_HOST": host,
        }
        env.update(self.extra_env)
        env.update(spec.session_env())
        env.pop(MARKER_VAR, None)
        return env

    def _launch(self, spec: SessionSpec, host: str) -> Launch:
        return Launch(
            session_id=spec.session_id,
            command=list(spec.command or self.command),
            env=self._env(spec, host),
            cwd=self.workspace(spec.session_id),
            log_file=self.log_file(spec.session_id),
            host=host,
            port=spec.port or self.port or None,
            memory_limit=int(parse_quantity(self.memory_limit)) if self.memory_limit else None,
        )
