"""The harness's view of the cluster: kubesim in its own process, pod listeners, a pod watch.

- :class:`KubeSimServer` runs ``python -m benchmarks.kubesim_server`` (kubesim with the
  benchmark's kubelet delay and latency) and stops it, also on failure.
- :class:`PodListeners` binds a listening socket at each pod IP kubesim will hand out
  (``127.10.x.y:8888``, allocated in order from a fresh kubesim), so a spawner that checks that
  the server accepts connections finds one. Connections are left to the kernel's accept queue.
- :class:`PodWatch` watches pods from the harness and records, with the system-wide monotonic
  clock, when each pod was first seen Running and Ready: kubesim's own timestamps have
  whole-second precision, too coarse for "Running event to spawn returning".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Any

import aiohttp

from benchmarks.sides import NAMESPACE, PORT
from kubesim.process import KubeSimProcess


class KubeSimServer(KubeSimProcess):
    """kubesim in a child process, configured for the benchmark (stopped also on failure)."""

    def __init__(self, *, kubelet_start_delay: float, latency: float, nodes: int) -> None:
        args = [
            "--kubelet-start-delay", str(kubelet_start_delay), "--latency", str(latency),
            "--nodes", str(nodes), "--namespace", NAMESPACE,
        ]  # fmt: skip
        super().__init__(args=args, module="benchmarks.kubesim_server")


def pod_ip(n: int) -> str:
    """The ``n``-th pod IP a fresh kubesim hands out (its ``IpPool`` order)."""
    return f"127.10.{n // 250}.{n % 250 + 1}"


class PodListeners:
    """Listening sockets on the first ``count`` pod IPs, port :data:`PORT`."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> PodListeners:
        try:
            for n in range(self.count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self._sockets.append(sock)
                sock.bind((pod_ip(n), PORT))
                sock.listen(128)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def _is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = status.get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class PodWatch:
    """When each pod was first seen Running and Ready (``time.monotonic()``)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ready_at: dict[str, float] = {}
        self._opened = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pod-watch")
        await asyncio.wait_for(self._opened.wait(), 30)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        params = {"watch": "true", "timeoutSeconds": "7200"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with (
            aiohttp.ClientSession(self.url, headers=self.headers, timeout=timeout) as session,
            session.get(path, params=params) as response,
        ):
            response.raise_for_status()
            self._opened.set()
            async for line in response.content:
                self._observe(json.loads(line), time.monotonic())

    def _observe(self, event: dict[str, Any], now: float) -> None:
        pod = event.get("object") or {}
        name = (pod.get("metadata") or {}).get("name")
        if name and name not in self.ready_at and _is_ready(pod):
            self.ready_at[name] = now
