"""The Spawner contract of RaworcSpawner, without a hub: a fake user and hub objects."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tornado import web
from traitlets.config import Config

from raworc_spawner.hub.options import check_user_options, render_profiles_form
from raworc_spawner.hub.runtime import close_shared_runtime
from raworc_spawner.spawner import RaworcSpawner, SpawnFailed, cpu_quantity
from tests.hub.conftest import session_pids

pytestmark = pytest.mark.asyncio

PROFILES = {
    "small": {"description": "Half a core", "default": True, "image": "python:3.11-slim"},
    "gpu": {"description": "<b>One GPU</b>", "resources": {"cpu_limit": "4"}},
}


class FakeUser:
    """What a spawner reads from the hub's user object."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.escaped_name = name
        self.url = f"/user/{name}/"
        self.admin = False

    def progress_url(self, server_name: str) -> str:
        return f"/hub/api/users/{self.name}/server/progress"


#: A stand-in single-user server: listens where JUPYTERHUB_SERVICE_URL says, then waits.
LISTENER = [
    sys.executable,
    "-c",
    "import os, socket, time, urllib.parse\n"
    "port = urllib.parse.urlsplit(os.environ['JUPYTERHUB_SERVICE_URL']).port\n"
    "server = socket.create_server(('127.0.0.1', port))\n"
    "time.sleep(600)\n",
]

FAKE_HUB = types.SimpleNamespace(
    public_host="", api_url="http://127.0.0.1:8081/hub/api/", base_url="/hub/"
)


@pytest.fixture(autouse=True)
def _fresh_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("KUBERNETES_ENABLED", raising=False)
    yield


@pytest_asyncio.fixture
async def make_spawner(tmp_path: Path, no_leaked_tasks: None) -> AsyncIterator[Any]:
    """Spawners for fake users over a local-backend runtime in a temporary directory."""
    config = Config()
    config.RaworcSpawner.data_dir = str(tmp_path / "data")
    config.LocalBackend.ready_after_seconds = 0.05
    config.LocalBackend.stop_grace_seconds = 2

    def make(user: str = "alice", server_name: str = "", **traits: Any) -> RaworcSpawner:
        orm_spawner = types.SimpleNamespace(name=server_name, server=None) if server_name else None
        return RaworcSpawner(
            user=FakeUser(user), hub=FAKE_HUB, config=config, orm_spawner=orm_spawner, **traits
        )

    try:
        yield make
    finally:
        for pid in session_pids(tmp_path / "data"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        await close_shared_runtime()


async def test_a_never_started_server_polls_as_stopped(make_spawner: Any) -> None:
    spawner = make_spawner()
    assert await spawner.poll() == 0
    assert spawner.get_state() == {}


async def test_the_state_round_trips_the_session_id_and_resource_names(make_spawner: Any) -> None:
    spawner = make_spawner(kubernetes_enabled=True)
    spawner.load_state({"session_id": "6f1c3c1e-6a55-4f31-9d2f-9b1c5f0a8d11", "profile": "gpu"})
    state = spawner.get_state()
    assert state == {
        "session_id": "6f1c3c1e-6a55-4f31-9d2f-9b1c5f0a8d11",
        "pod_name": "session-6f1c3c1e-6a55-4f31-9d2f-9b1c5f0a8d11",
        "pvc_name": "session-pvc-6f1c3c1e-6a55-4f31-9d2f-9b1c5f0a8d11",
        "profile": "gpu",
    }
    again = make_spawner(kubernetes_enabled=True)
    again.load_state(state)
    assert again.get_state() == state


async def test_clearing_the_state_keeps_the_session_so_the_workspace_comes_back(
    make_spawner: Any,
) -> None:
    spawner = make_spawner()
    spawner.load_state({"session_id": "6f1c3c1e-6a55-4f31-9d2f-9b1c5f0a8d11"})
    spawner.api_token = "secret"
    spawner.clear_state()
    assert spawner.api_token == ""
    assert spawner.get_state()["session_id"] == "6f1c3c1e-6a55-4f31-9d2f-9b1c5f0a8d11"


async def test_a_server_whose_session_vanished_polls_as_stopped(make_spawner: Any) -> None:
    spawner = make_spawner()
    spawner.load_state({"session_id": "6f1c3c1e-6a55-4f31-9d2f-9b1c5f0a8d11"})
    assert await spawner.poll() == 0
    await spawner.stop()  # nothing to stop: no error
    assert spawner.get_state() == {}


async def test_start_stop_and_delete_drive_one_session_and_its_workspace(
    make_spawner: Any, tmp_path: Path
) -> None:
    spawner = make_spawner(cmd=LISTENER)
    url = await spawner.start()
    assert url.startswith("http://127.0.0.1:")
    session_id = spawner.get_state()["session_id"]
    workspace = tmp_path / "data" / "workspaces" / session_id
    assert workspace.is_dir()
    assert await spawner.poll() is None
    steps = [step["message"] for step in spawner._progress_log.steps]
    assert steps[0].startswith("Creating session") and "Session is ready" in steps

    await spawner.stop()
    assert await spawner.poll() == 0
    assert workspace.is_dir()

    await spawner.start()
    assert spawner.get_state()["session_id"] == session_id
    await spawner.stop()
    await spawner.delete_forever()
    assert not workspace.exists()
    assert spawner.get_state() == {}


async def test_progress_replays_the_steps_of_the_current_start(make_spawner: Any) -> None:
    spawner = make_spawner(cmd=LISTENER)
    spawner._start_pending = True
    await spawner.start()
    spawner._start_pending = False
    messages = [step["message"] async for step in spawner.progress()]
    assert messages[0].startswith("Creating session")
    assert any(m.startswith("Started: process") for m in messages)
    await spawner.stop()


async def test_a_command_that_cannot_run_fails_the_start_with_the_reason(
    make_spawner: Any,
) -> None:
    spawner = make_spawner(cmd=["/nonexistent/jupyterhub-singleuser"])
    with pytest.raises(SpawnFailed) as failure:
        await spawner.start()
    assert "StartError" in failure.value.jupyterhub_message
    assert "/nonexistent/jupyterhub-singleuser" in failure.value.jupyterhub_message
    assert await spawner.poll() == 0


async def test_named_servers_of_one_user_get_their_own_sessions(make_spawner: Any) -> None:
    default = make_spawner(cmd=LISTENER)
    named = make_spawner(server_name="lab", cmd=LISTENER)
    await default.start()
    await named.start()
    assert default.get_state()["session_id"] != named.get_state()["session_id"]
    runtime = await default.runtime()
    session = await runtime.manager.get(default.principal, named.get_state()["session_id"])
    assert session.name == "alice/lab"
    for spawner in (default, named):
        await spawner.stop()


async def test_unknown_user_options_are_refused_with_what_is_allowed(make_spawner: Any) -> None:
    spawner = make_spawner()
    with pytest.raises(web.HTTPError) as refused:
        await spawner.checked_profile({"image": "evil:latest"})
    assert refused.value.status_code == 400
    assert "image" in refused.value.log_message and "profile" in refused.value.log_message
    with pytest.raises(web.HTTPError, match="none are configured"):
        await spawner.checked_profile({"profile": "gpu"})
    assert await spawner.checked_profile({}) == ""


async def test_the_form_lists_profiles_and_its_data_becomes_user_options(
    make_spawner: Any,
) -> None:
    spawner = make_spawner()
    assert await spawner.get_options_form() == ""  # the local backend has no profiles
    form = render_profiles_form(PROFILES)
    assert 'value="small" checked' in form and 'value="gpu"' in form
    assert "&lt;b&gt;One GPU&lt;/b&gt;" in form  # descriptions are escaped
    assert spawner.run_options_from_form({"profile": ["gpu"]}) == {"profile": "gpu"}
    assert spawner.run_options_from_form({}) == {}
    assert check_user_options({"profile": "gpu"}, PROFILES) == "gpu"


async def test_cpu_cores_become_millicores() -> None:
    assert cpu_quantity(0.5) == "500m"
    assert cpu_quantity(2) == "2000m"
    assert cpu_quantity(0.0001) == "1m"


async def test_kubernetes_servers_listen_on_all_addresses_of_the_pod(make_spawner: Any) -> None:
    spawner = make_spawner(kubernetes_enabled=True)
    assert (spawner.ip, spawner.port, spawner.cmd) == ("0.0.0.0", 8888, ["jupyterhub-singleuser"])
    local = make_spawner()
    assert (local.ip, local.port) == ("127.0.0.1", 0)
    assert Path(local.cmd[0]).name == "jupyterhub-singleuser"
