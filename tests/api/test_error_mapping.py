"""Each error class maps to its documented HTTP status, and unexpected errors stay server-side."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from raworc_spawner import errors
from raworc_spawner.handlers import make_web_app
from raworc_spawner.handlers.api_base import ApiHandler
from raworc_spawner.handlers.auth import TokenAuthenticator
from raworc_spawner.handlers.base import route
from tests.api.conftest import Server

RAISED: dict[str, Exception] = {
    "validation": errors.ValidationError("name", "is bad"),
    "not_found": errors.SessionNotFound("abc"),
    "updated": errors.InvalidTransition("cannot"),
    "conflict": errors.Conflict("changed meanwhile"),
    "forbidden": errors.Forbidden("no"),
    "quota": errors.QuotaExceeded("too many"),
    "unavailable": errors.BackendUnavailable("API server down"),
    "failed": errors.SessionFailed("ErrImagePull", "no such image"),
    "backend": errors.BackendError("delete failed"),
    "config": errors.InvalidConfig("X.y", "z", "never at request time"),
    "bug": RuntimeError("secret internal detail"),
}
EXPECTED = {
    "validation": (422, "invalid_field", None),
    "not_found": (404, "not_found", None),
    "updated": (409, "invalid_transition", None),
    "conflict": (409, "conflict", None),
    "forbidden": (403, "forbidden", None),
    "quota": (429, "quota_exceeded", "30"),
    "unavailable": (503, "backend_unavailable", "5"),
    "failed": (502, "session_failed", None),
    "backend": (502, "backend_error", None),
    "config": (500, "internal_error", None),
    "bug": (500, "internal_error", None),
}


class RaisingHandler(ApiHandler):
    auth_required = False

    async def get(self, name: str) -> None:
        raise RAISED[name]


@pytest_asyncio.fixture
async def raising_client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    app = make_web_app(
        manager=server.app.manager,
        auth=TokenAuthenticator({}),
        max_body_bytes=1024,
        cookie_secret=b"x" * 32,
        extra_routes=[route(r"/raise/(\w+)", RaisingHandler, "raise")],
    )
    http = HTTPServer(app)
    sockets = bind_sockets(0, "127.0.0.1")
    http.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        yield client
    http.stop()
    await http.close_all_connections()


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(RAISED))
async def test_each_error_class_answers_its_status_code_and_retry_after(
    raising_client: httpx.AsyncClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, code, retry_after = EXPECTED[name]
    with caplog.at_level(logging.WARNING, logger="raworc_spawner.handlers"):
        response = await raising_client.get(f"/raise/{name}")
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert response.headers.get("Retry-After") == retry_after
    if status == 500:
        assert "secret" not in response.text and "never at request time" not in response.text
        assert response.headers["X-Request-Id"] in error["message"]
        logged = [r for r in caplog.records if r.exc_info]
        assert logged and logged[0].exc_info[1] is RAISED[name]  # the traceback is in the log
    else:
        assert error["message"] == str(RAISED[name])
        assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.asyncio
async def test_a_user_over_the_session_quota_gets_429_with_retry_after(server: Server) -> None:
    server.app.manager.max_sessions_per_user = 2
    bob = server.client("bobtok")
    for i in range(2):
        assert (await bob.post("/api/v0/sessions", json={"name": f"q{i}"})).status_code == 201
    refused = await bob.post("/api/v0/sessions", json={"name": "one too many"})
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert refused.json()["error"]["code"] == "quota_exceeded"


@pytest.mark.asyncio
async def test_an_application_built_without_proxy_limits_serves_no_session_proxy(
    raising_client: httpx.AsyncClient, server: Server
) -> None:
    path = "/sessions/6f1c2a4e-8b9d-4e3f-a1b2-c3d4e5f60718/proxy/8080/index.html"
    without = await raising_client.get(path)
    assert without.status_code == 404 and without.json()["error"]["code"] == "not_found"
    with_limits = await server.client(None).get(path)  # the server passes its proxy_* traits
    assert with_limits.status_code == 401
    assert with_limits.json()["error"]["code"] == "unauthorized"
