"""The session API as a JupyterHub service: hub tokens, hub admins, one store with the spawner.

The raworc API runs here (over the hub's store) behind the hub's proxy at /services/raworc/,
authenticating with HubTokenAuthenticator; the hub spawns servers with RaworcSpawner.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from jupyterhub.services.auth import HubAuth
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.handlers import make_web_app
from raworc_spawner.hub.service import HubTokenAuthenticator, PrefixedApplication
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal
from raworc_spawner.store import SessionStore
from tests.hub.conftest import HubFactory, HubProcess, free_port, spawn

pytestmark = [pytest.mark.hub, pytest.mark.asyncio]

SERVICE_CONFIG = """
c.JupyterHub.services.append(
    {{"name": "raworc", "url": "http://127.0.0.1:{port}", "api_token": {token!r}}}
)
c.JupyterHub.load_roles.append(
    {{"name": "raworc-service", "scopes": ["read:users"], "services": ["raworc"]}}
)
"""


class ServiceUnderHub:
    """The raworc API served the way the hub's proxy reaches a service."""

    def __init__(self, hub: HubProcess, port: int, token: str) -> None:
        self.hub = hub
        self.port = port
        self.token = token
        self.admin_token = secrets.token_hex(16)
        self.store = SessionStore.sqlite_in(hub.data_dir)
        self.http: HTTPServer | None = None

    async def start(self) -> None:
        await self.store.open()
        backend = LocalBackend(data_dir=str(self.hub.data_dir))
        manager = SessionManager(store=self.store, backend=backend)
        hub_auth = HubAuth(
            api_url=f"http://127.0.0.1:{self.hub.hub_port}/hub/api", api_token=self.token
        )
        auth = HubTokenAuthenticator(
            {self.admin_token: Principal("raworc-admin", admin=True)}, hub_auth=hub_auth
        )
        app = make_web_app(
            manager=manager, auth=auth, max_body_bytes=1 << 20, cookie_secret=b"x" * 32
        )
        self.http = HTTPServer(PrefixedApplication(app, "/services/raworc/"))
        self.http.add_sockets(bind_sockets(self.port, "127.0.0.1"))

    async def close(self) -> None:
        if self.http is not None:
            self.http.stop()
            await self.http.close_all_connections()
        await self.store.close()


@pytest_asyncio.fixture
async def hub_with_service(hub_factory: HubFactory) -> AsyncIterator[tuple[HubProcess, Any]]:
    port, token = free_port(), secrets.token_hex(16)
    hub = hub_factory(extra_config=SERVICE_CONFIG.format(port=port, token=token))
    service = ServiceUnderHub(hub, port, token)
    await service.start()  # first: the hub checks its services' health as it starts
    try:
        await hub.start()
        yield hub, service
    finally:
        await service.close()


async def user_token(api: httpx.AsyncClient, user: str) -> str:
    response = await api.post(f"/hub/api/users/{user}/tokens", json={"note": "test"})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def sessions_as(hub: HubProcess, token: str, *, scheme: str = "token") -> httpx.Response:
    async with httpx.AsyncClient(base_url=hub.url) as client:
        return await client.get(
            "/services/raworc/api/v0/sessions", headers={"Authorization": f"{scheme} {token}"}
        )


async def test_hub_users_see_their_own_hub_sessions_and_hub_admins_see_all(
    hub_with_service: tuple[HubProcess, Any],
) -> None:
    hub, service = hub_with_service
    async with hub.client() as api:
        for user, admin in (("uma", False), ("vic", False), ("ada", True)):
            response = await api.post(f"/hub/api/users/{user}", json={"admin": admin})
            assert response.status_code == 201, response.text
        uma = await spawn(api, "uma")
        await spawn(api, "vic")
        uma_token, ada_token = await user_token(api, "uma"), await user_token(api, "ada")

    mine = await sessions_as(hub, uma_token)
    assert mine.status_code == 200, mine.text
    [only] = mine.json()["items"]
    assert only["id"] == uma["state"]["session_id"]
    assert (only["owner"], only["state"]) == ("uma", "ready")

    everyone = await sessions_as(hub, ada_token, scheme="Bearer")
    assert sorted(s["owner"] for s in everyone.json()["items"]) == ["uma", "vic"]

    assert (await sessions_as(hub, "not-a-token")).status_code == 401
    own = await sessions_as(hub, service.admin_token, scheme="Bearer")
    assert len(own.json()["items"]) == 2  # the server's own tokens keep working
