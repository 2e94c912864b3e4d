"""What the kernel lets ``execve`` carry, checked before a local session is started.

Linux copies a new program's arguments and environment onto its stack, with two limits (see
``execve(2)``, "Limits on size of arguments and environment"):

- each string (one argument, or one ``NAME=value`` entry, with its terminating NUL) is at most
  ``MAX_ARG_STRLEN`` = 32 pages = 131072 bytes with 4 KiB pages;
- all strings together, plus one pointer per string, fit in a quarter of the stack size limit
  (``sysconf(_SC_ARG_MAX)``, 2 MiB with the usual 8 MiB stack).

Beyond either, ``execve`` fails with ``E2BIG`` ("Argument list too long"). Checking here lets a
request that can never start be refused when it is made, naming the value at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from raworc_spawner.errors import ValidationError

#: Request fields that reach a session as these variables: an error names the field.
FIELD_OF_VARIABLE = {"STARTING_PROMPT": "starting_prompt", "SESSION_NAME": "name"}
#: Bytes kept free of the total for what the kernel adds itself (the program's path, auxv).
TOTAL_MARGIN = 4096


@dataclass(frozen=True, slots=True)
class ExecLimits:
    """The two limits, in bytes."""

    per_string: int
    total: int

    @classmethod
    def of_this_system(cls) -> ExecLimits:
        """The limits of the running kernel and stack size limit."""
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        try:
            total = os.sysconf("SC_ARG_MAX")
        except (ValueError, OSError, AttributeError):
            total = 128 * 1024
        return cls(per_string=32 * page, total=total)


def _encoded(text: str, what: str, field: str) -> bytes:
    try:
        data = os.fsencode(text)
    except UnicodeEncodeError:
        raise ValidationError(field, f"{what} is not valid Unicode text") from None
    if b"\x00" in data:
        raise ValidationError(field, f"{what} contains a NUL character")
    return data


def check_exec_size(
    argv: Sequence[str], env: Mapping[str, str], limits: ExecLimits | None = None
) -> None:
    """Raise :class:`ValidationError` unless ``execve(argv, env)`` fits the kernel's limits.

    The error names the argument or variable, its size and the limit; variables that carry a
    request field (``STARTING_PROMPT``, ``SESSION_NAME``) are reported under that field.
    """
    limits = limits or ExecLimits.of_this_system()
    total = 0
    for i, arg in enumerate(argv):
        data = _encoded(arg, f"argument {i} of the command", "command")
        total += _fits(len(data) + 1, limits, f"argument {i} of the command", "command")
    for name, value in env.items():
        field = FIELD_OF_VARIABLE.get(name, "env")
        if not name or "=" in name:
            raise ValidationError(field, f"{name!r} is not a valid environment variable name")
        what = f"environment variable {name}"
        data = _encoded(f"{name}={value}", what, field)
        total += _fits(len(data) + 1, limits, f"{what} (as NAME=value)", field)
    total += (len(argv) + len(env) + 2) * 8  # the argv and envp pointer arrays
    if total > limits.total - TOTAL_MARGIN:
        raise ValidationError(
            "env",
            f"the command and environment take {total:,} bytes; the system allows at most "
            f"{limits.total - TOTAL_MARGIN:,} bytes in all (ARG_MAX, a quarter of the stack "
            "size limit)",
        )


def _fits(size: int, limits: ExecLimits, what: str, field: str) -> int:
    """``size`` (bytes with the NUL) if one string that long may be passed; raise otherwise."""
    if size > limits.per_string:
        raise ValidationError(
            field,
            f"{what} is {size - 1:,} bytes in UTF-8; one argument or environment entry "
            f"may be at most {limits.per_string - 1:,} bytes (Linux MAX_ARG_STRLEN)",
        )
    return size
