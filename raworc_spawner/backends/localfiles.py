"""File helpers of the local backend: atomic small writes, and reading a log's tail or growth."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (a reader sees the old or the new, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_tail(path: Path, tail: int | None) -> list[str]:
    """The last ``tail`` lines of ``path`` (all with None or 0); none when it does not exist."""
    try:
        with path.open("r", errors="replace") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    return lines[-tail:] if tail else lines


def read_from(path: Path, offset: int) -> tuple[list[str], int]:
    """The lines written to ``path`` after byte ``offset``, and the offset to read on from."""
    try:
        with path.open("r", errors="replace") as f:
            f.seek(offset)
            data = f.read()
            return data.splitlines(keepends=True), f.tell()
    except FileNotFoundError:
        return [], offset
