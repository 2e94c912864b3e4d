"""File helpers of the local backend: atomic small writes, and reading a log's tail or growth.

Reads are bounded: a session may write lines of any length and logs of any size, and neither
may make the server read more than a few MiB at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from raworc_spawner.loops import Backoff

#: The most bytes one read of a log returns (whole lines when the chunk holds a newline).
CHUNK_BYTES = 1024 * 1024
#: The most bytes a tail reads back from the end of a log.
TAIL_BYTES = 4 * 1024 * 1024


def write_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` at once (a reader sees the old or the new, never half).

    ``mode`` (e.g. ``0o600``) is set on the new file before it takes ``path``'s place, so the
    content is never readable with wider permissions; None leaves the umask's default.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if mode is None:
        tmp.write_text(text)
    else:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), mode)  # a leftover temporary file keeps its old mode
            f.write(text)
    os.replace(tmp, path)


def read_tail(path: Path, tail: int, *, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The last ``tail`` lines of ``path`` among its last ``max_bytes`` bytes; [] if absent.

    A first line cut by the byte bound is dropped unless it is the only one.
    """
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
    if start > 0 and len(lines) > 1:
        lines = lines[1:]
    return lines[-tail:] if tail > 0 else []


def read_from(path: Path, offset: int, *, max_bytes: int = CHUNK_BYTES) -> tuple[list[str], int]:
    """The lines written to ``path`` after byte ``offset`` (at most ``max_bytes`` of them),
    and the offset to read on from.

    When the bound cuts a line, the chunk ends at its last newline and the rest is read next
    time; a chunk without any newline is returned as it is.
    """
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(max_bytes)
    except FileNotFoundError:
        return [], offset
    if len(data) == max_bytes and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]
    return data.decode("utf-8", errors="replace").splitlines(keepends=True), offset + len(data)


def last_output(path: Path, *, lines: int, max_chars: int) -> str:
    """The last ``lines`` lines of a log, at most ``max_chars`` characters (the end kept)."""
    text = "".join(read_tail(path, lines)).strip()
    return text if len(text) <= max_chars else "…" + text[-max_chars:]


async def log_lines(
    path: Path, *, tail: int | None, follow: bool, running: Callable[[], bool]
) -> AsyncIterator[str]:
    """The lines of a log (its last ``tail`` ones first, when given); with ``follow`` it goes
    on reading what is written while ``running()`` is true.

    Read in bounded chunks (see :func:`read_from`): a log of any size streams without being
    held in memory.
    """
    offset = 0
    if tail:
        offset = path.stat().st_size if path.exists() else 0
        for line in await asyncio.to_thread(read_tail, path, tail):
            yield line
    # A file has no change notification here: poll it, more slowly while it is quiet.
    backoff = Backoff(initial=0.05, maximum=0.25, jitter=0.0)
    while True:
        chunk, offset = await asyncio.to_thread(read_from, path, offset)
        for line in chunk:
            yield line
        if chunk:
            backoff.reset()
            continue
        if not follow or not running():
            return
        await asyncio.sleep(backoff.next())
