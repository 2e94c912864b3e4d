"""The local process behind one ``exec``: its streams as pipes, or one terminal for ``tty``."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .channels import Channel

CHUNK = 32 * 1024  # client-go's WebSocket buffers are 32 KiB


class LaunchPlan(Protocol):
    """How to start a command in a container's environment (argv, variables, directory)."""

    @property
    def argv(self) -> Sequence[str]: ...

    @property
    def env(self) -> Mapping[str, str]: ...

    @property
    def cwd(self) -> str: ...


@dataclass(frozen=True)
class Streams:
    """Which streams the client asked for (``stdin``/``stdout``/``stderr``/``tty`` query)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


Reader = Callable[[], Awaitable[bytes]]
"""Reads the next chunk of output; ``b""`` at the end."""


@dataclass
class ExecProcess:
    """A started command: feed its stdin, read its outputs, wait for it, or kill it."""

    proc: asyncio.subprocess.Process
    outputs: list[tuple[Channel, Reader]]
    _terminal: int | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    async def write_stdin(self, data: bytes) -> None:
        """Hand ``data`` to the command's stdin (dropped once stdin is closed)."""
        if self._terminal is not None:
            with contextlib.suppress(OSError):
                os.write(self._terminal, data)
            return
        if self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        """End of input: the command reads EOF (on a terminal, the EOF character)."""
        if self._terminal is not None:
            with contextlib.suppress(OSError):
                os.write(self._terminal, b"\x04")
        elif self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def resize(self, columns: int, rows: int) -> None:
        """Set the terminal's size (ignored without a terminal)."""
        if self._terminal is not None:
            size = struct.pack("HHHH", rows, columns, 0, 0)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self._terminal, termios.TIOCSWINSZ, size)

    def kill(self) -> None:
        """SIGKILL the command and everything it started (its own process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        """Release the terminal, if any (after the outputs were drained)."""
        for closer in self._closers:
            closer()
        self._closers.clear()


async def start(plan: LaunchPlan, streams: Streams) -> ExecProcess:
    """Start ``plan`` in its own session; raises OSError when it cannot be started."""
    if streams.tty:
        return await _start_on_terminal(plan, streams)
    pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
    proc = await asyncio.create_subprocess_exec(
        *plan.argv,
        env=dict(plan.env),
        cwd=plan.cwd,
        stdin=pipe if streams.stdin else devnull,
        stdout=pipe if streams.stdout else devnull,
        stderr=pipe if streams.stderr else devnull,
        start_new_session=True,
    )
    outputs: list[tuple[Channel, Reader]] = []
    for channel, stream in ((Channel.STDOUT, proc.stdout), (Channel.STDERR, proc.stderr)):
        if stream is not None:
            outputs.append((channel, _pipe_reader(stream)))
    return ExecProcess(proc, outputs)


def _pipe_reader(stream: asyncio.StreamReader) -> Reader:
    async def read() -> bytes:
        return await stream.read(CHUNK)

    return read


async def _start_on_terminal(plan: LaunchPlan, streams: Streams) -> ExecProcess:
    """One pseudo-terminal for stdin, stdout and stderr, as a container runtime gives ``-t``.

    It is nobody's controlling terminal yet: the command takes it (``setsid --ctty``) in its own
    session, where its shell can set the foreground process group.
    """
    leader, follower = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            *plan.argv,
            env={"TERM": "xterm", **plan.env},
            cwd=plan.cwd,
            stdin=follower,
            stdout=follower,
            stderr=follower,
            start_new_session=True,
        )
    except BaseException:
        os.close(leader)
        raise
    finally:
        os.close(follower)
    os.set_blocking(leader, False)
    outputs: list[tuple[Channel, Reader]] = []
    if streams.stdout:
        outputs.append((Channel.STDOUT, _terminal_reader(leader)))
    return ExecProcess(proc, outputs, leader, [lambda: os.close(leader)])


def _settle(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _terminal_reader(fd: int) -> Reader:
    """Reads the terminal's output; EIO (every writer closed) is the end, as on Linux."""

    async def read() -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(fd, CHUNK)
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_reader(fd, _settle, ready)
                try:
                    await ready
                finally:
                    loop.remove_reader(fd)
            except OSError:
                return b""

    return read
