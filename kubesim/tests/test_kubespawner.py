"""KubeSpawner 7.1, unmodified, starts a user server on kubesim, sees it running and stops it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
from kubernetes_asyncio.config import kube_config

from kubesim import KubeSim, KubeSimConfig

from .conftest import NS, eventually

kubespawner = pytest.importorskip("kubespawner")
clients = pytest.importorskip("kubespawner.clients")


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return KubeSimConfig(namespaces=["default", NS], seed=3)


@pytest_asyncio.fixture
async def spawner_sim(
    kubesim_config: KubeSimConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[KubeSim]:
    """kubesim, with KubeSpawner's process-wide client state pointed at it and reset after."""
    async with KubeSim(kubesim_config, kubeconfig_path=tmp_path / "kubeconfig") as sim:
        monkeypatch.setenv("KUBECONFIG", str(sim.kubeconfig_path))
        # kubernetes_asyncio reads KUBECONFIG once, at import time.
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(sim.kubeconfig_path))
        clients.load_config.cache_clear()
        before = asyncio.all_tasks()
        try:
            yield sim
        finally:
            await kubespawner.KubeSpawner._stop_all_reflectors()
            # KubeSpawner keeps one client per loop, closed by a task that waits to be cancelled.
            for task in asyncio.all_tasks() - before:
                if task is not asyncio.current_task():
                    task.cancel()
            await asyncio.sleep(0.05)
            clients._client_cache.clear()
            clients.load_config.cache_clear()
            Configuration.set_default(Configuration())


def make_spawner() -> Any:
    spawner = kubespawner.KubeSpawner(
        _mock=True,
        namespace=NS,
        image="python:3.11-slim",
        cmd=["jupyterhub-singleuser"],
        start_timeout=30,
        api_token="kubesim-test-token",
        oauth_client_id="jupyterhub-user-mock",
        cpu_guarantee=0.1,
        mem_guarantee="128M",
    )
    spawner.user.name = "alice"
    return spawner


@pytest.mark.asyncio
async def test_kubespawner_starts_a_server_sees_it_running_and_stops_it(
    spawner_sim: KubeSim,
) -> None:
    spawner = make_spawner()
    url = await asyncio.wait_for(spawner.start(), 30)
    pod = spawner_sim.store.get("pods", NS, spawner.pod_name)
    assert pod is not None and pod["status"]["phase"] == "Running"
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert pod["metadata"]["labels"]["component"] == "singleuser-server"
    assert await spawner.poll() is None
    await asyncio.wait_for(spawner.stop(), 30)
    assert spawner_sim.store.get("pods", NS, spawner.pod_name) is None
    assert await spawner.poll() == 1


@pytest.mark.asyncio
async def test_kubespawner_reports_an_oom_killed_server_with_its_exit_code(
    spawner_sim: KubeSim,
) -> None:
    spawner = make_spawner()
    spawner.extra_pod_config = {"restartPolicy": "Never"}
    await asyncio.wait_for(spawner.start(), 30)
    spawner_sim.kubelet.inject(NS, spawner.pod_name, "OOMKilled")

    async def exit_code() -> object:
        return await spawner.poll()

    assert await eventually(exit_code, what="poll() to report the OOM kill") == 137
    async with ApiClient(spawner_sim.client_configuration()) as api:
        gone = await eventually(lambda: _no_pods(CoreV1Api(api)), what="stopped pod deleted")
    assert gone


async def _no_pods(core: CoreV1Api) -> bool:
    return not (await core.list_namespaced_pod(NS)).items
