"""A server killed with SIGKILL in the middle of creates on the local backend leaves nothing
behind: after a restart every session process is adopted or stopped, no session is idle with
a live process, and deleting every session stops every process.

Session processes are found from outside by their working directory (the session's
workspace), not by anything the backend records, so the test sees what a user would.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

from tests.waiting import wait_for

pytestmark = pytest.mark.slow

T = TypeVar("T")
TOKEN = "crash-test-admin"
CREATES = 12
LISTENING = re.compile(r"listening on (http://\S+)")
CONFIG = """
c.LocalBackend.command = ["sleep", "600"]
c.LocalBackend.ready_after_seconds = 0.05
c.LocalBackend.stop_grace_seconds = 1.0
"""


@dataclass
class Server:
    """A ``raworc-spawner serve`` process on the local backend."""

    proc: subprocess.Popen[str]
    url: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def sessions(self) -> list[dict[str, Any]]:
        with self.client() as api:
            return list(api.get("/api/v0/sessions", params={"limit": 100}).json()["items"])


def serve(home: Path) -> Server:
    """Start the server in ``home`` (its data in ``home/data``) and wait until it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAWORC_", "KUBERNETES_"))}
    env |= {"RAWORC_ADMIN_TOKEN": TOKEN, "KUBERNETES_ENABLED": "false"}
    cmd = [sys.executable, "-m", "raworc_spawner.cli", "serve", "--port=0", "--data-dir=data"]
    with (home / "server.log").open("a") as log:
        proc = subprocess.Popen(
            cmd, cwd=home, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if match := LISTENING.search(line):
            return Server(proc, match.group(1))
        if not line:
            break
    kill(proc)
    pytest.fail(f"the server did not start:\n{(home / 'server.log').read_text()[-3000:]}")


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a server and reap it."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def session_processes(workspaces: Path) -> dict[str, list[int]]:
    """Live processes running in a workspace under ``workspaces``, by session id."""
    found: dict[str, list[int]] = {}
    prefix = f"{workspaces}{os.sep}"
    for proc in psutil.process_iter(["pid", "cwd", "status"]):
        cwd = proc.info["cwd"] or ""
        if cwd.startswith(prefix) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            session_id = cwd[len(prefix) :].split(os.sep)[0].split(" ")[0]
            found.setdefault(session_id, []).append(proc.info["pid"])
    return found


class NewProcesses:
    """Counts processes that have entered a workspace, looking at each other pid only once.

    Fast enough to catch a spawn as it happens: a fork shares the server's working directory
    (``home``) until it changes into the workspace, so those are looked at again.
    """

    def __init__(self, home: Path) -> None:
        self._home = str(home)
        self._prefix = f"{home / 'data' / 'workspaces'}{os.sep}"
        self._elsewhere: set[int] = set()
        self._inside: set[int] = set()

    def count(self) -> int:
        for pid in psutil.pids():
            if pid in self._elsewhere or pid in self._inside:
                continue
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd.startswith(self._prefix):
                self._inside.add(pid)
            elif cwd != self._home:
                self._elsewhere.add(pid)
        return len(self._inside)


def fire_creates(server: Server, pool: concurrent.futures.Executor) -> list[Any]:
    def create(i: int) -> int:
        try:
            with server.client() as api:
                return api.post("/api/v0/sessions", json={"name": f"crash {i}"}).status_code
        except httpx.HTTPError:
            return 0  # the server died under the request, as intended

    return [pool.submit(create, i) for i in range(CREATES)]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """The servers' working directory; every session process left there is killed after."""
    (tmp_path / "raworc_config.py").write_text(CONFIG)
    yield tmp_path
    for pids in session_processes(tmp_path / "data" / "workspaces").values():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def settled(server: Server) -> list[dict[str, Any]] | None:
    sessions = server.sessions()
    return sessions if all(s["state"] in ("ready", "idle", "error") for s in sessions) else None


def check_after_restart(server: Server, workspaces: Path, running_at_kill: set[str]) -> set[str]:
    """Every session settles; a process runs exactly for each ready one. The sessions' ids."""
    sessions = wait_for(lambda: settled(server), timeout=20, what="every session to settle")
    ids = {s["id"] for s in sessions}
    assert running_at_kill <= ids  # every process belongs to a recorded session
    live = session_processes(workspaces)
    not_ready = {s["id"]: s["state"] for s in sessions if s["state"] != "ready"}
    assert {sid: state for sid, state in not_ready.items() if sid in live} == {}
    assert set(live) == {s["id"] for s in sessions if s["state"] == "ready"}
    assert all(len(pids) == 1 for pids in live.values()), live
    return ids


#: How many new session processes exist when each kill lands (one restart per kill).
KILL_POINTS = (1, 2, 4, 6, 8, 11)


def test_a_server_killed_while_spawning_leaves_no_process_it_cannot_stop(home: Path) -> None:
    workspaces = home / "data" / "workspaces"
    server = serve(home)
    try:
        for processes_seen in KILL_POINTS:
            spawned = NewProcesses(home)
            spawned.count()  # those of earlier rounds
            target = spawned.count() + processes_seen
            with concurrent.futures.ThreadPoolExecutor(CREATES) as pool:
                futures = fire_creates(server, pool)
                # The kill lands as the n-th new process appears: its create is between
                # spawning the process and whatever the server does next.
                wait_for(
                    lambda: spawned.count() >= target,  # noqa: B023 - called in this round only
                    timeout=20,
                    what=f"{processes_seen} new session processes",
                    interval=0.0,
                )
                kill(server.proc)
                concurrent.futures.wait(futures)
            running_at_kill = set(session_processes(workspaces))
            server = serve(home)
            ids = check_after_restart(server, workspaces, running_at_kill)
        with server.client() as api:
            for session_id in ids:
                assert api.delete(f"/api/v0/sessions/{session_id}").status_code == 204
        assert session_processes(workspaces) == {}
    finally:
        kill(server.proc)
