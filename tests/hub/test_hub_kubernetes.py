"""End to end: a real JupyterHub spawning user servers as pods in kubesim.

kubesim's kubelet runs each pod's command as a local process on the pod's own 127.x address,
so the proxied request reaches a real jupyterhub-singleuser inside a "pod".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from kubesim import KubeSim, KubeSimConfig
from tests.hub.conftest import (
    VENV_BIN,
    HubFactory,
    HubProcess,
    free_port,
    progress_events,
    spawn,
    stop,
    wait_for_server,
)

pytestmark = [pytest.mark.hub, pytest.mark.asyncio]

NAMESPACE = "raworc-sessions"

KUBERNETES_CONFIG = """
c.RaworcSpawner.kubernetes_enabled = True
c.RaworcSpawner.port = {port}
# kubesim runs the "image" on this machine: the single-user server is the venv's, and HOME
# (/workspace in a real pod) is a directory of the test.
c.RaworcSpawner.cmd = [{singleuser!r}]
c.KubernetesSettings.home_dir = {home!r}
c.KubernetesBackend.api_url = {api_url!r}
c.KubernetesBackend.api_token = {api_token!r}
c.KubernetesSettings.namespace = {namespace!r}
c.RaworcSpawner.cpu_guarantee = 0.25
c.RaworcSpawner.mem_guarantee = "256M"
c.KubernetesSettings.profiles = {{
    "small": {{"description": "Half a core", "cpu_limit": "500m"}},
    "large": {{"description": "Two cores", "cpu_limit": "2", "memory_limit": "2Gi"}},
}}
"""


def kubernetes_config(sim: KubeSim, tmp_path: Path, *, port: int) -> str:
    """Hub configuration for RaworcSpawner on the simulated cluster."""
    return KUBERNETES_CONFIG.format(
        port=port,
        api_url=sim.url,
        api_token=sim.token,
        namespace=NAMESPACE,
        singleuser=str(VENV_BIN / "jupyterhub-singleuser"),
        home=str(tmp_path / "home"),
    )


@pytest_asyncio.fixture
async def kubesim(hub_factory: HubFactory) -> AsyncIterator[KubeSim]:
    """A simulated cluster whose kubelet runs containers as local processes."""
    config = KubeSimConfig(namespaces=["default", "kube-system", NAMESPACE], run_processes=True)
    async with KubeSim(config) as sim:
        try:
            yield sim
        finally:
            # Hubs keep watches open: stop them (and any server left) before the cluster, and
            # let kubesim see its processes exit while its event loop still runs.
            leftovers = [pid for hub in hub_factory.hubs for pid in hub.server_pids()]
            await hub_factory.kill_all()
            for _ in range(50):  # until reaped (by kubesim), not merely dead
                if not any(Path(f"/proc/{pid}").exists() for pid in leftovers):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.1)


class Cluster:
    """Reads pods and PVCs from kubesim, as kubectl would."""

    def __init__(self, sim: KubeSim) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"{sim.url}/api/v1/namespaces/{NAMESPACE}",
            headers={"Authorization": f"Bearer {sim.token}"},
        )

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        response = await self.client.get(f"/{kind}/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())


async def test_a_user_server_runs_as_a_pod_whose_claim_outlives_stops_until_the_user_goes(
    hub_factory: HubFactory, kubesim: KubeSim, tmp_path: Path
) -> None:
    port = free_port()
    hub = hub_factory(extra_config=kubernetes_config(kubesim, tmp_path, port=port))
    await hub.start()
    cluster = Cluster(kubesim)
    async with hub.client() as api, cluster.client:
        await api.post("/hub/api/users/kim")
        response = await api.post("/hub/api/users/kim/server", json={"profile": "large"})
        assert response.status_code == 202, response.text
        info = await wait_for_server(api, "kim")
        session_id = info["state"]["session_id"]
        assert info["state"]["pod_name"] == f"session-{session_id}"
        pvc_name = info["state"]["pvc_name"]

        pod = await cluster.get("pods", f"session-{session_id}")
        assert pod is not None and pod["status"]["phase"] == "Running"
        pod_ip = pod["status"]["podIP"]
        [container] = pod["spec"]["containers"]
        assert container["ports"] == [
            {"name": "notebook-port", "containerPort": port, "protocol": "TCP"}
        ]
        assert container["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}  # profile
        assert container["resources"]["requests"] == {"cpu": "250m", "memory": "268435456"}
        assert await _route_target(hub, "/user/kim") == f"http://{pod_ip}:{port}"
        assert (await api.get("/user/kim/api/status")).status_code == 200

        await stop(api, "kim")
        assert await cluster.get("pods", f"session-{session_id}") is None
        assert await cluster.get("persistentvolumeclaims", pvc_name) is not None

        info = await spawn(api, "kim")
        assert info["state"]["session_id"] == session_id
        assert (await api.get("/user/kim/api/status")).status_code == 200

        await stop(api, "kim")
        assert (await api.delete("/hub/api/users/kim")).status_code == 204
        assert await cluster.get("persistentvolumeclaims", pvc_name) is None
        assert await cluster.get("pods", f"session-{session_id}") is None


async def test_an_unknown_profile_is_refused_with_the_available_ones(
    hub_factory: HubFactory, kubesim: KubeSim, tmp_path: Path
) -> None:
    hub = hub_factory(extra_config=kubernetes_config(kubesim, tmp_path, port=free_port()))
    await hub.start()
    async with hub.client() as api:
        await api.post("/hub/api/users/lee")
        response = await api.post("/hub/api/users/lee/server", json={"profile": "huge"})
        assert response.status_code == 202, response.text  # the hub answers before starting
        events = [event async for event in progress_events(api, "lee")]
        assert events[-1]["failed"] is True
        message = events[-1]["message"]
        assert "unknown profile 'huge'" in message, message
        assert "available: large, small" in message, message
        assert (await api.get("/hub/api/users/lee")).json()["servers"] == {}


async def _route_target(hub: HubProcess, path: str) -> str:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{hub.proxy_api_port}",
        headers={"Authorization": f"token {hub.proxy_token}"},
    ) as proxy:
        routes = (await proxy.get("/api/routes")).json()
    return str(routes[path]["target"])
