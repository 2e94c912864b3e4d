"""JSON responses and request bodies."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from ..errors import ApiError, bad_request
from ..protobuf import decode_body, is_protobuf

JSON = "application/json"
VERB: web.RequestKey[str] = web.RequestKey("kubesim.verb", str)
RESOURCE: web.RequestKey[str] = web.RequestKey("kubesim.resource", str)
COUNTED: web.RequestKey[bool] = web.RequestKey("kubesim.counted", bool)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def respond(
    obj: Any, status: int = 200, *, headers: dict[str, str] | None = None, content_type: str = JSON
) -> web.Response:
    return web.Response(body=dumps(obj), status=status, headers=headers, content_type=content_type)


def respond_error(error: ApiError) -> web.Response:
    return respond(error.status(), error.code, headers=error.headers or None)


async def read_body(request: web.Request) -> Any:
    """The decoded body: JSON, YAML for apply patches, or protobuf; 400 when it does not parse.

    Protobuf bodies of kinds kubesim has no message table for are 415 (see
    :mod:`kubesim.protobuf`).
    """
    raw = await request.read()
    if not raw:
        return None
    content_type = request.headers.get("Content-Type", JSON).split(";")[0].strip()
    if is_protobuf(content_type):
        return decode_body(raw)
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise bad_request(f"the body of the request was in an unknown format: {e}") from e


def warning_headers(warnings: list[str]) -> dict[str, str]:
    """``Warning: 299 - "..."`` headers, as the API server sends for dropped fields."""
    if not warnings:
        return {}
    return {"Warning": ", ".join(f'299 - "{w.replace(chr(34), chr(39))}"' for w in warnings)}
