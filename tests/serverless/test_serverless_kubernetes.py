"""Serverless lifecycle on the Kubernetes backend, against kubesim running real pod processes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from kubesim import KubeSim, KubeSimConfig
from tests.api.conftest import Server, make_config, running_server
from tests.serverless.conftest import UPSTREAM, free_port
from tests.serverless.test_serverless_local import create, events, proxy, wait_state

NS = "raworc-sessions"


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    """kubesim whose kubelet runs each container's command as a process on its pod IP."""
    return KubeSimConfig(namespaces=["default", "kube-system", NS], run_processes=True, seed=7)


@pytest_asyncio.fixture
async def k8s_server(
    kubesim: KubeSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leaked_tasks: None
) -> AsyncIterator[tuple[Server, int]]:
    """A server on the Kubernetes backend whose session pods serve ``upstream.py``."""
    monkeypatch.chdir(tmp_path)
    port = free_port()
    config = make_config(tmp_path)
    config.RaworcApp.kubernetes_enabled = True
    config.KubernetesBackend.api_url = kubesim.url
    config.KubernetesBackend.api_token = kubesim.token
    config.KubernetesBackend.delete_grace_seconds = 1
    config.KubernetesSettings.command = [sys.executable, str(UPSTREAM), str(port)]
    config.KubernetesSettings.read_only_root_filesystem = False
    config.Culler.interval_seconds = 0.0
    config.SessionManager.activity_flush_seconds = 0.1
    async with running_server(config, tmp_path / "data") as server:
        yield server, port


async def get_when_listening(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """The pod is Ready when its process starts; give the web app a moment to listen."""
    async with asyncio.timeout(10):
        while (response := await client.get(path)).status_code == 502:
            await asyncio.sleep(0.1)
    return response


@pytest.mark.asyncio
async def test_a_proxied_request_reaches_the_pod_and_wakes_it_after_a_cull(
    kubesim: KubeSim, k8s_server: tuple[Server, int]
) -> None:
    server, port = k8s_server
    client = server.client()
    session = await create(client, waiting_timeout_seconds=1)
    await wait_state(client, session["id"], "ready")
    first = await get_when_listening(client, proxy(session["id"], port, "hello"))
    assert first.status_code == 200 and first.text.startswith(f"hello from {session['id']}")
    await asyncio.sleep(1.3)
    assert (await server.app.core.culler.run_once())["culled"] == [session["id"]]
    assert kubesim.store.get("pods", NS, f"session-{session['id']}") is None
    assert kubesim.store.get("persistentvolumeclaims", NS, f"session-pvc-{session['id']}")
    responses = await asyncio.gather(
        *(get_when_listening(client, proxy(session["id"], port, "hello")) for _ in range(20))
    )
    assert [r.status_code for r in responses] == [200] * 20
    kinds = [e["kind"] for e in await events(client, session["id"])]
    assert kinds.count("resuming") == 1 and "culled" in kinds


@pytest.mark.asyncio
async def test_remix_clones_the_parents_claim_and_fails_clearly_where_cloning_is_unsupported(
    kubesim: KubeSim, k8s_server: tuple[Server, int]
) -> None:
    server, _ = k8s_server
    client = server.client()
    parent = await create(client)
    await wait_state(client, parent["id"], "ready")
    child = (await client.post(f"/api/v0/sessions/{parent['id']}/remix", json={})).json()
    await wait_state(client, child["id"], "ready")
    claim = kubesim.store.get("persistentvolumeclaims", NS, f"session-pvc-{child['id']}")
    assert claim["spec"]["dataSource"] == {
        "kind": "PersistentVolumeClaim",
        "name": f"session-pvc-{parent['id']}",
    }
    volume = kubesim.store.get("persistentvolumes", "", claim["spec"]["volumeName"])
    assert (
        volume["metadata"]["annotations"]["kubesim.io/cloned-from"]
        == (parent["persistent_volume_id"])
    )
    server.app.core.backend.settings.storage_class = "no-cloning"
    # A parent on a class that cannot clone: its remix fails with the provisioner's reason.
    plain = await create(client, name="plain")
    await wait_state(client, plain["id"], "ready")
    remix = (await client.post(f"/api/v0/sessions/{plain['id']}/remix", json={})).json()
    failed = await wait_state(client, remix["id"], "error")
    assert failed["termination_reason"] == "ProvisioningFailed"
    assert "cloning is not supported" in failed["error"]
