"""A thin OpenAPI v3 document: the operations and the query parameters clients look for.

kubectl reads ``/openapi/v3`` before ``apply`` to learn whether the server validates fields
itself (the ``fieldValidation`` parameter of each PATCH operation). With that answered, kubectl
sends ``fieldValidation=Strict`` and leaves validation to the server, which kubesim does against
the real schemas. Component schemas are not published.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from .errors import ApiError
from .http.responses import respond, respond_error
from .resources import CATALOG, GROUP_PREFERRED, ResourceType

QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _gv_path(group: str) -> str:
    version = GROUP_PREFERRED[group]
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _operation(rt: ResourceType, action: str) -> dict[str, Any]:
    params = [
        {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for p in QUERY_PARAMS
    ]
    return {
        "operationId": f"{action}{rt.kind}",
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
    }


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = "/" + _gv_path(rt.group)
    collection = (
        f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    )
    verbs = set(rt.verbs)
    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = _operation(rt, "get")
    if "update" in verbs:
        item["put"] = _operation(rt, "put")
    if "patch" in verbs:
        item["patch"] = _operation(rt, "patch")
    if "delete" in verbs:
        item["delete"] = _operation(rt, "delete")
    listing: dict[str, Any] = {}
    if "list" in verbs:
        listing["get"] = _operation(rt, "list")
    if "create" in verbs:
        listing["post"] = _operation(rt, "post")
    paths = {collection: listing}
    if item:
        paths[f"{collection}/{{name}}"] = item
    return paths


def group_document(group: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rt in CATALOG.in_group_version(group, GROUP_PREFERRED[group]):
        paths.update(_paths(rt))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def _hash(document: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:128].upper()


def root_document() -> dict[str, Any]:
    paths = {}
    for group in ["", *CATALOG.groups()]:
        path = _gv_path(group)
        paths[path] = {
            "serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(group_document(group))}"
        }
    return {"paths": paths}


def openapi_response(request: web.Request) -> web.StreamResponse:
    """Answer ``/openapi/v3`` and ``/openapi/v3/<group-version>``; v2 is not served."""
    path = request.path.rstrip("/")
    if path == "/openapi/v3":
        return respond(root_document())
    wanted = path.removeprefix("/openapi/v3/")
    for group in ["", *CATALOG.groups()]:
        if wanted == _gv_path(group):
            return respond(group_document(group))
    return respond_error(
        ApiError(404, "NotFound", "the server could not find the requested resource")
    )
