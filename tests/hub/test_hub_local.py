"""End to end: a real JupyterHub spawning user servers with RaworcSpawner on the local backend.

Each user server is a jupyterhub-singleuser process running in its session's workspace
directory; requests reach it through configurable-http-proxy.
"""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from tests.hub.conftest import (
    HubFactory,
    HubProcess,
    eventually,
    pid_alive,
    progress_events,
    spawn,
    stop,
)

pytestmark = [pytest.mark.hub, pytest.mark.asyncio]


BROKEN_COMMANDS = """
def _broken_commands(spawner):
    if spawner.user.name == "exits":
        message = "singleuser: cannot import notebook extension"
        spawner.cmd = ["sh", "-c", f"echo '{message}' >&2; exit 3"]
    if spawner.user.name == "missing":
        spawner.cmd = ["/nonexistent/jupyterhub-singleuser"]

c.Spawner.pre_spawn_hook = _broken_commands
"""


async def write_file(api: httpx.AsyncClient, prefix: str, name: str, text: str) -> None:
    """Save a file through the single-user server's contents API (via the proxy)."""
    body = {"type": "file", "format": "text", "content": text}
    response = await api.put(f"{prefix}api/contents/{name}", json=body)
    assert response.status_code in (200, 201), response.text


async def read_file(api: httpx.AsyncClient, prefix: str, name: str) -> str | None:
    """A file's text through the contents API, or None if it does not exist."""
    response = await api.get(f"{prefix}api/contents/{name}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return str(response.json()["content"])


async def test_a_user_server_answers_through_the_proxy_and_keeps_its_workspace_across_a_restart(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory()
    await hub.start()
    async with hub.client() as api:
        assert (await api.post("/hub/api/users/alice")).status_code == 201
        info = await spawn(api, "alice")
        session_id = info["state"]["session_id"]
        workspace = hub.data_dir / "workspaces" / session_id

        status = await api.get("/user/alice/api/status")
        assert status.status_code == 200, status.text
        await write_file(api, "/user/alice/", "notes.txt", "kept across restarts")
        assert (workspace / "notes.txt").read_text() == "kept across restarts"
        [pid] = hub.session_pids()

        await stop(api, "alice")
        assert not pid_alive(pid)
        assert (workspace / "notes.txt").exists()

        info = await spawn(api, "alice")
        assert info["state"]["session_id"] == session_id
        assert await read_file(api, "/user/alice/", "notes.txt") == "kept across restarts"

        await stop(api, "alice")
        assert (await api.delete("/hub/api/users/alice")).status_code == 204
        assert not workspace.exists()
        assert hub.session_pids() == []


async def test_named_servers_are_separate_sessions_and_removing_one_deletes_its_workspace(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory()
    await hub.start()
    async with hub.client() as api:
        await api.post("/hub/api/users/bob")
        default, named = await asyncio.gather(spawn(api, "bob"), spawn(api, "bob", "lab"))
        assert default["state"]["session_id"] != named["state"]["session_id"]
        await write_file(api, "/user/bob/lab/", "only-in-lab.txt", "lab")
        assert await read_file(api, "/user/bob/", "only-in-lab.txt") is None

        lab_workspace = hub.data_dir / "workspaces" / named["state"]["session_id"]
        assert (lab_workspace / "only-in-lab.txt").exists()
        await stop(api, "bob", "lab", remove=True)
        await eventually(lambda: not lab_workspace.exists(), "the named server's workspace is gone")
        assert (await api.get("/user/bob/api/status")).status_code == 200


async def test_the_spawn_progress_shows_the_session_events(hub_factory: HubFactory) -> None:
    hub = hub_factory()
    await hub.start()
    async with hub.client() as api:
        await api.post("/hub/api/users/carol")
        assert (await api.post("/hub/api/users/carol/server")).status_code == 202
        events = [event async for event in progress_events(api, "carol")]
    messages = [event.get("message", "") for event in events]
    assert any(m.startswith("Creating session") for m in messages), messages
    assert any("process" in m and "started" in m for m in messages), messages
    assert "Session is ready" in messages, messages
    assert events[-1].get("ready") is True, events
    progress = [event["progress"] for event in events if "progress" in event]
    assert progress == sorted(progress)


async def test_a_spawn_whose_command_fails_shows_the_reason(hub_factory: HubFactory) -> None:
    hub = hub_factory(extra_config=BROKEN_COMMANDS)
    await hub.start()
    async with hub.client() as api:
        for user in ("exits", "missing"):
            await api.post(f"/hub/api/users/{user}")
            assert (await api.post(f"/hub/api/users/{user}/server")).status_code == 202
        exits = [e async for e in progress_events(api, "exits")]
        missing = [e async for e in progress_events(api, "missing")]
        servers = (await api.get("/hub/api/users/exits")).json()["servers"]
    assert exits[-1]["failed"] is True
    assert "ProcessExited" in exits[-1]["message"], exits
    assert "cannot import notebook extension" in exits[-1]["message"], exits
    assert missing[-1]["failed"] is True
    assert "/nonexistent/jupyterhub-singleuser" in missing[-1]["message"], missing
    assert servers == {}


async def test_a_restarted_hub_reattaches_running_servers_and_stops_dead_ones_cleanly(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory()
    await hub.start()
    async with hub.client() as api:
        for user in ("dave", "erin"):
            await api.post(f"/hub/api/users/{user}")
        dave, erin = await asyncio.gather(spawn(api, "dave"), spawn(api, "erin"))
        await write_file(api, "/user/erin/", "draft.txt", "survives")
    await hub.stop()
    erin_pid = _pid_of(hub, erin["state"]["session_id"])
    os.killpg(erin_pid, signal.SIGKILL)  # erin's server dies while the hub is down

    await hub.start()
    async with hub.client() as api:
        servers = (await api.get("/hub/api/users/dave")).json()["servers"]
        assert servers[""]["ready"] is True
        assert servers[""]["state"]["session_id"] == dave["state"]["session_id"]
        assert (await api.get("/user/dave/api/status")).status_code == 200

        assert (await api.get("/hub/api/users/erin")).json()["servers"] == {}
        again = await spawn(api, "erin")
        assert again["state"]["session_id"] == erin["state"]["session_id"]
        assert await read_file(api, "/user/erin/", "draft.txt") == "survives"


def _pid_of(hub: HubProcess, session_id: str) -> int:
    import json

    state = json.loads((hub.data_dir / "run" / f"{session_id}.json").read_text())
    return int(state["pid"])
