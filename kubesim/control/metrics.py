"""Resource usage for metrics.k8s.io: a steady, plausible figure per running container."""

from __future__ import annotations

import zlib

from ..objects import Obj, timestamp
from ..quantity import QuantityError, parse_quantity
from ..store import Store

MiB = 1024 * 1024


def _cpu_text(cores: float) -> str:
    return f"{max(int(cores * 1e9), 0)}n"


def _memory_text(amount: float) -> str:
    return f"{max(int(amount) // 1024, 0)}Ki"


class Usage:
    """Usage figures: set explicitly per container, or derived from requests otherwise.

    The derived figure is 10-40% of the container's requests (a stable hash of its name picks
    where), or 1-5m CPU and 10-40Mi memory when it requests nothing.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._set: dict[tuple[str, str, str], tuple[float, float]] = {}

    def set_usage(
        self, namespace: str, pod: str, *, cpu: str, memory: str, container: str | None = None
    ) -> None:
        """Fix what ``kubectl top`` reports for a container (the first when None)."""
        obj = self.store.get("pods", namespace, pod)
        name = container or ((obj or {}).get("spec", {}).get("containers") or [{}])[0].get(
            "name", ""
        )
        self._set[(namespace, pod, name)] = (
            float(parse_quantity(cpu)),
            float(parse_quantity(memory)),
        )

    def container(self, pod: Obj, container: Obj) -> tuple[float, float]:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container["name"])
        if key in self._set:
            return self._set[key]
        share = 0.1 + (zlib.crc32("/".join(key).encode()) % 31) / 100
        requests = (container.get("resources") or {}).get("requests") or {}
        try:
            cpu = (
                float(parse_quantity(requests["cpu"])) * share
                if "cpu" in requests
                else 0.001 + share / 100
            )
            memory = (
                float(parse_quantity(requests["memory"])) * share
                if "memory" in requests
                else share * 100 * MiB
            )
        except QuantityError:
            cpu, memory = 0.001, 10 * MiB
        return cpu, memory

    def pod_metrics(self, pod: Obj) -> Obj | None:
        """PodMetrics for a running pod; None for pods with no running containers."""
        status = pod.get("status") or {}
        running = {
            s["name"]
            for s in status.get("containerStatuses") or []
            if "running" in (s.get("state") or {})
        }
        if status.get("phase") != "Running" or not running:
            return None
        containers = []
        for c in pod["spec"]["containers"]:
            if c["name"] in running:
                cpu, memory = self.container(pod, c)
                containers.append(
                    {
                        "name": c["name"],
                        "usage": {"cpu": _cpu_text(cpu), "memory": _memory_text(memory)},
                    }
                )
        m = pod["metadata"]
        return {
            "kind": "PodMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {
                "name": m["name"],
                "namespace": m["namespace"],
                "creationTimestamp": timestamp(),
                "labels": m.get("labels") or {},
            },
            "timestamp": timestamp(),
            "window": "10.0s",
            "containers": containers,
        }

    def node_metrics(self, node: Obj) -> Obj:
        """NodeMetrics: the sum of its running pods plus a small system overhead."""
        name = node["metadata"]["name"]
        cpu, memory = 0.05, 512.0 * MiB
        for pod in self.store.list("pods"):
            if (pod.get("spec") or {}).get("nodeName") == name and (
                metrics := self.pod_metrics(pod)
            ):
                for c in metrics["containers"]:
                    cpu += float(parse_quantity(c["usage"]["cpu"]))
                    memory += float(parse_quantity(c["usage"]["memory"]))
        return {
            "kind": "NodeMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {
                "name": name,
                "creationTimestamp": timestamp(),
                "labels": node["metadata"].get("labels") or {},
            },
            "timestamp": timestamp(),
            "window": "10.0s",
            "usage": {"cpu": _cpu_text(cpu), "memory": _memory_text(memory)},
        }
