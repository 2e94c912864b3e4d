"""The kubelet's container restart back-off (``CrashLoopBackOff``).

Modelled on the kubelet's use of ``flowcontrol.Backoff`` (``doBackOff`` in
``kuberuntime_manager.go``; 10 s initial, doubling, 5 min cap in Kubernetes 1.32): the first
restart of a container is immediate; each later one waits the current back-off, which doubles
up to the cap. An entry idle for more than twice the cap starts over, so a container that ran
for ten minutes (with the real figures) restarts at once again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Entry:
    delay: float
    last_update: float


@dataclass
class RestartBackoff:
    """Back-off state of one pod's containers, by container name."""

    base: float
    cap: float
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cap = max(self.cap, self.base)  # a cap below the base would shrink the back-off

    def delay_before_restart(self, name: str, *, now: float | None = None) -> float:
        """Seconds to wait in ``CrashLoopBackOff`` before restarting ``name``; 0: at once.

        A zero answer also counts the restart (as the kubelet's ``Next``); otherwise call
        :meth:`restarting` when the wait is over.
        """
        moment = time.monotonic() if now is None else now
        entry = self._entries.get(name)
        if entry is None or self._expired(entry, moment):
            self.restarting(name, now=moment)
            return 0.0
        return entry.delay

    def restarting(self, name: str, *, now: float | None = None) -> None:
        """The container is being restarted: double its back-off (or start at the base)."""
        moment = time.monotonic() if now is None else now
        entry = self._entries.get(name)
        if entry is None or self._expired(entry, moment):
            self._entries[name] = _Entry(self.base, moment)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last_update = moment

    def current(self, name: str) -> float:
        """The back-off the next crash of ``name`` would wait (the base when none yet)."""
        entry = self._entries.get(name)
        return entry.delay if entry is not None else self.base

    def _expired(self, entry: _Entry, moment: float) -> bool:
        return moment - entry.last_update > 2 * self.cap


def go_duration(seconds: float) -> str:
    """A duration as Go's ``time.Duration.String`` prints it: ``10s``, ``1m20s``, ``200ms``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        millis = seconds * 1000
        return f"{millis:g}ms" if millis >= 1 else f"{seconds * 1e6:g}µs"
    minutes, rest = divmod(round(seconds, 9), 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text
