"""Requests that are not plain object storage: logs, access reviews, metrics, discovery."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import discovery
from ..auth import Attributes
from ..errors import ApiError, bad_request, not_found
from ..objects import timestamp
from ..resources import CATALOG
from ..selectors import Selector
from .responses import read_body, respond
from .routing import Route

if TYPE_CHECKING:
    from ..server import KubeSim


def _log_container(pod: dict[str, object], route: Route, container: str) -> str:
    names = [c["name"] for c in pod["spec"]["containers"]]  # type: ignore[index]
    if not container:
        if len(names) != 1:
            raise bad_request(
                f"a container name must be specified for pod {route.name}, "
                f"choose one of: [{' '.join(names)}]"
            )
        return str(names[0])
    if container not in names:
        raise bad_request(f"container {container} is not valid for pod {route.name}")
    return container


async def pod_log(sim: KubeSim, request: web.Request, route: Route) -> web.StreamResponse:
    """Container logs as text; ``follow=true`` streams until the container stops."""
    pod = sim.registry.get(route.rt, route.ns, route.name)
    q = request.query
    container = _log_container(pod, route, q.get("container", ""))
    status = next(
        (
            s
            for s in (pod.get("status") or {}).get("containerStatuses") or []
            if s["name"] == container
        ),
        None,
    )
    if status is None or (
        "waiting" in (status.get("state") or {}) and not status.get("restartCount")
    ):
        reason = (
            ((status or {}).get("state") or {})
            .get("waiting", {})
            .get("reason", "ContainerCreating")
        )
        raise bad_request(
            f'container "{container}" in pod "{route.name}" is waiting to start: {reason}'
        )
    tail = int(q["tailLines"]) if q.get("tailLines", "").lstrip("-").isdigit() else None
    stamps = q.get("timestamps", "").lower() == "true"
    key = (route.ns, route.name, container)
    lines = sim.logs.read(key, tail=tail)
    follow = q.get("follow", "").lower() == "true"
    queue = sim.logs.follow(key) if follow and "running" in (status.get("state") or {}) else None
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write("".join(_line(line, stamps) for line in lines).encode())
    if queue is not None:
        try:
            while (line := await queue.get()) is not None:
                await response.write(_line(line, stamps).encode())
        finally:
            sim.logs.unfollow(key, queue)
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


def _line(line: str, stamps: bool) -> str:
    return (line if stamps else line.split(" ", 1)[1]) + "\n"


async def access_review(sim: KubeSim, request: web.Request, token: str) -> web.Response:
    """SelfSubjectAccessReview, answered from the same policy that guards requests."""
    body = await read_body(request) or {}
    wanted = _review_attributes(body.get("spec") or {})
    reason = sim.policy.reason(token, wanted) if wanted is not None else ""
    allowed = bool(reason)
    status: dict[str, object] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    if not allowed:
        status["denied"] = False
    body.update(
        kind="SelfSubjectAccessReview",
        apiVersion="authorization.k8s.io/v1",
        metadata={"creationTimestamp": None},
        status=status,
    )
    return respond(body, 201)


def _review_attributes(spec: dict[str, Any]) -> Attributes | None:
    """The attributes an access review asks about (resource or non-resource)."""
    attrs = spec.get("resourceAttributes")
    if attrs is not None:
        return Attributes(
            verb=attrs.get("verb", ""),
            group=attrs.get("group", ""),
            resource=attrs.get("resource", ""),
            subresource=attrs.get("subresource", ""),
            namespace=attrs.get("namespace", ""),
            name=attrs.get("name", ""),
        )
    other = spec.get("nonResourceAttributes")
    if other is not None:
        return Attributes(
            verb=other.get("verb", ""), group="", resource="", path=other.get("path", "")
        )
    return None


async def metrics(sim: KubeSim, request: web.Request, route: Route) -> web.Response:
    """metrics.k8s.io PodMetrics and NodeMetrics, for ``kubectl top``."""
    selector = Selector.parse(
        request.query.get("labelSelector"), request.query.get("fieldSelector"), route.rt.plural
    )
    if route.rt.kind == "NodeMetrics":
        nodes = sim.store.list("nodes")
        items = [sim.usage.node_metrics(n) for n in nodes if selector.matches(n)]
    else:
        pods = (
            sim.store.list("pods", route.namespace) if route.namespace else sim.store.list("pods")
        )
        items = [
            m for p in pods if selector.matches(p) and (m := sim.usage.pod_metrics(p)) is not None
        ]
    if route.name:
        found = next((i for i in items if i["metadata"]["name"] == route.name), None)
        if found is None:
            raise not_found(route.rt, route.name)
        return respond(found)
    return respond(
        {
            "kind": f"{route.rt.kind}List",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items,
        }
    )


async def discovery_document(sim: KubeSim, request: web.Request) -> web.Response:
    """``/version``, ``/api``, ``/apis``, ``/apis/<group>`` and group-version resource lists."""
    path = request.path.rstrip("/")
    accept = request.headers.get("Accept", "")
    if path == "/version":
        return respond(discovery.version_info(sim.config.kubernetes_version))
    if (
        path in ("/api", "/apis")
        and discovery.AGGREGATED_ACCEPT in accept
        and "v=v2;" in accept + ";"
    ):
        return respond(
            discovery.aggregated(path == "/api"), content_type=discovery.AGGREGATED_CONTENT_TYPE
        )
    if path == "/api":
        return respond(discovery.api_versions(f"{sim.config.host}:{sim.port}"))
    if path == "/apis":
        return respond(discovery.api_group_list())
    parts = [p for p in path.split("/") if p]
    doc = None
    if len(parts) == 2 and parts[0] == "api":
        doc = discovery.resource_list("", parts[1])
    elif len(parts) == 2:
        doc = discovery.api_group(parts[1])
    elif len(parts) == 3:
        doc = discovery.resource_list(parts[1], parts[2])
    if doc is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return respond(doc)


async def health(sim: KubeSim, request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def control(sim: KubeSim, request: web.Request) -> web.Response:
    """``/_kubesim/...``: counters, faults, compaction, restart and injected pod faults."""
    what = request.path.removeprefix("/_kubesim/").strip("/")
    if what == "counters":
        if request.method == "DELETE":
            sim.counters.reset()
        return respond(sim.counters.snapshot())
    if what == "faults" and request.method == "POST":
        sim.faults.configure(await read_body(request) or {})
        return respond({"ok": True, "at": timestamp()})
    if what == "inject" and request.method == "POST":
        body = await read_body(request) or {}
        try:
            sim.kubelet.inject(body["namespace"], body["pod"], body["fault"], body.get("container"))
        except (KeyError, LookupError, ValueError) as e:
            raise bad_request(f"cannot inject: {e}") from e
        return respond({"ok": True})
    if what == "state":
        return respond(
            {
                "resourceVersion": sim.store.rv,
                "watches": sim.hub.open_count,
                "objects": {
                    rt.key: sim.store.count(rt.key) for rt in CATALOG.resources if rt.stored
                },
            }
        )
    raise ApiError(404, "NotFound", f"no control endpoint {what!r}")


async def sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
