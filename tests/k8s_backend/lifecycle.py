"""Helpers for the lifecycle tests: a started backend that records what it emits, and the
writes a kubelet, an eviction manager or any event writer would make through the API.

Pod status is changed through the ``status`` subresource and Events are written through the
events API, as a real controller does: the backend under test only ever sees the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim, KubeSimConfig
from raworc_spawner.backends.base import BackendEvent, BackendEventKind, SessionSpec
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from tests.k8s_backend.conftest import backend_config

NS = "raworc-sessions"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
Obj = dict[str, Any]


class Recorder:
    """The sink of a backend under test: every BackendEvent it emitted, in order."""

    def __init__(self) -> None:
        self.events: list[BackendEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: BackendEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, sid: str, kind: BackendEventKind | None = None) -> list[BackendEvent]:
        """The events about session ``sid`` (of ``kind`` when given)."""
        return [e for e in self.events if e.session_id == sid and kind in (None, e.kind)]

    async def wait_for(
        self, match: Callable[[BackendEvent], bool], *, timeout: float = 5.0
    ) -> BackendEvent:
        """The first event ``match`` accepts, waiting up to ``timeout`` seconds for it."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if match(event):
                        return event
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def started_backend(
    sim: KubeSim, *, instance_name: str = "raworc", **settings: Any
) -> AsyncIterator[tuple[Any, Recorder]]:
    """A KubernetesBackend of ``instance_name`` on ``sim`` (test timings plus ``settings``),
    started and recording."""
    config = backend_config(sim, **settings)
    backend = KubernetesBackend(config=config, instance_name=instance_name)
    recorder = Recorder()
    await backend.start(recorder)
    try:
        yield backend, recorder
    finally:
        await backend.close()


def session_spec(name: str = "lifecycle", **fields: Any) -> SessionSpec:
    """A session spec with a fresh id."""
    return SessionSpec(session_id=str(uuid.uuid4()), name=name, owner="alice", **fields)


async def settles_to(check: Callable[[], Any], expected: Any, *, timeout: float = 5.0) -> None:
    """Wait (at most ``timeout`` s) until ``check()`` returns ``expected``; assert it does."""
    with contextlib.suppress(TimeoutError):
        await eventually(lambda: check() == expected, timeout=timeout)
    value = check()
    assert value == expected, f"{value!r} != {expected!r}"


async def eventually(check: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    """The first truthy value of ``check()``, polled every 20 ms for at most ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while not (value := check()):
            await asyncio.sleep(0.02)
    return value


def stored_pod(sim: KubeSim, sid: str) -> Obj | None:
    """The session pod as kubesim stores it now."""
    return sim.store.get("pods", NS, f"session-{sid}")


def stored_pvc(sim: KubeSim, sid: str) -> Obj | None:
    """The session claim as kubesim stores it now."""
    return sim.store.get("persistentvolumeclaims", NS, f"session-pvc-{sid}")


async def change_pod_status(sim: KubeSim, sid: str, change: Callable[[Obj], None]) -> Obj:
    """Apply ``change`` to the pod's status through ``PUT …/status`` (retried on a conflict)."""
    name = f"session-{sid}"
    async with ApiClient(sim.client_configuration()) as api:
        core = CoreV1Api(api)
        for _ in range(20):
            pod = await _read_json(await core.read_namespaced_pod(name, NS, _preload_content=False))
            change(pod.setdefault("status", {}))
            try:
                response = await core.replace_namespaced_pod_status(
                    name, NS, cast(Any, pod), _preload_content=False
                )
            except ApiException as e:
                if e.status == 409:
                    continue
                raise
            return await _read_json(response)
    raise AssertionError(f"could not update the status of pod {name}")


def evicted(status: Obj) -> None:
    """What the kubelet's eviction manager writes: phase Failed, reason Evicted."""
    status.update(
        phase="Failed",
        reason="Evicted",
        message="The node was low on resource: memory. Threshold quantity: 100Mi.",
    )


def exited(code: int, reason: str, message: str = "") -> Callable[[Obj], None]:
    """The session container terminated with ``code``; the pod ends Succeeded or Failed."""

    def change(status: Obj) -> None:
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        for container in status.get("containerStatuses") or []:
            if container["name"] == "session":
                terminated: Obj = {"exitCode": code, "reason": reason, "finishedAt": now()}
                if message:
                    terminated["message"] = message
                container.update(ready=False, started=False, state={"terminated": terminated})
        for condition in status.get("conditions") or []:
            if condition["type"] in ("Ready", "ContainersReady"):
                condition.update(status="False", reason="PodCompleted")

    return change


def now(delta_seconds: float = 0) -> str:
    """An RFC 3339 timestamp ``delta_seconds`` from now, whole seconds (metav1.Time)."""
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delta_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_about(
    obj: Obj,
    *,
    reason: str,
    message: str,
    type: str = "Warning",
    uid: str | None = None,
    when: str | None = None,
    count: int = 1,
) -> Obj:
    """A core/v1 Event about ``obj`` (its uid, unless ``uid`` says otherwise)."""
    meta = obj["metadata"]
    stamp = when or now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": NS},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": obj.get("kind") or "Pod",
            "name": meta["name"],
            "namespace": NS,
            "uid": meta["uid"] if uid is None else uid,
        },
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": "test"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": count,
    }


async def write_event(sim: KubeSim, event: Obj) -> Obj:
    """Create ``event`` through the events API; returns it as stored."""
    async with ApiClient(sim.client_configuration()) as api:
        response = await CoreV1Api(api).create_namespaced_event(
            NS, cast(Any, event), _preload_content=False
        )
        return await _read_json(response)


async def bump_event(sim: KubeSim, event: Obj) -> Obj:
    """Update ``event`` in place as an event recorder does for a repeat: count + 1, same uid."""
    body = copy.deepcopy(event)
    body["count"] = int(body.get("count") or 1) + 1
    body["lastTimestamp"] = now()
    async with ApiClient(sim.client_configuration()) as api:
        response = await CoreV1Api(api).replace_namespaced_event(
            event["metadata"]["name"], NS, cast(Any, body), _preload_content=False
        )
        return await _read_json(response)


async def _read_json(response: Any) -> Obj:
    try:
        data: Obj = await response.json(content_type=None)
        return data
    finally:
        response.release()


def tls_config() -> KubeSimConfig:
    """The plugin's kubesim configuration, served over HTTPS: kubectl sends no token over HTTP."""
    return KubeSimConfig(namespaces=["default", "kube-system", NS], seed=1234, tls=True)


async def kubectl(sim: KubeSim, *args: str, stdin: str | None = None) -> str:
    """Run the real kubectl against ``sim`` without blocking its event loop (30 s at most).

    Returns its output; a non-zero exit fails the test with that output.
    """
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        *args,
        env={**os.environ, "KUBECONFIG": str(sim.kubeconfig_path)},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(30):
            out, _ = await proc.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {out.decode()}"
    return out.decode()
