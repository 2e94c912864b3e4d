"""A session's life through the REST API: create, ready, pause, resume, change, delete."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from raworc_spawner.handlers import end_streams
from tests.api.conftest import Server, pid_alive, wait_for_state

API = "/api/v0"


async def create(server: Server, **body: object) -> dict:
    response = await server.client().post(f"{API}/sessions", json={"name": "demo", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def compute_pid(server: Server, session_id: str) -> int | None:
    response = await server.client().get(f"{API}/sessions/{session_id}/status")
    assert response.status_code == 200, response.text
    return response.json()["backend"]["compute"]["pid"]


@pytest.mark.asyncio
async def test_a_created_session_is_ready_within_two_seconds_with_its_ids(server: Server) -> None:
    created = await create(server, starting_prompt="hello there", namespace="ml")
    assert created["state"] == "init"
    assert created["container_id"] and created["persistent_volume_id"].startswith("pvc-")
    ready = await wait_for_state(server.client(), created["id"], "ready", timeout=2.0)
    assert ready["container_id"] == created["container_id"]
    assert ready["persistent_volume_id"] == created["persistent_volume_id"]
    assert ready["started_at"] and ready["owner"] == "admin" and ready["namespace"] == "ml"


@pytest.mark.asyncio
async def test_create_answers_201_with_a_location_header(server: Server) -> None:
    response = await server.client().post(f"{API}/sessions", json={"name": "located"})
    assert response.status_code == 201
    assert response.headers["Location"] == f"{API}/sessions/{response.json()['id']}"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.asyncio
async def test_the_session_process_sees_its_environment_and_runs_in_its_workspace(
    server: Server,
) -> None:
    created = await create(server, name="env check", starting_prompt="build a thing")
    await wait_for_state(server.client(), created["id"], "ready")
    workspace = server.workspace(created["id"])
    env = dict(
        line.split("=", 1)
        for line in (workspace / "env.txt").read_text().splitlines()
        if "=" in line
    )
    assert env["SESSION_ID"] == created["id"]
    assert env["SESSION_NAME"] == "env check"
    assert env["STARTING_PROMPT"] == "build a thing"
    assert (workspace / "pwd.txt").read_text().strip() == str(workspace)


@pytest.mark.asyncio
async def test_pause_stops_the_process_and_keeps_the_workspace_then_resume_makes_it_ready(
    server: Server,
) -> None:
    client = server.client()
    created = await create(server)
    await wait_for_state(client, created["id"], "ready")
    pid = await compute_pid(server, created["id"])
    assert pid is not None and pid_alive(pid)
    (server.workspace(created["id"]) / "notes.txt").write_text("kept")

    paused = await client.put(f"{API}/sessions/{created['id']}/state", json={"state": "idle"})
    assert paused.status_code == 200 and paused.json()["state"] == "idle"
    assert not pid_alive(pid)
    assert await compute_pid(server, created["id"]) is None
    assert (server.workspace(created["id"]) / "notes.txt").read_text() == "kept"

    resumed = await client.put(f"{API}/sessions/{created['id']}/state", json={"state": "ready"})
    assert resumed.status_code == 200 and resumed.json()["state"] == "init"
    ready = await wait_for_state(client, created["id"], "ready")
    assert ready["persistent_volume_id"] == created["persistent_volume_id"]
    assert ready["container_id"] != created["container_id"]
    new_pid = await compute_pid(server, created["id"])
    assert new_pid is not None and new_pid != pid and pid_alive(new_pid)


@pytest.mark.asyncio
async def test_delete_stops_the_process_removes_the_workspace_and_the_record(
    server: Server,
) -> None:
    client = server.client()
    created = await create(server)
    await wait_for_state(client, created["id"], "ready")
    pid = await compute_pid(server, created["id"])
    assert pid is not None

    response = await client.delete(f"{API}/sessions/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert not pid_alive(pid)
    assert not server.workspace(created["id"]).exists()
    gone = await client.get(f"{API}/sessions/{created['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


@pytest.mark.asyncio
async def test_an_agent_marks_a_session_busy_and_ready_again(server: Server) -> None:
    client = server.client()
    created = await create(server)
    await wait_for_state(client, created["id"], "ready")
    state_url = f"{API}/sessions/{created['id']}/state"
    busy = await client.put(state_url, json={"state": "busy"})
    assert busy.status_code == 200 and busy.json()["state"] == "busy"
    ready = await client.put(state_url, json={"state": "ready"})
    assert ready.status_code == 200 and ready.json()["state"] == "ready"


@pytest.mark.asyncio
async def test_patch_changes_only_the_given_fields(server: Server) -> None:
    client = server.client()
    created = await create(server, metadata={"team": "a"}, agent_ids=["x"])
    response = await client.patch(
        f"{API}/sessions/{created['id']}",
        json={"name": "renamed", "metadata": {"team": "b"}, "waiting_timeout_seconds": 60},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "renamed" and body["metadata"] == {"team": "b"}
    assert body["waiting_timeout_seconds"] == 60 and body["agent_ids"] == ["x"]
    fetched = (await client.get(f"{API}/sessions/{created['id']}")).json()
    assert fetched["name"] == "renamed"


@pytest.mark.asyncio
async def test_a_session_created_without_a_namespace_gets_the_servers_default(
    server: Server,
) -> None:
    server.app.manager.default_namespace = "team-a"
    client = server.client()
    unnamed = await client.post(f"{API}/sessions", json={"name": "no namespace"})
    chosen = await client.post(f"{API}/sessions", json={"name": "chosen", "namespace": "mine"})
    assert unnamed.status_code == 201 and unnamed.json()["namespace"] == "team-a"
    assert chosen.status_code == 201 and chosen.json()["namespace"] == "mine"


@pytest.mark.asyncio
async def test_list_filters_by_state_namespace_and_text_and_paginates(server: Server) -> None:
    client = server.client()
    ids = [(await create(server, name=f"job-{i}", namespace="batch"))["id"] for i in range(5)]
    other = await create(server, name="other", namespace="web")
    for session_id in [*ids, other["id"]]:
        await wait_for_state(client, session_id, "ready")
    await client.put(f"{API}/sessions/{ids[0]}/state", json={"state": "idle"})

    seen: list[str] = []
    cursor = None
    while True:
        params = {"namespace": "batch", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/sessions", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))

    idle = (await client.get(f"{API}/sessions", params={"state": "idle"})).json()["items"]
    assert [item["id"] for item in idle] == [ids[0]]
    both = await client.get(f"{API}/sessions?state=idle,ready&state=init")
    assert len(both.json()["items"]) == 6
    found = (await client.get(f"{API}/sessions", params={"q": "OTH"})).json()["items"]
    assert [item["id"] for item in found] == [other["id"]]


@pytest.mark.asyncio
async def test_events_list_records_every_transition_in_order(server: Server) -> None:
    client = server.client()
    created = await create(server)
    await wait_for_state(client, created["id"], "ready")
    await client.put(f"{API}/sessions/{created['id']}/state", json={"state": "idle"})
    events = (await client.get(f"{API}/sessions/{created['id']}/events")).json()
    kinds = [event["kind"] for event in events]
    assert kinds[0] == "created" and "ready" in kinds and kinds[-1] == "paused"
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(seqs)
    later = (await client.get(f"{API}/sessions/{created['id']}/events?after={seqs[-2]}")).json()
    assert [event["seq"] for event in later] == [seqs[-1]]


async def read_sse(response, until_kind: str) -> list[tuple[dict[str, str], str]]:
    """Parse SSE frames until an event of kind ``until_kind``; comments come back as ``:``."""
    frames: list[tuple[dict[str, str], str]] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            frames.append(({":": line}, ""))
        elif line == "":
            if "event" in fields:
                frames.append((fields, fields.get("event", "")))
                if fields.get("event") == until_kind:
                    return frames
            fields = {}
        else:
            name, _, value = line.partition(": ")
            fields[name] = value
    return frames


@pytest.mark.asyncio
async def test_event_stream_replays_then_follows_live_and_ends_when_the_session_is_deleted(
    server: Server,
) -> None:
    client = server.client()
    created = await create(server)
    await wait_for_state(client, created["id"], "ready")
    url = f"{API}/sessions/{created['id']}/events"
    headers = {"Accept": "text/event-stream"}
    async with client.stream("GET", url, headers=headers) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def act() -> None:
            await asyncio.sleep(0.4)  # long enough for a heartbeat (0.2 s in tests)
            await client.put(f"{API}/sessions/{created['id']}/state", json={"state": "idle"})
            await client.delete(f"{API}/sessions/{created['id']}")

        actor = asyncio.ensure_future(act())
        frames = await asyncio.wait_for(read_sse(response, "deleted"), 10)
        await actor
    kinds = [kind for fields, kind in frames if ":" not in fields]
    assert kinds[0] == "created" and "ready" in kinds
    assert kinds.index("paused") < kinds.index("deleting") < kinds.index("deleted")
    assert any(":" in fields for fields, _ in frames), "no heartbeat comment seen"
    ids = [int(fields["id"]) for fields, _ in frames if "id" in fields]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    data = json.loads(frames[0][0]["data"])
    assert data["session_id"] == created["id"] and data["kind"] == "created"


@pytest.mark.asyncio
async def test_event_stream_resumes_after_last_event_id(server: Server) -> None:
    client = server.client()
    created = await create(server)
    await wait_for_state(client, created["id"], "ready")
    await client.put(f"{API}/sessions/{created['id']}/state", json={"state": "idle"})
    events = (await client.get(f"{API}/sessions/{created['id']}/events")).json()
    headers = {"Accept": "text/event-stream", "Last-Event-ID": str(events[-2]["seq"])}
    url = f"{API}/sessions/{created['id']}/events"
    async with client.stream("GET", url, headers=headers) as response:
        frames = await asyncio.wait_for(read_sse(response, "paused"), 5)
    assert [int(f["id"]) for f, _ in frames if "id" in f] == [events[-1]["seq"]]


@pytest.mark.asyncio
async def test_the_all_sessions_stream_shows_only_the_callers_sessions(server: Server) -> None:
    alice, bob = server.client("alicetok"), server.client("bobtok")
    headers = {"Accept": "text/event-stream"}
    async with alice.stream("GET", f"{API}/events", headers=headers) as response:
        assert response.status_code == 200
        await bob.post(f"{API}/sessions", json={"name": "bobs"})
        mine = (await alice.post(f"{API}/sessions", json={"name": "alices"})).json()
        frames = await asyncio.wait_for(read_sse(response, "ready"), 5)
    session_ids = {json.loads(f["data"])["session_id"] for f, _ in frames if "data" in f}
    assert session_ids == {mine["id"]}


@pytest.mark.asyncio
async def test_logs_return_the_output_and_follow_streams_it(server: Server) -> None:
    client = server.client()
    created = await create(server)
    await wait_for_state(client, created["id"], "ready")
    async with asyncio.timeout(5):  # ready means "stayed up", not "has printed yet"
        while not (
            response := await client.get(f"{API}/sessions/{created['id']}/logs?tail=5")
        ).text:
            await asyncio.sleep(0.05)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "started\n"
    url = f"{API}/sessions/{created['id']}/logs?follow=true"
    async with client.stream("GET", url) as streamed:
        lines = streamed.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 5) == "started"
        await client.put(f"{API}/sessions/{created['id']}/state", json={"state": "idle"})
        rest = await asyncio.wait_for(_collect(lines), 5)  # ends once the process is gone
    assert rest == []


async def _collect(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]


@pytest.mark.asyncio
async def test_health_and_version_answer_without_a_token(server: Server) -> None:
    client = server.client(None)
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "version": health.json()["version"],
        "backend": "local",
        "store": "ok",
    }
    version = (await client.get("/version")).json()
    assert version["api"] == "v0" and version["version"] == health.json()["version"]


@pytest.mark.asyncio
async def test_health_answers_503_when_the_store_is_unreachable(server: Server) -> None:
    await server.app.core.store.close()
    try:
        response = await server.client(None).get("/health")
    finally:
        await server.app.core.store.open()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable" and response.json()["store"] == "unreachable"
    assert (await server.client(None).get("/health")).status_code == 200


@pytest.mark.asyncio
async def test_every_response_carries_a_request_id_and_echoes_a_given_one(server: Server) -> None:
    client = server.client()
    given = await client.get(f"{API}/sessions", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    fresh = await client.get(f"{API}/sessions/{uuid.uuid4()}")
    assert len(fresh.headers["X-Request-Id"]) == 32
    bogus = await client.get(f"{API}/sessions", headers={"X-Request-Id": "bad id!"})
    assert bogus.headers["X-Request-Id"] != "bad id!"


@pytest.mark.asyncio
async def test_open_streams_end_when_the_server_ends_them_for_shutdown(server: Server) -> None:
    client = server.client()
    headers = {"Accept": "text/event-stream"}
    async with client.stream("GET", f"{API}/events", headers=headers) as response:
        assert response.status_code == 200
        end_streams(server.app._http.request_callback)  # type: ignore[union-attr,arg-type]
        body = await asyncio.wait_for(response.aread(), 5)
    assert body.startswith(b"retry:")
