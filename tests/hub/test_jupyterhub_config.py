"""The repository's jupyterhub_config.py runs as shipped: a demo hub spawns a server that
answers through the proxy, and the idle culler runs beside it."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest

from tests.hub.conftest import (
    REPO,
    VENV_BIN,
    HubFactory,
    HubProcess,
    find_proxy,
    spawn,
    stop,
)

pytestmark = [pytest.mark.hub, pytest.mark.asyncio]


async def test_the_shipped_config_runs_a_demo_hub_whose_servers_answer_through_the_proxy(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(config_file=REPO / "jupyterhub_config.py")
    proxy_dir = os.path.dirname(find_proxy() or "")
    hub.extra_env = {
        "RAWORC_HUB_DEMO": "1",
        "RAWORC_HUB_SERVICE": "1",
        "RAWORC_HUB_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
        "RAWORC_DATA_DIR": str(hub.data_dir),
        "RAWORC_HUB_BIND_URL": f"http://127.0.0.1:{hub.public_port}",
        "RAWORC_HUB_PROXY_API_URL": f"http://127.0.0.1:{hub.proxy_api_port}",
        "RAWORC_HUB_HUB_BIND_URL": f"http://127.0.0.1:{hub.hub_port}",
        "CONFIGPROXY_AUTH_TOKEN": hub.proxy_token,
        "PATH": f"{VENV_BIN}{os.pathsep}{proxy_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    hub.token = await _admin_token(hub)
    await hub.start()
    async with hub.client() as api:
        info = await spawn(api, "admin")
        assert info["state"]["session_id"]
        assert (await api.get("/user/admin/api/status")).status_code == 200
        listed = await _service_sessions(api)
        assert [s["id"] for s in listed] == [info["state"]["session_id"]]
        await stop(api, "admin")
        services = (await api.get("/hub/api/services")).json()
    assert "idle-culler" in services and "raworc" in services
    assert services["idle-culler"]["pid"] > 0  # the hub started the culler


async def _service_sessions(api: Any) -> list[dict[str, Any]]:
    """The sessions the raworc service lists for the hub admin (it starts beside the hub)."""
    async with asyncio.timeout(30):
        while (response := await api.get("/services/raworc/api/v0/sessions")).status_code != 200:
            await asyncio.sleep(0.3)
    return list(response.json()["items"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _admin_token(hub: HubProcess) -> str:
    """An API token for the demo admin, made the documented way (``jupyterhub token``)."""
    process = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "jupyterhub"),
        "token",
        "admin",
        "-f",
        str(hub.config_file),
        cwd=hub.workdir,
        env=hub.environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode().strip().splitlines()[-1]
