"""A local session is ready when it serves: listening on its port, else alive for a while."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from raworc_spawner.backends.base import ComputeState, SessionSpec
from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.errors import SessionFailed
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.requests import parse_create
from tests.waiting import until_state

SID = "00000000-0000-4000-8000-000000000002"
ALICE = Principal("alice")
#: Sleeps argv[1] seconds, then accepts connections on argv[2] (empty: SESSION_HOST):argv[3].
LISTEN_LATE = [
    sys.executable,
    "-c",
    "import os, socket, sys, time\n"
    "time.sleep(float(sys.argv[1]))\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[2] or os.environ['SESSION_HOST'], int(sys.argv[3])))\n"
    "s.listen()\n"
    "while True: s.accept()[0].close()\n",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest_asyncio.fixture
async def backend(local_backend: LocalBackend) -> AsyncIterator[LocalBackend]:
    """The started local backend; session SID deleted afterwards."""
    await local_backend.start(lambda event: None)
    try:
        yield local_backend
    finally:
        await local_backend.delete(SID)
        await local_backend.close()


@pytest.mark.asyncio
async def test_a_session_with_a_port_is_ready_only_once_it_accepts_connections(
    backend: LocalBackend,
) -> None:
    port = free_port()
    backend.port = port
    backend.command = [*LISTEN_LATE, "0.5", "", str(port)]
    began = time.monotonic()
    placement = await backend.create(SessionSpec(session_id=SID, name="web", owner="alice"))
    assert placement.host is not None and placement.host.startswith("127.")
    assert backend.waiting_on(SID) == f"the process to listen on {placement.host}:{port}"
    assert backend.compute_state(SID) == ComputeState.STARTING
    await backend.wait_ready(SID, timeout=10)
    assert time.monotonic() - began >= 0.5
    assert connects(placement.host, port)
    assert backend.waiting_on(SID) is None
    assert backend.compute_state(SID) == ComputeState.RUNNING


@pytest.mark.asyncio
async def test_a_listener_of_the_tree_on_another_address_counts_as_the_hubs_server_binds(
    backend: LocalBackend,
) -> None:
    port = free_port()
    backend.command = ["sh", "-c", '"$0" "$@"; exit 1', *LISTEN_LATE, "0.2", "127.0.0.1", str(port)]
    spec = SessionSpec(session_id=SID, name="hub server", owner="alice", port=port)
    placement = await backend.create(spec)
    assert placement.host != "127.0.0.1"  # the session's own address is another
    await backend.wait_ready(SID, timeout=10)
    assert connects("127.0.0.1", port)


@pytest.mark.asyncio
async def test_someone_elses_listener_on_the_port_does_not_make_a_session_ready(
    backend: LocalBackend,
) -> None:
    backend.loopback_per_session = False
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        backend.command = ["sleep", "600"]
        await backend.create(SessionSpec(session_id=SID, name="quiet", owner="alice", port=port))
        with pytest.raises(TimeoutError):
            await backend.wait_ready(SID, timeout=1)
        assert backend.waiting_on(SID) == f"the process to listen on 127.0.0.1:{port}"


@pytest.mark.asyncio
async def test_a_process_that_exits_before_listening_fails_at_once_with_its_status(
    backend: LocalBackend,
) -> None:
    backend.port = free_port()
    backend.ready_after_seconds = 0.05  # alive that long is not ready when there is a port
    backend.command = ["sh", "-c", "sleep 0.3; echo no config found >&2; exit 2"]
    await backend.create(SessionSpec(session_id=SID, name="broken", owner="alice"))
    began = time.monotonic()
    with pytest.raises(SessionFailed) as failed:
        await backend.wait_ready(SID, timeout=10)
    assert time.monotonic() - began < 2
    assert (failed.value.reason, failed.value.detail) == (
        "ProcessExited",
        "the session process exited with exit status 2; last output:\nno config found",
    )


@pytest.mark.asyncio
async def test_without_a_port_a_start_waits_for_the_process_to_stay_up(
    backend: LocalBackend,
) -> None:
    backend.ready_after_seconds = 0.6
    backend.command = ["sleep", "600"]
    began = time.monotonic()
    await backend.create(SessionSpec(session_id=SID, name="plain", owner="alice"))
    assert backend.waiting_on(SID) == "the process to stay up for 0.6 s"
    await backend.wait_ready(SID, timeout=10)
    assert time.monotonic() - began >= 0.6
    assert backend.waiting_on(SID) is None


@pytest.mark.asyncio
async def test_a_session_the_manager_calls_ready_already_accepts_connections(
    local_manager: SessionManager, local_backend: LocalBackend
) -> None:
    port = free_port()
    local_backend.port = port
    local_backend.command = [*LISTEN_LATE, "0.5", "", str(port)]
    session = await local_manager.create(ALICE, parse_create({"name": "served"}))
    await until_state(local_manager, session.id, "ready", timeout=10)
    host = local_manager.address(session.id)
    assert host is not None and connects(host, port)
    await local_manager.delete(ALICE, session.id)


@pytest.mark.asyncio
async def test_a_command_that_cannot_run_fails_the_session_with_one_start_error_prefix(
    local_manager: SessionManager, local_backend: LocalBackend
) -> None:
    local_backend.command = ["/nonexistent/program"]
    session = await local_manager.create(ALICE, parse_create({"name": "typo"}))
    failed = await until_state(local_manager, session.id, "error")
    assert (
        failed.error == "StartError: cannot run '/nonexistent/program': No such file or directory"
    )
    assert failed.termination_reason == "StartError"
    assert local_manager.compute_state(session.id) == ComputeState.ABSENT  # removed on failure
    await local_manager.delete(ALICE, session.id)
