"""Wake latency: a sleeping session woken by a request through ``/sessions/{id}/proxy/{port}/``.

kubesim (its own process), the raworc server on the Kubernetes backend (its own process) and tiny
HTTP servers on the pod IPs (a third process). The harness creates sessions over the REST API,
waits until they are ready, pauses them (pod gone, workspace kept), then sends one proxied
request to each sleeping session in turn and times the answer. Target: p99 at most the kubelet
start delay + 150 ms.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from benchmarks.cluster import KubeSimServer
from benchmarks.measure import summary_ms
from benchmarks.options import Options
from benchmarks.rest import server

POD_PORT = 8890


@contextmanager
def pod_http(count: int) -> Iterator[None]:
    cmd = [sys.executable, "-m", "benchmarks.pod_http", "--count", str(count)]
    proc = subprocess.Popen([*cmd, "--port", str(POD_PORT)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the pod HTTP servers did not start")
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


async def _until(client: httpx.AsyncClient, sid: str, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.get(f"/api/v0/sessions/{sid}")).json()["state"] == state:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"session {sid} did not reach {state} within {timeout} s")


async def _prepare(client: httpx.AsyncClient, count: int) -> list[str]:
    """``count`` sessions created, ready, then paused."""
    ids = []
    for i in range(count):
        body = {"name": f"wake-{i}", "waiting_timeout_seconds": 0}
        response = await client.post("/api/v0/sessions", json=body)
        response.raise_for_status()
        ids.append(response.json()["id"])
    await asyncio.gather(*(_until(client, sid, "ready", 60) for sid in ids))
    for sid in ids:
        (
            await client.put(f"/api/v0/sessions/{sid}/state", json={"state": "idle"})
        ).raise_for_status()
    await asyncio.gather(*(_until(client, sid, "idle", 60) for sid in ids))
    return ids


async def _wake_all(client: httpx.AsyncClient, ids: list[str]) -> tuple[list[float], list[str]]:
    latencies, errors = [], []
    for sid in ids:
        began = time.monotonic()
        response = await client.get(f"/sessions/{sid}/proxy/{POD_PORT}/", timeout=60)
        if response.status_code == 200 and response.text == "ok":
            latencies.append(time.monotonic() - began)
        else:
            errors.append(f"{response.status_code}: {response.text[:200]}")
    return latencies, errors


async def run_wake(options: Options) -> dict[str, Any]:
    """p50/p99 wake latency of ``options.wake_sessions`` sleeping sessions, one at a time."""
    count = options.wake_sessions
    with (
        KubeSimServer(
            kubelet_start_delay=options.kubelet_delay, latency=options.latency, nodes=2
        ) as sim,
        pod_http(2 * count + 8),
        server("raworc-k8s", 0, "--api-url", sim.url, "--api-token", sim.token) as srv,
    ):
        headers = {"Authorization": f"Bearer {srv['token']}"}
        async with httpx.AsyncClient(base_url=srv["url"], headers=headers, timeout=30) as client:
            ids = await _prepare(client, count)
            latencies, errors = await _wake_all(client, ids)
    figures = summary_ms(latencies)
    target_ms = options.kubelet_delay * 1000 + 150
    return {
        "sessions": count,
        "woken": len(latencies),
        "errors": errors[:5],
        "latency": figures,
        "kubelet_start_delay_ms": options.kubelet_delay * 1000,
        "target_p99_ms": target_ms,
        "p99_over_kubelet_ms": round(figures["p99_ms"] - options.kubelet_delay * 1000, 1),
    }
