"""Fixtures for the kubesim conformance tests: a running simulator and real clients for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient, CoreV1Api

from kubesim import KubeSim, KubeSimConfig

# The plugin's fixtures, used as other test packages will use them (kubesim_config is ours).
from kubesim.pytest_plugin import kube_api, kubesim  # noqa: F401

T = TypeVar("T")
NS = "raworc-sessions"


@pytest_asyncio.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if it leaves asyncio tasks running."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    leaked = [t for t in leaked if t is not asyncio.current_task()]
    assert not leaked, f"leaked tasks: {leaked}"


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return KubeSimConfig(namespaces=["default", "kube-system", NS], seed=7)


@pytest_asyncio.fixture
async def sim(kubesim_config: KubeSimConfig, no_leaked_tasks: None) -> AsyncIterator[KubeSim]:
    async with KubeSim(kubesim_config) as running:
        yield running


@pytest_asyncio.fixture
async def api(sim: KubeSim) -> AsyncIterator[ApiClient]:
    async with ApiClient(sim.client_configuration()) as client:
        yield client


@pytest.fixture
def core(api: ApiClient) -> CoreV1Api:
    return CoreV1Api(api)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 5.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def pod_manifest(
    name: str,
    *,
    image: str = "python:3.11-slim",
    cpu: str = "100m",
    memory: str = "128Mi",
    claim: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A session-like pod: labelled, with requests, optionally mounting a claim at /workspace."""
    container: dict[str, Any] = {
        "name": "session",
        "image": image,
        "command": ["sleep", "infinity"],
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
    }
    spec: dict[str, Any] = {"containers": [container], **extra}
    if claim:
        container["volumeMounts"] = [{"name": "workspace", "mountPath": "/workspace"}]
        spec["volumes"] = [{"name": "workspace", "persistentVolumeClaim": {"claimName": claim}}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "raworc", "component": "session"}},
        "spec": spec,
    }


def pvc_manifest(
    name: str, *, storage: str = "1Gi", storage_class: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": {"app": "raworc"}},
        "spec": spec,
    }


async def running_pod(core: CoreV1Api, name: str, namespace: str = NS) -> Any:
    async def probe() -> Any:
        pod = await core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase == "Running" else None

    return await eventually(probe, what=f"pod {name} Running")


async def events_for(core: CoreV1Api, name: str, namespace: str = NS) -> list[Any]:
    listed = await core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    return list(listed.items)
