"""Process mode's container runtime: one local process (group) per running container.

A container's process is started from its :class:`~kubesim.control.sandbox.ProcessPlan` in a new
session, so the process and everything it starts share one process group; with bubblewrap they
also share a PID namespace, which the kernel empties when the command exits. Its output becomes
the container log. When the command exits the rest of its group is killed, as a container's
processes die with its main process.

Stopping a pod sends SIGTERM to its processes (the command and its children, not bubblewrap's
own helpers) and SIGKILL to the whole group once the grace period is over (at once for 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .logs import LogBook
from .sandbox import ProcessPlan

PodKey = tuple[str, str]
ExitCallback = Callable[[PodKey, str, str, int], None]
"""Called with (pod key, pod uid, container name, exit code) when a container's process ends."""
START_FAILED = 128  # the exit code runtimes report for a process that could not be started


@dataclass
class _Process:
    """One container's process, or its start still under way (``proc`` None)."""

    key: PodKey
    sandboxed: bool
    proc: asyncio.subprocess.Process | None = None
    stop_grace: float | None = None
    """Set once the pod is being stopped (seconds until SIGKILL)."""
    done: asyncio.Event = field(default_factory=asyncio.Event)


def exit_code(returncode: int) -> int:
    """A container's exit code: 128 + the signal for a process killed by one (137 for KILL)."""
    return 128 - returncode if returncode < 0 else returncode


def group_members(pgid: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every process in process group ``pgid``, from /proc."""
    members: list[tuple[int, int]] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            members.append((int(entry.name), int(fields[1])))
    return members


class ProcessRuntime:
    """Starts, watches and stops the processes of containers, keyed by pod uid and container."""

    def __init__(self, logs: LogBook) -> None:
        self.logs = logs
        self._procs: dict[tuple[str, str], _Process] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped_callbacks: dict[str, list[Callable[[], None]]] = {}

    # -- queries -------------------------------------------------------------------------------
    def has_processes(self, uid: str) -> bool:
        """Whether any process of the pod is starting or running."""
        return any(u == uid for u, _ in self._procs)

    def pids(self, uid: str) -> dict[str, int]:
        """The host pid (bubblewrap's when sandboxed) of each running container of a pod."""
        return {
            name: p.proc.pid
            for (u, name), p in self._procs.items()
            if u == uid and p.proc is not None
        }

    # -- starting ------------------------------------------------------------------------------
    def start(
        self, key: PodKey, uid: str, name: str, plan: ProcessPlan, *, on_exit: ExitCallback
    ) -> None:
        """Start the container's process in the background; ``on_exit`` reports its end."""
        entry = _Process(key, plan.sandboxed)
        self._procs[(uid, name)] = entry
        self._spawn(self._run(uid, name, entry, plan, on_exit))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, uid: str, name: str, entry: _Process, plan: ProcessPlan, on_exit: ExitCallback
    ) -> None:
        log_key = (*entry.key, name)
        try:
            entry.proc = await asyncio.create_subprocess_exec(
                *plan.argv,
                cwd=plan.cwd,
                env=dict(plan.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            self.logs.append(log_key, f"kubesim: cannot start {plan.argv[0]}: {e}")
            self._finish(uid, name, entry, on_exit, START_FAILED)
            return
        if entry.stop_grace is not None:  # the pod was stopped while this process started
            self._spawn(self._stop(entry, entry.stop_grace))
        reader = asyncio.get_running_loop().create_task(self._read_log(entry.proc, log_key))
        code = exit_code(await entry.proc.wait())
        # The main process is gone: so is the container, and every process left in it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(entry.proc.pid, signal.SIGKILL)
        # A process that left the group may still hold the output open: stop reading then.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, timeout=2.0)
        self._finish(uid, name, entry, on_exit, code)

    async def _read_log(self, proc: asyncio.subprocess.Process, key: tuple[str, str, str]) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            self.logs.append(key, raw.decode(errors="replace").rstrip("\n"))

    def _finish(
        self, uid: str, name: str, entry: _Process, on_exit: ExitCallback, code: int
    ) -> None:
        if self._procs.get((uid, name)) is entry:
            del self._procs[(uid, name)]
        entry.done.set()
        on_exit(entry.key, uid, name, code)
        if not self.has_processes(uid):
            for callback in self._stopped_callbacks.pop(uid, []):
                callback()

    # -- stopping ------------------------------------------------------------------------------
    def kill(self, uid: str, name: str) -> None:
        """SIGKILL one container's processes (an injected OOM kill)."""
        entry = self._procs.get((uid, name))
        if entry is not None and entry.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(entry.proc.pid, signal.SIGKILL)

    def stop_pod(self, uid: str, grace: float, *, on_stopped: Callable[[], None]) -> None:
        """Stop every process of the pod; ``on_stopped`` runs once none is left (maybe at once).

        SIGTERM first, SIGKILL for the whole group after ``grace`` seconds (at once for 0).
        """
        entries = [p for (u, _), p in self._procs.items() if u == uid]
        if not entries:
            on_stopped()
            return
        self._stopped_callbacks.setdefault(uid, []).append(on_stopped)
        for entry in entries:
            if entry.stop_grace is not None and grace >= entry.stop_grace:
                continue  # already stopping, at least as soon (a force delete shortens it)
            entry.stop_grace = max(grace, 0.0)
            if entry.proc is not None:
                self._spawn(self._stop(entry, entry.stop_grace))

    async def _stop(self, entry: _Process, grace: float) -> None:
        assert entry.proc is not None
        deadline = asyncio.get_running_loop().time() + grace
        # Until the command itself runs (bubblewrap still setting up) there is no one to
        # SIGTERM: keep trying, as a runtime signals the container's process once it exists.
        while grace > 0 and not self._terminate(entry) and not entry.done.is_set():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.done.wait(), timeout=min(0.05, left))
        left = deadline - asyncio.get_running_loop().time()
        if grace > 0 and left > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.done.wait(), timeout=left)
        if not entry.done.is_set():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(entry.proc.pid, signal.SIGKILL)

    @staticmethod
    def _terminate(entry: _Process) -> bool:
        """SIGTERM the container's processes; under bubblewrap not its helpers, which would
        take the sandbox down at once instead of letting the command shut down. Returns
        whether any process got the signal."""
        assert entry.proc is not None
        pgid = entry.proc.pid
        if not entry.sandboxed:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                return False
            return True
        signalled = False
        for pid, parent in group_members(pgid):
            if pid != pgid and parent != pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
                    signalled = True
        return signalled

    async def stop_all(self) -> None:
        """Kill every process (kubesim is stopping) and wait for them to be reaped."""
        for entry in list(self._procs.values()):
            if entry.proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(entry.proc.pid, signal.SIGKILL)
        waits = [e.done.wait() for e in self._procs.values() if e.proc is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), timeout=5.0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
