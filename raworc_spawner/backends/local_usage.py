"""CPU use of local sessions, in millicores, averaged between two looks at their processes.

What counts for a session is its *process tree*: every process carrying the session's marker
and every descendant of one (see :mod:`~raworc_spawner.backends.local_scan`), including zombies.
Each process contributes its user and system time plus the time of the children it has reaped
(psutil's ``children_user``/``children_system``), so that:

- a process's time counts while it runs, and after it exits until it is reaped (a zombie
  still shows its times);
- once a process of the tree reaps it, its whole time is carried by the reaper's children
  times; the part already counted in earlier windows is not counted twice;
- a process reaped outside the tree (orphaned, then reaped by init) counts up to the last look;
  what it used after that is lost, which is at most one window of one process.

A process that joined the tree after starting elsewhere (rare: only by losing its marker's
ancestor link) counts from the first window it is seen in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from raworc_spawner.backends.local_scan import SeenProcess


@dataclass(frozen=True, slots=True)
class _Look:
    """One look at one session's tree: when, which start, and each process's CPU seconds."""

    at: float  # seconds since the epoch, like SeenProcess.created
    container_id: str
    cpu: dict[tuple[int, float], float]
    parents: dict[tuple[int, float], int]


class CpuMeter:
    """Keeps the previous look per session and turns the next one into millicores."""

    def __init__(self) -> None:
        self._looks: dict[str, _Look] = {}

    def measure(
        self, session_id: str, container_id: str, tree: Sequence[SeenProcess], *, now: float
    ) -> float | None:
        """Millicores used since the previous look at this start.

        The first look at a start averages over the tree's life so far (since its oldest
        process started), so a session busy from its first second is seen as busy at once.
        None when that life is too short to tell (under 10 ms) or the tree is empty.
        """
        look = _Look(
            at=now,
            container_id=container_id,
            cpu={p.key: p.cpu for p in tree},
            parents={p.key: p.ppid for p in tree},
        )
        previous = self._looks.get(session_id)
        self._looks[session_id] = look
        if previous is None or previous.container_id != container_id:
            return _since_start(tree, now=now)
        if now <= previous.at:
            return None
        used = _cpu_between(previous, look, {p.key: p.created for p in tree})
        return max(0.0, used) / (now - previous.at) * 1000.0

    def keep_only(self, session_ids: Collection[str]) -> None:
        """Forget the looks at sessions not in ``session_ids`` (stopped, or not asked about)."""
        self._looks = {sid: look for sid, look in self._looks.items() if sid in session_ids}


def _since_start(tree: Sequence[SeenProcess], *, now: float) -> float | None:
    """Millicores the tree used on average since its oldest process started."""
    if not tree:
        return None
    age = now - min(p.created for p in tree)
    if age < 0.01:
        return None
    return sum(p.cpu for p in tree) / age * 1000.0


def _cpu_between(before: _Look, after: _Look, created: dict[tuple[int, float], float]) -> float:
    """CPU seconds the tree used between two looks (see the module's rules)."""
    used = 0.0
    for key, cpu in after.cpu.items():
        if key in before.cpu:
            used += cpu - before.cpu[key]
        elif created[key] >= before.at:
            used += cpu  # born within the window
    alive = {pid for pid, _ in after.cpu}
    for key, cpu in before.cpu.items():
        if key not in after.cpu and before.parents[key] in alive:
            # Reaped by a parent in the tree: its whole time now sits in the parent's
            # children times, and this much of it was counted already.
            used -= cpu
    return used
