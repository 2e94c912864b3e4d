"""Logging set-up: per-logger levels from a spec such as ``debug,raworc::kubernetes=trace``.

The spec is a comma-separated list of ``level`` (the default for everything) and
``target=level`` entries. Targets are logger names; the Rust-style ``raworc::a::b`` form of the
original product maps onto ours (``raworc`` → ``raworc_spawner``, ``raworc::kubernetes`` →
``raworc_spawner.backends.kubernetes``, other ``raworc::x`` → ``raworc_spawner.x``).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "off": logging.CRITICAL + 10,
}
_ALIASES = {
    "raworc": "raworc_spawner",
    "raworc::kubernetes": "raworc_spawner.backends.kubernetes",
    "raworc::k8s": "raworc_spawner.backends.kubernetes",
    "raworc::local": "raworc_spawner.backends.local",
}
FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"


class LogSpecError(ValueError):
    """The log spec has an unknown level or an empty target."""


def parse_log_spec(spec: str) -> dict[str, int]:
    """Map a spec onto ``{logger name: level}``; the empty name is the root logger.

    >>> parse_log_spec("debug,raworc::kubernetes=trace")
    {'': 10, 'raworc_spawner.backends.kubernetes': 5}
    """
    levels: dict[str, int] = {}
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        target, _, level = entry.rpartition("=")
        if "=" in entry and not target.strip():
            raise LogSpecError(f"{entry!r} has an empty target before '='")
        levels[logger_name(target.strip())] = _level(level.strip())
    return levels


def logger_name(target: str) -> str:
    """Translate a spec target (``raworc::kubernetes``) into a Python logger name."""
    if not target:
        return ""
    if target in _ALIASES:
        return _ALIASES[target]
    if target.startswith("raworc::"):
        return "raworc_spawner." + target[len("raworc::") :].replace("::", ".")
    return target.replace("::", ".")


def configure_logging(spec: str, *, log_file: str = "") -> None:
    """Apply a spec to the logging tree; also log to ``log_file`` when given."""
    levels = parse_log_spec(spec or "info")
    root = logging.getLogger()
    root.setLevel(levels.pop("", logging.INFO))
    formatter = logging.Formatter(FORMAT)
    if not any(getattr(h, "_raworc", False) for h in root.handlers):
        console = logging.StreamHandler()
        console.setFormatter(formatter)
        console._raworc = True  # type: ignore[attr-defined]
        root.addHandler(console)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(log_file)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _level(text: str) -> int:
    level = LEVELS.get(text.lower())
    if level is None:
        raise LogSpecError(f"unknown level {text!r}; use one of {', '.join(LEVELS)}")
    return level
