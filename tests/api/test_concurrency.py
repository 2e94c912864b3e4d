"""Concurrent requests leave no lost, duplicated or half-created sessions and no processes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, pid_alive, wait_for_state

API = "/api/v0"


async def all_sessions(client: httpx.AsyncClient, **params: Any) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = {"limit": 500, **params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/sessions", params=query)).json()
        items += page["items"]
        if (cursor := page["next_cursor"]) is None:
            return items


async def wait_until_listed(client: httpx.AsyncClient, name: str) -> str:
    async with asyncio.timeout(5):
        while True:
            found = await all_sessions(client, q=name)
            if found:
                return found[0]["id"]
            await asyncio.sleep(0)


def assert_nothing_left(server: Server, session_id: str) -> None:
    assert server.backend.process_id(session_id) is None
    assert not server.workspace(session_id).exists()


@pytest.mark.asyncio
async def test_200_concurrent_creates_make_200_ready_sessions_with_distinct_processes(
    server: Server,
) -> None:
    client = server.client()
    responses = await asyncio.gather(
        *(client.post(f"{API}/sessions", json={"name": f"c{i}"}) for i in range(200))
    )
    assert [r.status_code for r in responses] == [201] * 200
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 200
    async with asyncio.timeout(30):
        ready = await all_sessions(client, state="ready")
        while len(ready) < 200:
            await asyncio.sleep(0.1)
            ready = await all_sessions(client, state="ready")
    assert {s["id"] for s in ready} == ids
    assert len(await all_sessions(client)) == 200
    statuses = await asyncio.gather(*(client.get(f"{API}/sessions/{i}/status") for i in ids))
    pids = {s.json()["backend"]["compute"]["pid"] for s in statuses}
    assert len(pids) == 200 and all(pid_alive(pid) for pid in pids)
    containers = {s.json()["session"]["container_id"] for s in statuses}
    assert len(containers) == 200


@pytest.mark.asyncio
async def test_a_concurrent_double_delete_answers_204_once_and_leaves_nothing(
    server: Server,
) -> None:
    client = server.client()
    created = (await client.post(f"{API}/sessions", json={"name": "twice"})).json()
    await wait_for_state(client, created["id"], "ready")
    url = f"{API}/sessions/{created['id']}"
    first, second = await asyncio.gather(client.delete(url), client.delete(url))
    assert sorted([first.status_code, second.status_code]) in ([204, 404], [204, 204])
    assert_nothing_left(server, created["id"])
    assert (await client.get(url)).status_code == 404


@pytest.mark.asyncio
async def test_a_delete_while_the_create_is_in_flight_leaves_no_process_or_record(
    server: Server,
) -> None:
    client = server.client()

    async def race(name: str) -> tuple[httpx.Response, httpx.Response, str]:
        creating = asyncio.ensure_future(client.post(f"{API}/sessions", json={"name": name}))
        session_id = await wait_until_listed(client, name)
        deleted = await client.delete(f"{API}/sessions/{session_id}")
        return await creating, deleted, session_id

    results = await asyncio.gather(*(race(f"race-delete-{i}") for i in range(8)))
    for created, deleted, session_id in results:
        assert created.status_code in (201, 404), created.text
        assert deleted.status_code == 204, deleted.text
        assert (await client.get(f"{API}/sessions/{session_id}")).status_code == 404
        assert_nothing_left(server, session_id)
    await asyncio.sleep(0.2)  # a late readiness check must not bring anything back
    assert server.session_pids() == [] and await all_sessions(client) == []


@pytest.mark.asyncio
async def test_a_delete_right_after_create_stops_the_starting_process(server: Server) -> None:
    client = server.client()
    created = (await client.post(f"{API}/sessions", json={"name": "quick"})).json()
    assert created["state"] == "init"
    assert (await client.delete(f"{API}/sessions/{created['id']}")).status_code == 204
    await asyncio.sleep(0.2)
    assert_nothing_left(server, created["id"])
    assert server.session_pids() == []


@pytest.mark.asyncio
async def test_a_pause_while_the_create_is_in_flight_leaves_an_idle_session_without_a_process(
    server: Server,
) -> None:
    client = server.client()

    async def race(name: str) -> tuple[httpx.Response, httpx.Response, str]:
        creating = asyncio.ensure_future(client.post(f"{API}/sessions", json={"name": name}))
        session_id = await wait_until_listed(client, name)
        paused = await client.put(f"{API}/sessions/{session_id}/state", json={"state": "idle"})
        return await creating, paused, session_id

    results = await asyncio.gather(*(race(f"race-pause-{i}") for i in range(8)))
    await asyncio.sleep(0.3)  # readiness checks in flight must not revive a paused session
    for created, paused, session_id in results:
        assert created.status_code == 201, created.text
        assert paused.status_code == 200 and paused.json()["state"] == "idle", paused.text
        session = (await client.get(f"{API}/sessions/{session_id}")).json()
        assert session["state"] == "idle", session
        status = (await client.get(f"{API}/sessions/{session_id}/status")).json()
        assert status["backend"]["compute"]["pid"] is None, status
    assert server.session_pids() == []
