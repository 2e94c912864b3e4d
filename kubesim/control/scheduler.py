"""The scheduler: binds pending pods to a node that fits, or reports why none does."""

from __future__ import annotations

from collections import Counter

from ..objects import Obj, timestamp
from ..rules_pod import pod_requests
from ..store import Change
from .base import Context
from .nodes import NodeInventory

SELECTED_NODE = "volume.kubernetes.io/selected-node"


def set_condition(pod: Obj, ctype: str, status: str, reason: str = "", message: str = "") -> None:
    """Set a pod condition, keeping lastTransitionTime when the status does not change."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    current = next((c for c in conditions if c["type"] == ctype), None)
    entry: Obj = {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": timestamp(),
    }
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    if current is not None:
        if current["status"] == status:
            entry["lastTransitionTime"] = current.get("lastTransitionTime")
        conditions[conditions.index(current)] = entry
    else:
        conditions.append(entry)


def _unbound_message(total: int, why: str) -> str:
    return (
        f"0/{total} nodes are available: {why}. preemption: 0/{total} nodes are available: "
        f"{total} Preemption is not helpful for scheduling."
    )


class Scheduler:
    """Schedules pods whose ``spec.schedulerName`` is ``default-scheduler``."""

    def __init__(self, ctx: Context, nodes: NodeInventory) -> None:
        self.ctx = ctx
        self.nodes = nodes
        self.waiting: set[tuple[str, str]] = set()
        self._queued: set[tuple[str, str]] = set()
        self._last_message: dict[str, str] = {}

    def start(self) -> None:
        self.ctx.store.subscribe(self.on_change)
        for pod in self.ctx.store.list("pods"):
            self._consider(pod)
        self._tick()

    def on_change(self, change: Change) -> None:
        if change.resource == "pods":
            if change.type == "DELETED":
                self.waiting.discard(_key(change.obj))
                self._retry_all()
            else:
                self._consider(change.obj)
        elif change.resource in ("persistentvolumeclaims", "nodes"):
            self._retry_all()

    def _tick(self) -> None:
        self._retry_all()
        self.ctx.timers.later(self.ctx.config.timings.scheduler_retry, self._tick)

    def _consider(self, pod: Obj) -> None:
        spec, m = pod.get("spec") or {}, pod["metadata"]
        if spec.get("nodeName") or m.get("deletionTimestamp"):
            return
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        self._queue(_key(pod))

    def _retry_all(self) -> None:
        for key in list(self.waiting):
            self._queue(key)

    def _queue(self, key: tuple[str, str]) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self.ctx.timers.later(self.ctx.config.timings.schedule_delay, self._attempt, key)

    def _attempt(self, key: tuple[str, str]) -> None:
        self._queued.discard(key)
        pod = self.ctx.store.get("pods", *key)
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            self.waiting.discard(key)
            return
        node, why = self._choose(pod)
        if node is None:
            self.waiting.add(key)
            if why:
                self._unschedulable(pod, why)
            return
        self.waiting.discard(key)
        self._bind(pod, node)

    def _volumes_block(self, pod: Obj, total: int, node: str) -> str | None:
        """A FailedScheduling message for claims that block the pod; "" to wait silently."""
        ns = pod["metadata"]["namespace"]
        for vol in pod["spec"].get("volumes") or []:
            claim_name = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim_name:
                continue
            pvc = self.ctx.store.get("persistentvolumeclaims", ns, claim_name)
            if pvc is None:
                return _unbound_message(total, f'persistentvolumeclaim "{claim_name}" not found')
            if pvc["metadata"].get("deletionTimestamp"):
                return _unbound_message(
                    total, f'persistentvolumeclaim "{claim_name}" is being deleted'
                )
            if pvc.get("status", {}).get("phase") == "Bound":
                continue
            sc = self.ctx.store.get(
                "storageclasses.storage.k8s.io", "", pvc["spec"].get("storageClassName") or ""
            )
            if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                self._select_node(pvc, node)
                return ""
            return _unbound_message(total, "pod has unbound immediate PersistentVolumeClaims")
        return None

    def _select_node(self, pvc: Obj, node: str) -> None:
        if (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE):
            return

        def annotate(obj: Obj) -> None:
            obj["metadata"].setdefault("annotations", {})[SELECTED_NODE] = node

        self.ctx.registry.mutate(
            "persistentvolumeclaims",
            pvc["metadata"]["namespace"],
            pvc["metadata"]["name"],
            annotate,
        )

    def _choose(self, pod: Obj) -> tuple[str | None, str]:
        nodes = self.nodes.schedulable()
        total = len(self.nodes.names())
        reasons: Counter[str] = Counter()
        fits: list[tuple[float, str]] = []
        wanted = pod_requests(pod)
        for node in nodes:
            problems = self.nodes.misfits(node, pod, wanted)
            for p in problems:
                reasons[p] += 1
            if not problems:
                fits.append((self.nodes.load(node), node))
        unschedulable = total - len(nodes)
        if unschedulable:
            reasons["node(s) were unschedulable"] += unschedulable
        if not fits:
            detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
            return None, (
                f"0/{total} nodes are available: {detail}. preemption: 0/{total} nodes are "
                f"available: {total} No preemption victims found for incoming pod."
            )
        node = min(fits)[1]
        block = self._volumes_block(pod, total, node)
        if block is not None:
            return None, block
        return node, ""

    def _unschedulable(self, pod: Obj, message: str) -> None:
        m = pod["metadata"]
        if self._last_message.get(m["uid"]) != message:
            self._last_message[m["uid"]] = message
            self.ctx.registry.mutate(
                "pods",
                m["namespace"],
                m["name"],
                lambda p: set_condition(p, "PodScheduled", "False", "Unschedulable", message),
            )
        self.ctx.recorder.record(
            pod, "Warning", "FailedScheduling", message, component="default-scheduler"
        )

    def _bind(self, pod: Obj, node: str) -> None:
        m = pod["metadata"]

        def bind(p: Obj) -> None:
            p["spec"]["nodeName"] = node
            set_condition(p, "PodScheduled", "True")

        bound = self.ctx.registry.mutate("pods", m["namespace"], m["name"], bind)
        self._last_message.pop(m["uid"], None)
        if bound is not None:
            self.ctx.recorder.record(
                bound,
                "Normal",
                "Scheduled",
                f"Successfully assigned {m['namespace']}/{m['name']} to {node}",
                component="default-scheduler",
            )


def _key(pod: Obj) -> tuple[str, str]:
    return pod["metadata"]["namespace"], pod["metadata"]["name"]
