"""The aiohttp application: one catch-all handler doing auth, faults and counting, then dispatch."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ..auth import Attributes
from ..errors import ApiError, forbidden
from . import crud, special
from .exec import SESSIONS as EXEC_SESSIONS
from .exec import close_sessions, pod_exec
from .responses import COUNTED, RESOURCE, VERB, respond_error
from .routing import Route, check_verb, parse_route, verb_for

if TYPE_CHECKING:
    from ..server import KubeSim

log = logging.getLogger("kubesim")
SIM: web.AppKey[KubeSim] = web.AppKey("kubesim")
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
Handler = Callable[["KubeSim", web.Request, Route], Awaitable[web.StreamResponse]]
VERBS: dict[str, Handler] = {
    "get": crud.get,
    "list": crud.list_,
    "watch": crud.watch,
    "create": crud.create,
    "update": crud.update,
    "patch": crud.patch,
    "delete": crud.delete,
    "deletecollection": crud.delete_collection,
}


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in ("true", "1")


async def _resource(
    sim: KubeSim, request: web.Request, route: Route, token: str, verb: str
) -> web.StreamResponse:
    check_verb(route, verb)
    attrs = Attributes(
        verb, route.rt.group, route.rt.plural, route.subresource, route.namespace or "", route.name
    )
    sim.policy.authorize(token, attrs)  # access reviews too: system:basic-user grants them
    if error := sim.faults.error_for(verb, route.rt.plural):
        raise error
    await special.sleep(sim.faults.delay())
    if route.rt.kind == "SelfSubjectAccessReview":
        return await special.access_review(sim, request, token)
    if route.rt.group == "metrics.k8s.io":
        return await special.metrics(sim, request, route)
    if route.subresource == "log":
        return await special.pod_log(sim, request, route)
    if route.subresource == "exec":
        return await pod_exec(sim, request, route)
    return await VERBS[verb](sim, request, route)


async def _dispatch(sim: KubeSim, request: web.Request) -> tuple[str, str, web.StreamResponse]:
    path = request.path
    if path in PUBLIC_PATHS:
        return (
            "get",
            "-",
            await (
                special.health(sim, request)
                if path != "/version"
                else special.discovery_document(sim, request)
            ),
        )
    token = sim.policy.authenticate(request.headers.get("Authorization"))
    if path.startswith("/_kubesim/"):
        if token != sim.policy.admin_token:
            raise forbidden("the kubesim control endpoints need the admin token")
        request[COUNTED] = True  # control traffic is not what the counters measure
        return "control", "-", await special.control(sim, request)
    if path.startswith("/openapi/"):
        return "get", "openapi", await sim.openapi(request)
    route = parse_route(path)
    if route is None:
        return "get", "discovery", await special.discovery_document(sim, request)
    verb = verb_for(request.method, route, _is_watch(request))
    resource = f"{route.rt.plural}/{route.subresource}" if route.subresource else route.rt.plural
    request[VERB], request[RESOURCE] = verb, resource
    return verb, resource, await _resource(sim, request, route, token, verb)


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request comes through here; errors become Status objects, and all are counted."""
    sim = request.app[SIM]
    try:
        verb, resource, response = await _dispatch(sim, request)
    except ApiError as e:
        verb = request.get(VERB, request.method.lower())
        resource = request.get(RESOURCE, "-")
        response = respond_error(e)
    except Exception:
        log.exception("kubesim failed on %s %s", request.method, request.path_qs)
        verb, resource = (
            request.get(VERB, request.method.lower()),
            request.get(RESOURCE, "-"),
        )
        response = respond_error(
            ApiError(
                500,
                "InternalError",
                "an error on the server has prevented the request from succeeding",
            )
        )
    if not request.get(COUNTED):
        sim.counters.record(verb, resource, response.status)
    return response


def build_app(sim: KubeSim) -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SIM] = sim
    app[EXEC_SESSIONS] = set()
    app.on_shutdown.append(close_sessions)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
