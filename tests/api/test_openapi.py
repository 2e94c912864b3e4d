"""The OpenAPI document describes every route, and real responses match its schemas."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
import tornado.web

from tests.api.conftest import Server, wait_for_state

API = "/api/v0"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest_asyncio.fixture
async def document(server: Server) -> dict[str, Any]:
    response = await server.client(None).get(f"{API}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    jsonschema.Draft202012Validator.check_schema({"$defs": doc["components"]["schemas"]})
    return doc


def check(doc: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """Validate a real response against the schema documented for it."""
    operation = doc["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {path} {response.status_code} undocumented"
    if "$ref" in documented:
        documented = doc["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    if "content" not in documented:
        assert response.content == b""
        return
    media = response.headers["Content-Type"].split(";")[0]
    assert media in documented["content"], (media, list(documented["content"]))
    if media != "application/json":
        return
    schema = {**documented["content"][media]["schema"], "components": doc["components"]}
    jsonschema.validate(response.json(), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.asyncio
async def test_real_responses_match_the_documented_schemas(
    server: Server, document: dict[str, Any]
) -> None:
    client = server.client()
    one = f"{API}/sessions/{{id}}"
    created = await client.post(
        f"{API}/sessions",
        json={
            "name": "doc",
            "metadata": {"a": [1]},
            "agent_ids": ["x"],
            "waiting_timeout_seconds": 0,
        },
    )
    check(document, "post", f"{API}/sessions", created)
    sid = created.json()["id"]
    await wait_for_state(client, sid, "ready")
    url = f"{API}/sessions/{sid}"
    exchanges = [
        ("get", one, await client.get(url)),
        ("get", f"{API}/sessions", await client.get(f"{API}/sessions?limit=1")),
        ("get", f"{one}/status", await client.get(f"{url}/status")),
        ("get", f"{one}/events", await client.get(f"{url}/events")),
        ("get", f"{one}/logs", await client.get(f"{url}/logs")),
        ("patch", one, await client.patch(url, json={"name": "doc2"})),
        ("put", f"{one}/state", await client.put(f"{url}/state", json={"state": "busy"})),
        ("put", f"{one}/state", await client.put(f"{url}/state", json={"state": "idle"})),
        ("put", f"{one}/state", await client.put(f"{url}/state", json={"state": "busy"})),
        ("post", f"{API}/sessions", await client.post(f"{API}/sessions", content=b"{")),
        ("post", f"{API}/sessions", await client.post(f"{API}/sessions", json={"x": 1})),
        ("post", f"{API}/sessions", await client.post(f"{API}/sessions", content=b"x" * 70_000)),
        ("get", f"{API}/sessions", await server.client(None).get(f"{API}/sessions")),
        ("get", f"{API}/sessions", await client.get(f"{API}/sessions?state=bad")),
        ("get", one, await client.get(f"{API}/sessions/{uuid.uuid4()}")),
        ("get", "/health", await client.get("/health")),
        ("get", "/version", await client.get("/version")),
        ("get", "/metrics", await client.get("/metrics")),
        ("get", f"{API}/openapi.json", await client.get(f"{API}/openapi.json")),
        ("delete", one, await client.delete(url)),
        ("delete", one, await client.delete(url)),
    ]
    statuses = {response.status_code for _, _, response in exchanges}
    assert {200, 204, 400, 401, 404, 409, 413, 422} <= statuses
    for method, path, response in exchanges:
        check(document, method, path, response)


def documented_path(pattern: str) -> str:
    """``/api/v0/sessions/([^/]+)/state$`` → ``/api/v0/sessions/{id}/state``."""
    named = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    return re.sub(r"\([^)]*\)", "{id}", named).rstrip("$")


def _is_browser_page(handler: Any) -> bool:
    """HTML pages and static files are for browsers, not part of the JSON API."""
    module = getattr(handler, "__module__", "")
    return (
        module.startswith("raworc_spawner.handlers.pages")
        or handler is tornado.web.StaticFileHandler
    )


@pytest.mark.asyncio
async def test_every_route_and_method_of_the_application_is_documented(
    server: Server, document: dict[str, Any]
) -> None:
    app: tornado.web.Application = server.app._http.request_callback  # type: ignore[union-attr,assignment]
    rules = [
        rule
        for rule in app.wildcard_router.rules
        if isinstance(rule, tornado.web.URLSpec) and not _is_browser_page(rule.target)
    ]
    assert len(rules) >= 10
    for rule in rules:
        path = documented_path(rule.regex.pattern)
        assert path in document["paths"], f"route {rule.regex.pattern} is not documented"
        handler = rule.target
        implemented = {
            m for m in METHODS if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)
        }
        documented = {m for m in document["paths"][path] if m in METHODS}
        assert implemented == documented, (path, implemented, documented)
    routed = {documented_path(rule.regex.pattern) for rule in rules}
    assert set(document["paths"]) == routed, "documented paths that no route serves"


@pytest.mark.asyncio
async def test_the_document_lists_the_event_kinds_and_settable_states(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    kinds = schemas["SessionEvent"]["properties"]["kind"]["enum"]
    assert {"created", "ready", "paused", "failed", "deleted", "progress", "warning"} <= set(kinds)
    assert "remixed" not in kinds
    assert schemas["StateChange"]["properties"]["state"]["enum"] == ["ready", "idle", "busy"]
    namespace = schemas["CreateSession"]["properties"]["namespace"]
    assert namespace["pattern"] == "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
