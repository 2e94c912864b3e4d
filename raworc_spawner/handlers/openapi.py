"""``/api/v0/openapi.json``: the OpenAPI 3.1 description of every endpoint.

Built in Python from the same limits the validators use, so the document cannot drift from them
silently; the API tests validate real responses against it and check that every route is in it.
"""

from __future__ import annotations

import functools
from typing import Any

from raworc_spawner import __version__
from raworc_spawner.handlers.api import API, MAX_LOG_TAIL, MAX_PAGE_SIZE
from raworc_spawner.handlers.api_base import MAX_JSON_DEPTH, ApiHandler
from raworc_spawner.handlers.base import route
from raworc_spawner.handlers.events import MAX_EVENTS
from raworc_spawner.handlers.openapi_schemas import SCHEMAS, STATES, Schema, ref

# -- responses and parameters ---------------------------------------------------------------------

ERROR_RESPONSES = {
    "400": "Malformed JSON (syntax, NaN/Infinity, out-of-range numbers, invalid Unicode, "
    f"nesting deeper than {MAX_JSON_DEPTH}).",
    "401": "Missing or invalid bearer token (with WWW-Authenticate: Bearer).",
    "403": "Authenticated but not allowed.",
    "404": "No such session (or not the caller's), or no such path.",
    "405": "Method not allowed on this path.",
    "409": "Invalid state transition, or a conflicting concurrent change.",
    "413": "Request body over the configured limit.",
    "422": "Unknown or ill-typed field or query argument; `field` names it.",
    "429": "Session quota reached (with Retry-After).",
    "500": "Unexpected server error (details only in the server log).",
    "502": "The compute backend failed.",
    "503": "The compute backend is unavailable (with Retry-After).",
}


def json_response(description: str, schema: Schema) -> Schema:
    """A response with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def responses(ok: dict[str, Schema], *errors: int) -> dict[str, Schema]:
    """Success responses plus the listed error statuses, all with the Error body."""
    out = dict(ok)
    for status in sorted({*errors, 500}):
        out[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return out


def param(name: str, where: str, schema: Schema, description: str, **extra: Any) -> Schema:
    """A parameter object."""
    return {"name": name, "in": where, "schema": schema, "description": description, **extra}


SESSION_ID = param("id", "path", {"type": "string"}, "Session id (a UUID).", required=True)
AUTH = (401, 404)


def op(summary: str, responses_: dict[str, Schema], **extra: Any) -> Schema:
    """An operation object."""
    return {"summary": summary, "responses": responses_, **extra}


def body(name: str) -> Schema:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def _sessions_paths() -> dict[str, Schema]:
    list_params = [
        param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            "Page size (default 50).",
        ),
        param("cursor", "query", {"type": "string"}, "next_cursor of the previous page."),
        param(
            "state",
            "query",
            {"type": "array", "items": {"type": "string", "enum": STATES}},
            "Only these states; repeat or comma-separate.",
            style="form",
            explode=True,
        ),
        param("namespace", "query", {"type": "string"}, "Only this namespace."),
        param("q", "query", {"type": "string"}, "Substring of the name or id, ignoring case."),
        param(
            "owner",
            "query",
            {"type": "string"},
            "Only this owner (admins; others see only their own).",
        ),
    ]
    session = json_response("The session.", ref("Session"))
    one = f"{API}/sessions/{{id}}"
    return {
        f"{API}/sessions": {
            "get": op(
                "List sessions, newest first",
                responses({"200": json_response("A page.", ref("SessionPage"))}, 401, 422),
                parameters=list_params,
            ),
            "post": op(
                "Create a session",
                responses(
                    {"201": {**session, "headers": {"Location": {"schema": {"type": "string"}}}}},
                    400,
                    401,
                    413,
                    422,
                    429,
                    502,
                    503,
                ),
                requestBody=body("CreateSession"),
            ),
        },
        one: {
            "parameters": [SESSION_ID],
            "get": op("Get a session", responses({"200": session}, *AUTH)),
            "patch": op(
                "Change a session's fields",
                responses({"200": session}, 400, *AUTH, 409, 413, 422),
                requestBody=body("UpdateSession"),
            ),
            "delete": op(
                "Delete a session (compute, then workspace, then record)",
                responses({"204": {"description": "Deleted."}}, *AUTH, 502, 503),
            ),
        },
        f"{one}/state": {
            "parameters": [SESSION_ID],
            "put": op(
                "Pause (idle), resume (ready) or mark busy",
                responses({"200": session}, 400, *AUTH, 409, 413, 422, 502, 503),
                requestBody=body("StateChange"),
            ),
        },
        f"{one}/remix": {
            "parameters": [SESSION_ID],
            "post": op(
                "Create a session whose workspace starts as a copy of this one's",
                responses(
                    {"201": {**session, "headers": {"Location": {"schema": {"type": "string"}}}}},
                    400,
                    *AUTH,
                    413,
                    422,
                    429,
                    502,
                    503,
                ),
                requestBody={
                    "required": False,
                    "content": {"application/json": {"schema": ref("RemixSession")}},
                },
            ),
        },
        f"{one}/activity": {
            "parameters": [SESSION_ID],
            "post": op(
                "Heartbeat: note activity so the idle culler leaves the session running",
                responses({"204": {"description": "Noted."}}, *AUTH),
            ),
        },
        f"{one}/status": {
            "parameters": [SESSION_ID],
            "get": op(
                "The session with its compute and workspace now",
                responses({"200": json_response("Status.", ref("SessionStatus"))}, *AUTH, 502, 503),
            ),
        },
    }


def _stream_paths() -> dict[str, Schema]:
    one = f"{API}/sessions/{{id}}"
    sse = {"text/event-stream": {"schema": {"type": "string"}}}
    events_ok = json_response(
        "Recorded events, oldest first (JSON), or an SSE stream.", ref("SessionEventList")
    )
    events_ok["content"].update(sse)
    return {
        f"{one}/events": {
            "parameters": [SESSION_ID],
            "get": op(
                "Events: JSON list, or SSE with Accept: text/event-stream",
                responses({"200": events_ok}, *AUTH, 422),
                parameters=[
                    param(
                        "after",
                        "query",
                        {"type": "integer", "minimum": 0},
                        "Only events with a larger seq (SSE: or Last-Event-ID).",
                    ),
                    param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS},
                        "Most events to return (JSON only; default 200).",
                    ),
                ],
            ),
        },
        f"{one}/logs": {
            "parameters": [SESSION_ID],
            "get": op(
                "The session's output as text/plain",
                responses(
                    {
                        "200": {
                            "description": "Log lines.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                    *AUTH,
                    422,
                ),
                parameters=[
                    param(
                        "tail",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LOG_TAIL},
                        "Only the last N lines (default all).",
                    ),
                    param(
                        "follow",
                        "query",
                        {"type": "boolean"},
                        "Keep streaming new lines while the session runs.",
                    ),
                ],
            ),
        },
        f"{API}/events": {
            "get": op(
                "Live events of every session the caller may see (SSE)",
                responses({"200": {"description": "SSE stream.", "content": sse}}, 401),
            ),
        },
    }


def _proxy_paths() -> dict[str, Schema]:
    params = [
        SESSION_ID,
        param(
            "port",
            "path",
            {"type": "integer", "minimum": 1, "maximum": 65535},
            "Port the session's server listens on.",
            required=True,
        ),
        param("path", "path", {"type": "string"}, "Path on the session's server.", required=True),
    ]
    forwarded = {
        "200": {"description": "The session's own answer (any status, streamed)."},
        "101": {"description": "WebSocket upgrade, relayed both ways."},
    }
    summary = (
        "Forward HTTP or WebSocket traffic to the session's port, waking it first if it "
        "sleeps (503 with Retry-After if it cannot wake in time)"
    )
    errors = (*AUTH, 422, 502, 503)
    methods = ("get", "head", "post", "put", "patch", "delete", "options")
    item: dict[str, Any] = {"parameters": params}
    item.update({m: op(summary, responses(forwarded, *errors)) for m in methods})
    return {"/sessions/{id}/proxy/{port}/{path}": item}


def _system_paths() -> dict[str, Schema]:
    public: list[Schema] = [{}]
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/health": {
            "get": op(
                "Liveness and store reachability",
                {
                    "200": json_response("Healthy.", ref("Health")),
                    "503": json_response("The store is unreachable.", ref("Health")),
                },
                security=public,
            )
        },
        "/version": {
            "get": op(
                "Server version",
                {"200": json_response("Version.", ref("Version"))},
                security=public,
            )
        },
        "/metrics": {
            "get": op(
                "Prometheus metrics",
                {"200": {"description": "Text exposition format.", "content": text}},
                security=public,
            )
        },
        f"{API}/openapi.json": {
            "get": op(
                "This document",
                {"200": json_response("OpenAPI 3.1.", {"type": "object"})},
                security=public,
            )
        },
    }


@functools.cache
def openapi_document() -> Schema:
    """The OpenAPI 3.1 document (built once)."""
    error_responses = {
        f"E{status}": json_response(text, ref("Error")) for status, text in ERROR_RESPONSES.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "raworc-spawner",
            "version": __version__,
            "description": "Sessions with their own compute and a persistent workspace. Errors "
            'are JSON {"error": {"code", "message"}}; non-admins see only their own sessions.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {**_sessions_paths(), **_stream_paths(), **_proxy_paths(), **_system_paths()},
        "components": {
            "schemas": SCHEMAS,
            "responses": error_responses,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


class OpenAPIHandler(ApiHandler):
    """Serves the OpenAPI document (public)."""

    auth_required = False

    async def get(self) -> None:
        """The document as JSON."""
        self.write_json(openapi_document())


routes = [route(rf"{API}/openapi.json", OpenAPIHandler, "openapi")]
