"""Process helpers for the local backend: watching for exit, identifying a pid, signalling.

A pid alone can be reused by the OS, so a process is identified by its pid *and* its start time
(field 22 of ``/proc/<pid>/stat``). Processes started by this server are awaited directly;
processes re-adopted after a restart are watched through a pidfd (Linux ≥ 5.3), else polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
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
    """A running (or re-adopted) session process."""

    pid: int
    start_time: int
    container_id: str
    port: int | None
    host: str
    watcher: ProcessWatcher
    stopping: bool = False


def address_space_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` capping the child's address space at ``limit`` bytes (best effort)."""

    def apply() -> None:
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply
