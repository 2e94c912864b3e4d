"""A local session's CPU use: its whole process tree, in millicores, since the previous look."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.local import LocalBackend

SID = "00000000-0000-4000-8000-000000000003"
#: Announces itself (./waiting), waits for ./go, burns argv[1] s of CPU, writes ./burned, then
#: sleeps (argv[2] == "stay") or exits.
BURNER = (
    "import os, sys, time\n"
    "open('waiting', 'w').close()\n"
    "while not os.path.exists('go'): time.sleep(0.01)\n"
    "end = time.process_time() + float(sys.argv[1])\n"
    "while time.process_time() < end: pass\n"
    "open('burned', 'w').close()\n"
    "if sys.argv[2] == 'stay': time.sleep(600)\n"
)
PY = sys.executable
#: A parent that never reaps its children (a child that exits stays a zombie).
NEGLECTFUL_PARENT = (
    "import subprocess, sys, time\nsubprocess.Popen(sys.argv[1:])\ntime.sleep(600)\n"
)


@dataclass
class Window:
    """The wall-clock bounds of one window between two usage calls, seen from outside."""

    shortest: float
    longest: float


class Looks:
    """Usage calls for session SID, with the bounds of each window between them."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self._before: float | None = None
        self._after: float | None = None

    async def look(self) -> tuple[float | None, Window | None]:
        before = time.monotonic()
        found = await self.backend.usage([SID])
        after = time.monotonic()
        window = None
        if self._before is not None and self._after is not None:
            window = Window(shortest=before - self._after, longest=after - self._before)
        self._before, self._after = before, after
        return found.get(SID), window


def cpu_bounds(millicores: float, window: Window) -> tuple[float, float]:
    """The CPU seconds a reading stands for, given how long its window may have been."""
    return millicores * window.shortest / 1000, millicores * window.longest / 1000


async def until_exists(path: Path, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not path.exists():
            await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def backend(local_backend: LocalBackend) -> AsyncIterator[LocalBackend]:
    """The started local backend; session SID deleted afterwards."""
    await local_backend.start(lambda event: None)
    try:
        yield local_backend
    finally:
        await local_backend.delete(SID)
        await local_backend.close()


async def start(backend: LocalBackend, *command: str) -> Path:
    """Run ``command`` as session SID until its burner waits; the workspace."""
    backend.command = list(command)
    await backend.create(SessionSpec(session_id=SID, name="usage", owner="alice"))
    await backend.wait_ready(SID, timeout=10)
    workspace = backend.workspace(SID)
    await until_exists(workspace / "waiting")
    return workspace


async def burn_and_measure(backend: LocalBackend, *command: str) -> tuple[float, float]:
    """CPU seconds (bounds) the session used while its burner ran, from two usage calls."""
    workspace = await start(backend, *command)
    looks = Looks(backend)
    first, _ = await looks.look()
    assert first is not None  # the first window starts at readiness (start-up not counted)
    (workspace / "go").touch()
    await until_exists(workspace / "burned")
    await asyncio.sleep(0.1)  # the burner exits (or not) and is reaped (or not)
    millicores, window = await looks.look()
    assert millicores is not None and window is not None
    return cpu_bounds(millicores, window)


@pytest.mark.asyncio
async def test_a_child_busy_for_0_3_s_of_cpu_counts_as_0_3_s_over_the_window(
    backend: LocalBackend,
) -> None:
    low, high = await burn_and_measure(
        backend, "sh", "-c", '"$@"; exit 1', "sh", PY, "-c", BURNER, "0.3", "stay"
    )
    assert low <= 0.3 * 1.1 and high >= 0.3 * 0.95, (low, high)


@pytest.mark.asyncio
async def test_a_child_that_exited_and_was_reaped_still_counts_through_its_parent(
    backend: LocalBackend,
) -> None:
    script = '"$@"; exec sleep 600'  # sh waits for the burner (reaps it), then sleeps
    low, high = await burn_and_measure(
        backend, "sh", "-c", script, "sh", PY, "-c", BURNER, "0.3", "exit"
    )
    assert low <= 0.3 * 1.1 and high >= 0.3 * 0.95, (low, high)


@pytest.mark.asyncio
async def test_a_child_that_exited_counts_until_it_is_reaped(backend: LocalBackend) -> None:
    command = [PY, "-c", NEGLECTFUL_PARENT, PY, "-c", BURNER, "0.3", "exit"]
    low, high = await burn_and_measure(backend, *command)
    assert low <= 0.3 * 1.1 and high >= 0.3 * 0.95, (low, high)


@pytest.mark.asyncio
async def test_cpu_of_a_child_reaped_between_two_looks_is_not_counted_twice(
    backend: LocalBackend,
) -> None:
    script = '"$@"; exec sleep 600'
    workspace = await start(backend, "sh", "-c", script, "sh", PY, "-c", BURNER, "0.6", "exit")
    looks = Looks(backend)
    assert (await looks.look())[0] is not None  # averaged over the idle start
    (workspace / "go").touch()
    await asyncio.sleep(0.3)  # about half of the burn
    assert not (workspace / "burned").exists()
    during, first_window = await looks.look()
    await until_exists(workspace / "burned")
    await asyncio.sleep(0.1)  # the burner exits and sh reaps it
    after, second_window = await looks.look()
    assert during is not None and after is not None
    assert first_window is not None and second_window is not None
    low = cpu_bounds(during, first_window)[0] + cpu_bounds(after, second_window)[0]
    high = cpu_bounds(during, first_window)[1] + cpu_bounds(after, second_window)[1]
    assert low <= 0.6 * 1.1 and high >= 0.6 * 0.95, (low, high)


@pytest.mark.asyncio
async def test_an_idle_session_uses_about_nothing(backend: LocalBackend) -> None:
    backend.command = ["sleep", "600"]
    await backend.create(SessionSpec(session_id=SID, name="idle", owner="alice"))
    await backend.wait_ready(SID, timeout=10)
    first = await backend.usage([SID])  # averaged over its life so far
    assert list(first) == [SID] and first[SID] < 500
    await asyncio.sleep(0.3)
    found = await backend.usage([SID])
    assert list(found) == [SID] and found[SID] < 20


@pytest.mark.asyncio
async def test_sessions_without_a_process_have_no_entry_and_new_starts_count_afresh(
    backend: LocalBackend,
) -> None:
    backend.command = ["sleep", "600"]
    spec = SessionSpec(session_id=SID, name="restarted", owner="alice")
    await backend.create(spec)
    await backend.wait_ready(SID, timeout=10)
    assert list(await backend.usage([SID, "no-such-session"])) == [SID]
    assert list(await backend.usage([SID])) == [SID]
    await backend.pause(SID)
    assert await backend.usage([SID]) == {}
    await backend.create(spec)
    await backend.wait_ready(SID, timeout=10)
    restarted = await backend.usage([SID])  # a new start: averaged over its own life
    assert list(restarted) == [SID] and restarted[SID] < 500
    assert list(await backend.usage([SID])) == [SID]
