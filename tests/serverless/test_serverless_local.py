"""Serverless lifecycle on the local backend: cull when idle, wake on request, retire, remix."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import tornado.websocket
from prometheus_client import REGISTRY

from raworc_spawner.sessions.manager import SYSTEM
from tests.api.conftest import Server
from tests.waiting import until_state_http


async def create(client: httpx.AsyncClient, **fields: object) -> dict:
    response = await client.post("/api/v0/sessions", json={"name": "web", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def wait_state(client: httpx.AsyncClient, sid: str, state: str, timeout: float = 10) -> dict:
    """The session once in ``state`` (the shared helper, under this module's old name)."""
    return await until_state_http(client, sid, state, timeout=timeout)


async def ready(client: httpx.AsyncClient, **fields: object) -> dict:
    """A new session, once it is ready."""
    session = await create(client, **fields)
    return await wait_state(client, session["id"], "ready")


async def sleeping(client: httpx.AsyncClient, **fields: object) -> dict:
    """A new session, paused after it became ready (compute gone, workspace kept)."""
    session = await ready(client, **fields)
    paused = await client.put(f"/api/v0/sessions/{session['id']}/state", json={"state": "idle"})
    assert paused.status_code == 200
    return dict(paused.json())


async def events(client: httpx.AsyncClient, sid: str) -> list[dict]:
    return (await client.get(f"/api/v0/sessions/{sid}/events")).json()


def proxy(sid: str, port: int, path: str) -> str:
    return f"/sessions/{sid}/proxy/{port}/{path}"


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.mark.asyncio
async def test_an_idle_session_is_culled_after_its_timeout_and_keeps_its_files(
    server: Server,
) -> None:
    client = server.client()
    session = await create(client, waiting_timeout_seconds=1)
    await wait_state(client, session["id"], "ready")
    (server.workspace(session["id"]) / "notes.txt").write_text("kept")
    assert (await server.app.core.culler.run_once())["culled"] == []  # not idle long enough yet
    await asyncio.sleep(1.2)
    done = await server.app.core.culler.run_once()
    assert done["culled"] == [session["id"]]
    culled = await wait_state(client, session["id"], "idle")
    assert culled["termination_reason"] == "Culled"
    assert (server.workspace(session["id"]) / "notes.txt").read_text() == "kept"
    assert "culled" in [e["kind"] for e in await events(client, session["id"])]
    assert not server.session_pids()


@pytest.mark.asyncio
async def test_activity_and_busy_keep_a_session_from_being_culled(server: Server) -> None:
    client = server.client()
    talking = await create(client, waiting_timeout_seconds=1)
    working = await create(client, waiting_timeout_seconds=1)
    never = await create(client, waiting_timeout_seconds=0)
    for s in (talking, working, never):
        await wait_state(client, s["id"], "ready")
    await client.put(f"/api/v0/sessions/{working['id']}/state", json={"state": "busy"})
    for _ in range(3):
        await asyncio.sleep(0.5)
        heartbeat = await client.post(f"/api/v0/sessions/{talking['id']}/activity")
        assert heartbeat.status_code == 204
    done = await server.app.core.culler.run_once()
    assert done["culled"] == []
    server.app.core.culler.busy_timeout_seconds = 1
    assert (await server.app.core.culler.run_once())["busy-culled"] == [working["id"]]


@pytest.mark.asyncio
async def test_a_request_to_a_sleeping_session_wakes_it_and_gets_its_own_answer(
    server: Server, upstream_port: int
) -> None:
    client = server.client()
    session = await sleeping(client)
    wakes = metric("raworc_session_wakes_total")
    response = await client.get(proxy(session["id"], upstream_port, "hello"))
    assert response.status_code == 200
    assert response.text.startswith(f"hello from {session['id']} in ")
    assert response.text.endswith(str(server.workspace(session["id"])))
    assert metric("raworc_session_wakes_total") == wakes + 1
    assert (await client.get(f"/api/v0/sessions/{session['id']}")).json()["state"] == "ready"


@pytest.mark.asyncio
async def test_fifty_concurrent_requests_to_a_sleeping_session_cause_one_resume(
    server: Server, upstream_port: int
) -> None:
    client = server.client()
    session = await sleeping(client)
    responses = await asyncio.gather(
        *(client.get(proxy(session["id"], upstream_port, "hello")) for _ in range(50))
    )
    assert [r.status_code for r in responses] == [200] * 50
    kinds = [e["kind"] for e in await events(client, session["id"])]
    assert kinds.count("resuming") == 1


@pytest.mark.asyncio
async def test_bodies_and_streams_pass_through_the_proxy_without_our_credentials(
    server: Server, upstream_port: int
) -> None:
    client = server.client()
    session = await ready(client)
    big = b"x" * (5 * 1024 * 1024)  # far above the API's body limit: streamed, not buffered
    echoed = await client.post(
        proxy(session["id"], upstream_port, "echo"),
        content=big,
        headers={"Cookie": "theirs=1; raworc-login=secret"},
    )
    assert echoed.status_code == 200
    assert echoed.json() == {"received": len(big), "cookie": "theirs=1"}
    lines = []
    async with client.stream("GET", proxy(session["id"], upstream_port, "stream")) as stream:
        async for line in stream.aiter_lines():
            lines.append(line)
    assert lines == [f"line {i}" for i in range(5)]
    headers = (await client.get(proxy(session["id"], upstream_port, "headers"))).json()
    assert "Authorization" not in headers and headers["X-Forwarded-Proto"] == "http"


@pytest.mark.asyncio
async def test_a_websocket_works_through_the_proxy(server: Server, upstream_port: int) -> None:
    client = server.client()
    session = await ready(client)
    url = server.url.replace("http://", "ws://") + proxy(session["id"], upstream_port, "ws")
    request = tornado.httpclient.HTTPRequest(
        url, headers={"Authorization": f"Bearer {server.admin_token}"}
    )
    connection = await tornado.websocket.websocket_connect(request)
    try:
        await connection.write_message("ping")
        assert await asyncio.wait_for(connection.read_message(), 5) == "echo: ping"
    finally:
        connection.close()
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_the_proxy_admits_only_the_owner_or_an_admin(
    server: Server, upstream_port: int
) -> None:
    alice = server.client("alicetok")
    session = await create(alice)
    await wait_state(alice, session["id"], "ready")
    path = proxy(session["id"], upstream_port, "hello")
    assert (await server.client(None).get(path)).status_code == 401
    assert (await server.client("bobtok").get(path)).status_code == 404
    assert (await alice.get(path)).status_code == 200
    assert (await server.client().get(path)).status_code == 200


@pytest.mark.asyncio
async def test_too_many_waiting_requests_get_503_with_retry_after(
    server: Server, upstream_port: int
) -> None:
    client = server.client()
    session = await sleeping(client)
    server.app.web_app.settings["proxy_max_waiting"] = 3
    responses = await asyncio.gather(
        *(client.get(proxy(session["id"], upstream_port, "hello")) for _ in range(8))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 3 and 503 in codes
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["Retry-After"] and refused.json()["error"]["code"] == "wake_queue_full"


@pytest.mark.asyncio
async def test_retention_warns_then_deletes_unused_idle_workspaces(server: Server) -> None:
    client = server.client()
    session = await sleeping(client)
    culler = server.app.core.culler
    culler.retention_days = 2.0 / 86400  # two seconds
    culler.retention_warning_days = 1.5 / 86400
    await asyncio.sleep(0.7)
    done = await culler.run_once()
    assert done["warned"] == [session["id"]] and done["retired"] == []
    assert (await culler.run_once())["warned"] == []  # warned once
    await asyncio.sleep(1.5)
    assert (await culler.run_once())["retired"] == [session["id"]]
    assert (await client.get(f"/api/v0/sessions/{session['id']}")).status_code == 404
    assert not server.workspace(session["id"]).exists()


@pytest.mark.asyncio
async def test_remix_starts_from_a_copy_of_the_parents_workspace(server: Server) -> None:
    client = server.client()
    parent = await create(client, starting_prompt="analyse", metadata={"team": "ml"})
    await wait_state(client, parent["id"], "ready")
    (server.workspace(parent["id"]) / "model.txt").write_text("weights")
    response = await client.post(f"/api/v0/sessions/{parent['id']}/remix", json={"name": "fork"})
    assert response.status_code == 201, response.text
    child = response.json()
    assert child["parent_session_id"] == parent["id"] and child["name"] == "fork"
    assert child["starting_prompt"] == "analyse" and child["metadata"] == {"team": "ml"}
    assert child["persistent_volume_id"] != parent["persistent_volume_id"]
    await wait_state(client, child["id"], "ready")
    assert (server.workspace(child["id"]) / "model.txt").read_text() == "weights"
    (server.workspace(child["id"]) / "model.txt").write_text("changed")
    assert (server.workspace(parent["id"]) / "model.txt").read_text() == "weights"
    empty = await client.post(f"/api/v0/sessions/{parent['id']}/remix")
    assert empty.status_code == 201 and empty.json()["name"] == "web (remix)"


@pytest.mark.asyncio
async def test_proxied_traffic_moves_last_activity(server: Server, upstream_port: int) -> None:
    client = server.client()
    session = await create(client)
    ready = await wait_state(client, session["id"], "ready")
    await asyncio.sleep(0.05)
    for _ in range(5):
        assert (await client.get(proxy(session["id"], upstream_port, "hello"))).status_code == 200
    await server.app.manager.flush_activity()
    stored = await server.app.manager.get(SYSTEM, session["id"])
    assert stored.last_activity_at is not None
    assert stored.last_activity_at.isoformat() > ready["last_activity_at"].rstrip("Z")


@pytest.mark.asyncio
async def test_a_logged_in_browser_can_post_through_the_proxy_but_not_cross_site(
    server: Server, upstream_port: int
) -> None:
    client = server.client()
    session = await ready(client)
    browser = server.client(None, follow_redirects=False)
    await browser.get("/login")
    xsrf = browser.cookies["_xsrf"]
    login = await browser.post("/login", data={"token": server.admin_token, "_xsrf": xsrf})
    assert login.status_code == 303
    assert server.admin_token not in login.headers["set-cookie"]  # the cookie holds a digest
    path = proxy(session["id"], upstream_port, "echo")
    posted = await browser.post(path, content=b"abc", headers={"Origin": server.url})
    assert posted.status_code == 200 and posted.json()["received"] == 3
    assert "raworc-login" not in posted.json()["cookie"]
    evil = await browser.post(path, content=b"abc", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
