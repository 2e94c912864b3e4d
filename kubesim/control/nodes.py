"""Simulated nodes: their objects, what they hold and what is left."""

from __future__ import annotations

from ..config import NodeSpec
from ..objects import Obj, timestamp
from ..quantity import parse_quantity
from ..rules_pod import pod_requests
from ..store import Change
from .base import Context

TERMINAL = ("Succeeded", "Failed")


def node_object(spec: NodeSpec, index: int) -> Obj:
    """The Node object for ``spec``: Ready, with capacity, an InternalIP and version info."""
    capacity = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.pods),
        "ephemeral-storage": spec.ephemeral_storage,
    }
    stamp = timestamp()
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        **spec.labels,
    }
    conditions = [
        {
            "type": t,
            "status": "False",
            "reason": r,
            "message": msg,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for t, r, msg in (
            (
                "MemoryPressure",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": spec.name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.1.0",
                "osImage": "kubesim",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kubeProxyVersion": "v1.32.0",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    }


def node_ip(index: int) -> str:
    return f"127.0.1.{index + 1}"


class NodeInventory:
    """Tracks the requests of the pods bound to each node, updated from the store."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._pods: dict[str, dict[tuple[str, str], dict[str, float]]] = {}

    def start(self) -> None:
        for index, spec in enumerate(self.ctx.config.nodes):
            if self.ctx.store.get("nodes", "", spec.name) is None:
                self.ctx.registry.create_internal("nodes", node_object(spec, index))
        self.ctx.store.subscribe(self.on_change)
        for pod in self.ctx.store.list("pods"):
            self._track(pod)

    def names(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.ctx.store.list("nodes")]

    def schedulable(self) -> list[str]:
        return [
            n["metadata"]["name"]
            for n in self.ctx.store.list("nodes")
            if not (n.get("spec") or {}).get("unschedulable")
        ]

    def ip(self, node: str) -> str:
        obj = self.ctx.store.get("nodes", "", node)
        for address in ((obj or {}).get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return "127.0.0.1"

    def on_change(self, change: Change) -> None:
        if change.resource != "pods":
            return
        old_node = ((change.old or {}).get("spec") or {}).get("nodeName")
        if old_node:
            self._pods.get(old_node, {}).pop(_key(change.obj), None)
        if change.type != "DELETED":
            self._track(change.obj)

    def _track(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in TERMINAL:
            self._pods.setdefault(node, {})[_key(pod)] = pod_requests(pod)

    def used(self, node: str) -> dict[str, float]:
        held = self._pods.get(node, {}).values()
        return {
            "cpu": sum(r["cpu"] for r in held),
            "memory": sum(r["memory"] for r in held),
            "pods": float(len(held)),
        }

    def load(self, node: str) -> float:
        used, alloc = self.used(node), self.allocatable(node)
        return max(used["cpu"] / (alloc["cpu"] or 1), used["memory"] / (alloc["memory"] or 1))

    def allocatable(self, node: str) -> dict[str, float]:
        obj = self.ctx.store.get("nodes", "", node) or {}
        alloc = (obj.get("status") or {}).get("allocatable") or {}
        return {k: float(parse_quantity(alloc.get(k, "0"))) for k in ("cpu", "memory", "pods")}

    def misfits(self, node: str, pod: Obj, wanted: dict[str, float]) -> list[str]:
        """Why ``pod`` does not fit on ``node`` (the scheduler's reasons); empty if it fits."""
        obj = self.ctx.store.get("nodes", "", node) or {}
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        labels = obj.get("metadata", {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            return ["node(s) didn't match Pod's node affinity/selector"]
        used, alloc = self.used(node), self.allocatable(node)
        problems = []
        if used["pods"] + 1 > alloc["pods"]:
            problems.append("Too many pods")
        for res in ("cpu", "memory"):
            if used[res] + wanted[res] > alloc[res]:
                problems.append(f"Insufficient {res}")
        return problems


def _key(pod: Obj) -> tuple[str, str]:
    return pod["metadata"]["namespace"], pod["metadata"]["name"]
