"""Turning a request path and method into a resource, a namespace, a name and a verb."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ApiError, method_not_allowed, path_not_found
from ..resources import CATALOG, ResourceType


@dataclass(frozen=True)
class Route:
    """A resource request: ``namespace`` None means across all namespaces."""

    rt: ResourceType
    namespace: str | None
    name: str = ""
    subresource: str = ""
    watch_path: bool = False

    @property
    def ns(self) -> str:
        """The namespace to store under ("" for cluster-scoped objects)."""
        return self.namespace or "" if self.rt.namespaced else ""


def _split(path: str) -> tuple[str, str, list[str]] | None:
    """``/api/v1/...`` or ``/apis/<group>/<version>/...`` → (group, version, rest)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def parse_route(path: str) -> Route | None:
    """The resource route for ``path``; None when it is not a resource path (discovery)."""
    split = _split(path)
    if split is None:
        return None
    group, version, rest = split
    if not rest:
        return None
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = CATALOG.find(group, version, rest[2])
        if rt is not None and rt.namespaced:
            return _build(rt, rest[1], rest[3:], watch_path, path)
    rt = CATALOG.find(group, version, rest[0]) if rest else None
    if rt is None:
        raise path_not_found(path)
    return _build(rt, None, rest[1:], watch_path, path)


CONNECT_SUBRESOURCES = {("pods", "exec")}
"""Subresources served as streams (``connect`` in the API server) rather than stored."""


def _has_subresource(rt: ResourceType, sub: str) -> bool:
    return sub in rt.subresources or (rt.key, sub) in CONNECT_SUBRESOURCES


def _build(
    rt: ResourceType, namespace: str | None, tail: list[str], watch_path: bool, path: str
) -> Route:
    if len(tail) > 2 or (len(tail) == 2 and not _has_subresource(rt, tail[1])):
        raise path_not_found(path)
    name = tail[0] if tail else ""
    sub = tail[1] if len(tail) == 2 else ""
    return Route(rt, namespace, name, sub, watch_path)


def verb_for(method: str, route: Route, watch: bool) -> str:
    """The Kubernetes verb of a request (what RBAC and the counters see).

    ``pods/exec`` is ``create`` whether it comes as a WebSocket GET or an SPDY POST. The API
    server authorizes the POST as ``create``; since 1.35
    (``AuthorizePodWebsocketUpgradeCreatePermission``) it checks ``create`` for the WebSocket
    upgrade too. Before 1.35 the GET needed only ``get``, and a role with only ``create`` still
    worked with kubectl, which retries a refused upgrade as an SPDY POST. kubesim has no SPDY,
    so it asks for ``create`` either way: what works here works on every version.
    """
    if (route.rt.key, route.subresource) in CONNECT_SUBRESOURCES and method in ("GET", "POST"):
        return "create"
    if method == "GET":
        if watch or route.watch_path:
            return "watch"
        return "get" if route.name else "list"
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    if method in verbs:
        return verbs[method]
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    raise method_not_allowed(method)


def check_verb(route: Route, verb: str) -> None:
    allowed = route.rt.verbs
    if route.subresource:
        allowed = {
            "status": ("get", "patch", "update"),
            "log": ("get",),
            "binding": ("create",),
            "token": ("create",),
            "exec": ("create",),
        }.get(route.subresource, ())
    if verb not in allowed:
        raise method_not_allowed(verb)
    if (
        route.namespace is None
        and route.rt.namespaced
        and verb not in ("list", "watch", "deletecollection")
    ):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
