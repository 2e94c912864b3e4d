"""Every bad input gets its documented status and a JSON error; nothing makes the server 500."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raworc_spawner.sessions.model import SessionState
from raworc_spawner.sessions.requests import FieldErrors, parse_create, parse_state
from tests.api.conftest import Server, make_config, running_server, wait_for_state
from tests.waiting import until_state_http

API = "/api/v0"
UNKNOWN_ID = "6f1c2a4e-8b9d-4e3f-a1b2-c3d4e5f60718"
UNKNOWN_FIELD = (
    "unknown field; allowed fields are agent_ids, metadata, name, namespace, profile, "
    "starting_prompt, waiting_timeout_seconds"
)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    return error


async def ready_session(server: Server) -> str:
    client = server.client()
    created = (await client.post(f"{API}/sessions", json={"name": "target"})).json()
    await wait_for_state(client, created["id"], "ready")
    return created["id"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic YTpi"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong token", "basic scheme", "empty bearer"],
)
async def test_requests_without_a_valid_token_get_401_with_a_bearer_challenge(
    server: Server, headers: dict[str, str]
) -> None:
    client = server.client(None)
    for method, path in [
        ("GET", "/sessions"),
        ("POST", "/sessions"),
        ("DELETE", f"/sessions/{uuid.uuid4()}"),
    ]:
        response = await client.request(method, API + path, headers=headers, json={"name": "x"})
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


MALFORMED = [
    b"{",
    b"",
    b"{'name': 'x'}",
    b'{"name": NaN}',
    b'{"name": Infinity}',
    b'{"metadata": {"x": 1e999}}',
    b'{"name": "x"} trailing',
    b"\xff\xfe\x00garbage",
    b'{"name": "\\ud800"}',
    b"[" * 100 + b"]" * 100,
    b"[" * 60_000,
    b'{"metadata": {"n": 1' + b"0" * 5000 + b"}}",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
async def test_malformed_json_bodies_get_400(server: Server, body: bytes) -> None:
    response = await server.client().post(f"{API}/sessions", content=body)
    assert_error(response, 400, "malformed_json")


INVALID_CREATE: list[tuple[Any, str]] = [
    ([1, 2], "body"),
    ("just a string", "body"),
    (None, "body"),
    (42, "body"),
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"name": "a\u0000b"}, "name"),
    ({"name": "x" * 300}, "name"),
    ({"name": "ok", "bogus": 1}, "bogus"),
    ({"name": "ok", "namespace": "Not Valid"}, "namespace"),
    ({"name": "ok", "agent_ids": "abc"}, "agent_ids"),
    ({"name": "ok", "agent_ids": [1]}, "agent_ids"),
    ({"name": "ok", "agent_ids": ["a\u0000"]}, "agent_ids"),
    ({"name": "ok", "metadata": []}, "metadata"),
    ({"name": "ok", "metadata": {"k": "v\u0000"}}, "metadata"),
    ({"name": "ok", "waiting_timeout_seconds": "10"}, "waiting_timeout_seconds"),
    ({"name": "ok", "waiting_timeout_seconds": -1}, "waiting_timeout_seconds"),
    ({"name": "ok", "waiting_timeout_seconds": 10**40}, "waiting_timeout_seconds"),
    ({"name": "ok", "waiting_timeout_seconds": 1.5}, "waiting_timeout_seconds"),
    ({"name": "ok", "waiting_timeout_seconds": True}, "waiting_timeout_seconds"),
    ({"name": "ok", "starting_prompt": ["no"]}, "starting_prompt"),
    ({"name": "ok", "profile": "gpu"}, "profile"),
    ({"name": "ok", "profile": 3}, "profile"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("body, field", INVALID_CREATE, ids=[f for _, f in INVALID_CREATE])
async def test_invalid_create_bodies_get_422_naming_the_field(
    server: Server, body: Any, field: str
) -> None:
    response = await server.client().post(f"{API}/sessions", content=json.dumps(body))
    error = assert_error(response, 422, "invalid_field")
    assert error["field"] == field and field in error["message"]


@pytest.mark.asyncio
async def test_a_body_with_several_bad_fields_gets_422_naming_the_first_in_field_order(
    server: Server,
) -> None:
    body = {"metadata": [], "namespace": "Not Valid", "name": "", "extra": 1}
    response = await server.client().post(f"{API}/sessions", json=body)
    error = assert_error(response, 422, "invalid_field")
    assert error["field"] == "extra"
    del body["extra"]
    response = await server.client().post(f"{API}/sessions", json=body)
    error = assert_error(response, 422, "invalid_field")
    assert error == {
        "code": "invalid_field",
        "message": "name: must be 1 to 253 characters long",
        "field": "name",
    }


def test_request_parsing_reports_every_bad_field_at_once_in_field_order() -> None:
    body = {"waiting_timeout_seconds": -1, "name": 5, "agent_ids": "a", "colour": "red"}
    with pytest.raises(FieldErrors) as caught:
        parse_create(body)
    assert caught.value.problems == (
        ("colour", UNKNOWN_FIELD),
        ("name", "must be a string, not a number"),
        ("agent_ids", "must be a list of non-empty strings"),
        ("waiting_timeout_seconds", "must be between 0 (never idle out) and 2592000; got -1"),
    )
    assert (caught.value.field, caught.value.message) == ("colour", f"colour: {UNKNOWN_FIELD}")


def test_a_create_body_without_a_namespace_leaves_it_to_the_server_default() -> None:
    assert parse_create({"name": "x"}).namespace is None
    assert parse_create({"name": "x", "namespace": "team-a"}).namespace == "team-a"
    with pytest.raises(FieldErrors) as caught:
        parse_create({"name": "x", "namespace": None})
    assert caught.value.field == "namespace"


def test_a_state_change_parses_into_a_session_state() -> None:
    assert parse_state({"state": "idle"}).state is SessionState.IDLE
    assert parse_state({"state": "ready", "new_workspace": True}).new_workspace is True
    with pytest.raises(FieldErrors) as caught:
        parse_state({})
    assert caught.value.message == "state: must be one of ready, idle, busy; got None"
    with pytest.raises(FieldErrors) as caught:
        parse_state({"state": "idle", "new_workspace": True})
    assert caught.value.message == "new_workspace: only with state 'ready', not 'idle'"
    with pytest.raises(FieldErrors) as caught:
        parse_state({"state": "ready", "new_workspace": "yes"})
    assert caught.value.message == "new_workspace: must be true or false; got a string 'yes'"


@pytest.mark.asyncio
async def test_invalid_patch_and_state_bodies_get_422_naming_the_field(server: Server) -> None:
    session_id = await ready_session(server)
    client = server.client()
    cases = [
        ("PATCH", "", {"namespace": "other"}, "namespace"),
        ("PATCH", "", {"name": None}, "name"),
        ("PATCH", "", {"state": "idle"}, "state"),
        ("PUT", "/state", {"state": "deleting"}, "state"),
        ("PUT", "/state", {"state": "error"}, "state"),
        ("PUT", "/state", {}, "state"),
        ("PUT", "/state", {"state": "idle", "now": True}, "now"),
        ("PUT", "/state", ["idle"], "body"),
    ]
    for method, suffix, body, field in cases:
        url = f"{API}/sessions/{session_id}{suffix}"
        error = assert_error(await client.request(method, url, json=body), 422)
        assert error["field"] == field, (method, suffix, body, error)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("state=sleeping", "state"),
        ("state=ready,nope", "state"),
        ("cursor=not-a-cursor", "cursor"),
        ("namespace=a%0Ab", "namespace"),
        ("q=%7F", "q"),
        ("colour=blue", "colour"),
    ],
)
async def test_bad_list_query_arguments_get_422_naming_the_argument(
    server: Server, query: str, field: str
) -> None:
    response = await server.client().get(f"{API}/sessions?{query}")
    assert assert_error(response, 422, "invalid_field")["field"] == field


@pytest.mark.asyncio
async def test_bad_event_and_log_arguments_get_422(server: Server) -> None:
    session_id = await ready_session(server)
    client = server.client()
    for path in ["events?after=-1", "events?after=x", "logs?tail=0", "logs?follow=maybe"]:
        assert_error(await client.get(f"{API}/sessions/{session_id}/{path}"), 422)
    sse = {"Accept": "text/event-stream", "Last-Event-ID": "abc"}
    assert_error(await client.get(f"{API}/sessions/{session_id}/events", headers=sse), 422)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "raw_id",
    [
        UNKNOWN_ID,
        "not-a-uuid",
        "1234",
        "%20",
        "{" + UNKNOWN_ID + "}",
        UNKNOWN_ID.upper(),
        "x" * 500,
    ],
)
async def test_unknown_or_non_uuid_session_ids_get_404_on_every_endpoint(
    server: Server, raw_id: str
) -> None:
    client = server.client()
    base = f"{API}/sessions/{raw_id}"
    for method, url, body in [
        ("GET", base, None),
        ("PATCH", base, {"name": "x"}),
        ("DELETE", base, None),
        ("PUT", f"{base}/state", {"state": "idle"}),
        ("GET", f"{base}/status", None),
        ("GET", f"{base}/events", None),
        ("GET", f"{base}/logs", None),
    ]:
        assert_error(await client.request(method, url, json=body), 404, "not_found")


@pytest.mark.asyncio
async def test_asking_for_the_state_a_session_is_in_is_a_no_op(server: Server) -> None:
    session_id = await ready_session(server)
    client = server.client()
    state_url = f"{API}/sessions/{session_id}/state"
    for state in ("busy", "busy", "ready", "ready", "idle", "idle"):
        answer = await client.put(state_url, json={"state": state})
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == state
    events = (await client.get(f"{API}/sessions/{session_id}/events")).json()
    kinds = [e["kind"] for e in events]
    assert kinds.count("paused") == 1 and kinds.count("agent") == 2  # busy once, ready once


@pytest.mark.asyncio
async def test_an_invalid_transition_gets_409(server: Server) -> None:
    session_id = await ready_session(server)
    client = server.client()
    state_url = f"{API}/sessions/{session_id}/state"
    assert (await client.put(state_url, json={"state": "idle"})).status_code == 200
    error = assert_error(await client.put(state_url, json={"state": "busy"}), 409)
    assert error["code"] == "invalid_transition" and "idle" in error["message"]


@pytest.mark.asyncio
async def test_a_body_over_the_limit_gets_413(server: Server) -> None:
    client = server.client()
    big = json.dumps({"name": "x", "starting_prompt": "y" * 70_000})
    assert_error(await client.post(f"{API}/sessions", content=big), 413, "body_too_large")

    async def chunks() -> Any:
        for _ in range(70):
            yield b" " * 1024

    chunked = await client.post(f"{API}/sessions", content=chunks())
    assert_error(chunked, 413, "body_too_large")
    assert (await client.get(f"{API}/sessions")).status_code == 200


@pytest.mark.asyncio
async def test_unknown_paths_get_a_json_404_and_wrong_methods_a_json_405(server: Server) -> None:
    client = server.client(None)
    for path in ["/nope", "/api/v0", "/api/v0/sessions/x/y/z", "/api/v1/sessions"]:
        assert_error(await client.get(path), 404, "not_found")
    admin = server.client()
    assert_error(await admin.put(f"{API}/sessions", json={}), 405, "method_not_allowed")
    assert_error(await admin.post(f"{API}/sessions/{uuid.uuid4()}"), 405)
    assert_error(await admin.delete("/health"), 405)
    assert_error(await admin.request("PROPFIND", f"{API}/sessions"), 405)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        *("name", "namespace", "starting_prompt", "agent_ids", "metadata"),
        *("waiting_timeout_seconds", "profile", "state", "bogus", ""),
    ]
)
BODIES = st.dictionaries(FIELDS, JSON_VALUES, max_size=4) | JSON_VALUES
RAW = st.binary(max_size=200) | st.text(max_size=200).map(
    lambda t: t.encode("utf-8", "surrogatepass")
)


@pytest.mark.asyncio
async def test_no_generated_body_makes_any_endpoint_answer_500(server: Server) -> None:
    """Hypothesis drives bodies and raw bytes at every writing endpoint."""
    session_id = await ready_session(server)
    client = server.client()
    targets = [
        ("POST", f"{API}/sessions"),
        ("PATCH", f"{API}/sessions/{session_id}"),
        ("PUT", f"{API}/sessions/{session_id}/state"),
    ]
    answers: list[tuple[int, bytes]] = []

    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        body=st.one_of(BODIES.map(lambda b: json.dumps(b).encode()), RAW),
        target=st.sampled_from(targets),
    )
    def check(body: bytes, target: tuple[str, str]) -> None:
        answers.append((targets.index(target), body))

    check()
    for index, body in answers:
        method, url = targets[index]
        response = await client.request(method, url, content=body)
        assert response.status_code < 500, (method, url, body, response.text)
        if response.status_code >= 400:
            assert_error(response, response.status_code)


@pytest.mark.asyncio
async def test_a_prompt_is_limited_in_utf8_bytes_so_every_backend_can_start_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = make_config(tmp_path)
    config.RaworcApp.max_body_bytes = 1024 * 1024
    async with running_server(config, tmp_path / "data") as server:
        client = server.client()
        largest = "é" * 50_000  # 100,000 bytes: the most the API accepts
        created = await client.post(
            f"{API}/sessions", json={"name": "p", "starting_prompt": largest}
        )
        assert created.status_code == 201, created.text
        ready = await until_state_http(client, created.json()["id"], "ready", timeout=10)
        assert ready["starting_prompt"] == largest

        too_big = "é" * 50_001  # 100,002 bytes
        refused = await client.post(
            f"{API}/sessions", json={"name": "p", "starting_prompt": too_big}
        )
        error = assert_error(refused, 422)
        assert error["message"] == (
            "starting_prompt: must be at most 100000 bytes in UTF-8 (it is 100002 bytes; "
            "it reaches the session as one environment variable)"
        )
        lone = await client.post(
            f"{API}/sessions",
            content=b'{"name": "p", "starting_prompt": "\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
        assert assert_error(lone, 400, "malformed_json")["message"] == (
            "strings must be valid Unicode"
        )


def test_metadata_is_measured_in_utf8_bytes_not_escapes() -> None:
    fits = parse_create({"name": "m", "metadata": {"a": "é" * 32_000}})  # 64,010 UTF-8 bytes
    assert fits.metadata == {"a": "é" * 32_000}
    with pytest.raises(FieldErrors) as refused:
        parse_create({"name": "m", "metadata": {"a": "é" * 33_000}})  # 66,010 bytes
    assert refused.value.message == "metadata: must be at most 65536 bytes as JSON"
