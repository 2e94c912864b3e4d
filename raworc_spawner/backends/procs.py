"""Process helpers for the local backend: watching for exit, identifying a pid, signalling.

A pid alone can be reused by the OS, so a process is identified by its pid *and* its start time
(field 22 of ``/proc/<pid>/stat``). Processes started by this server are awaited directly, which
gives their exit status; processes re-adopted after a restart are not this server's children, so
they are watched through a pidfd (Linux ≥ 5.3), else polled, and their exit status is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ExitCallback = Callable[[int | None], None]


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":
        return None  # a zombie has exited
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid`` (the session and its children)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class ProcessWatcher:
    """Calls back once when a process exits, and lets callers wait for that."""

    def __init__(self, on_exit: ExitCallback) -> None:
        self._on_exit = on_exit
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_child(cls, child: asyncio.subprocess.Process, on_exit: ExitCallback) -> ProcessWatcher:
        """Watch a process this server started."""
        watcher = cls(on_exit)
        watcher._task = asyncio.create_task(watcher._await_child(child))
        return watcher

    @classmethod
    def for_pid(cls, pid: int, on_exit: ExitCallback) -> ProcessWatcher:
        """Watch a process by pid (one a previous server started)."""
        watcher = cls(on_exit)
        watcher._task = asyncio.create_task(watcher._await_pid(pid))
        return watcher

    @property
    def done(self) -> bool:
        """Whether the process has exited."""
        return self._done.is_set()

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the exit; True if the process is gone."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._done.wait()
        return self._done.is_set()

    def close(self) -> None:
        """Stop watching (the process itself is left alone)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _await_child(self, child: asyncio.subprocess.Process) -> None:
        code = await child.wait()
        self._finish(code)

    async def _await_pid(self, pid: int) -> None:
        start = process_start_time(pid)
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            readable = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_reader(fd, readable.set)
            try:
                await readable.wait()
            finally:
                loop.remove_reader(fd)
                os.close(fd)
        else:
            # No pidfd (old kernel, not Linux): poll, the only portable way for a non-child.
            while start is not None:
                await asyncio.sleep(0.5)
                if process_start_time(pid) != start:
                    break
        self._finish(None)

    def _finish(self, code: int | None) -> None:
        self._done.set()
        self._on_exit(code)


@dataclass
class SessionProcess:
    """A running (or re-adopted) session process.

    ``started`` is when this server started or adopted it (``time.monotonic()``); ``ready``
    whether it has been found ready (it then reports its exit as an event).
    """

    pid: int
    start_time: int
    container_id: str
    port: int | None
    host: str
    watcher: ProcessWatcher
    stopping: bool = False
    ready: bool = False
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """How a session process ended, in the terms of a backend event.

    ``exit_code`` follows containers: the status for a normal exit, 128 + the signal number for
    a process killed by a signal (137 for SIGKILL), None when unknown.
    """

    reason: str
    message: str
    exit_code: int | None

    @classmethod
    def of(cls, returncode: int | None, *, output: str = "") -> ProcessExit:
        """From a ``returncode`` (negative: killed by that signal; None: unknown)."""
        if returncode is None:
            reason, code = "ProcessExited", None
            what = "exited; its exit status is unknown (it was started before this server)"
        elif returncode < 0:
            reason, code = "Killed", 128 - returncode
            what = f"was killed by signal {_signal_name(-returncode)} (exit code {code})"
        else:
            reason, code = ("Completed" if returncode == 0 else "ProcessExited"), returncode
            what = f"exited with exit status {returncode}"
        message = f"the session process {what}"
        if output:
            message += f"; last output:\n{output}"
        return cls(reason, message, code)

    @classmethod
    def start_error(cls, message: str) -> ProcessExit:
        """A process that could not be started at all."""
        return cls("StartError", message, None)

    @property
    def failed(self) -> bool:
        """Anything but a clean exit (status 0)."""
        return self.exit_code != 0


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return str(number)


def address_space_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` capping the child's address space at ``limit`` bytes (best effort)."""

    def apply() -> None:
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply
