"""The scheduler: binds pending pods to a node that fits, or reports why none does."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum

from ..objects import Obj, timestamp
from ..rules_pod import pod_requests
from ..store import Change
from .base import Context
from .nodes import TERMINAL, NodeInventory

SELECTED_NODE = "volume.kubernetes.io/selected-node"
VOLUME_RESOURCES = (
    "persistentvolumeclaims",
    "persistentvolumes",
    "storageclasses.storage.k8s.io",
)
PodKey = tuple[str, str]


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


def _prefilter_message(total: int, why: str) -> str:
    """A failure every node shares (a PreFilter rejection): preemption cannot help."""
    return (
        f"0/{total} nodes are available: {why}. preemption: 0/{total} nodes are available: "
        f"{total} Preemption is not helpful for scheduling."
    )


class Blocked(StrEnum):
    """Why a pod waits, which decides what wakes it (as the scheduler's queueing hints do)."""

    RESOURCES = "resources"
    """No node fits: retried when pods or nodes change, and every ``scheduler_retry``."""
    VOLUMES = "volumes"
    """A claim is missing, being deleted or an unbound ``Immediate`` one: retried when claims,
    volumes or storage classes change."""
    BINDING = "binding"
    """Assumed on a node while its ``WaitForFirstConsumer`` claims are provisioned there (the
    VolumeBinding PreBind wait): bound to that node once they are, without an event before."""


class Scheduler:
    """Schedules pods whose ``spec.schedulerName`` is ``default-scheduler``.

    Volumes follow the VolumeBinding plugin (``pkg/scheduler/framework/plugins/volumebinding``):
    a missing claim or an unbound claim of an ``Immediate`` class fails the pod before any node
    is looked at (``FailedScheduling``: "pod has unbound immediate PersistentVolumeClaims",
    recorded only when the pod is tried before its claim binds). Unbound claims of a
    ``WaitForFirstConsumer`` class get the chosen node in ``volume.kubernetes.io/selected-node``
    for the provisioner, and the pod is bound to that node once they are Bound: no warning.
    """

    def __init__(self, ctx: Context, nodes: NodeInventory) -> None:
        self.ctx = ctx
        self.nodes = nodes
        self.waiting: dict[PodKey, Blocked] = {}
        self._assumed: dict[PodKey, str] = {}
        self._queued: set[PodKey] = set()
        self._last_message: dict[str, str] = {}

    def start(self) -> None:
        self.ctx.store.subscribe(self.on_change)
        for pod in self.ctx.store.list("pods"):
            self._consider(pod)
        self._tick()

    def on_change(self, change: Change) -> None:
        if change.resource == "pods":
            self._on_pod(change)
        elif change.resource in VOLUME_RESOURCES:
            self._retry(Blocked.VOLUMES, Blocked.BINDING)
        elif change.resource == "nodes":
            self._retry(Blocked.RESOURCES)

    def _on_pod(self, change: Change) -> None:
        key = _key(change.obj)
        if change.type == "DELETED":
            self._forget(key)
            self._retry(Blocked.RESOURCES)
        elif key in self.waiting:
            # The scheduler requeues an unschedulable pod for cluster events, not for updates
            # of its own status (the conditions and events it writes itself).
            return
        else:
            self._consider(change.obj)
            if (change.obj.get("status") or {}).get("phase") in TERMINAL:
                self._retry(Blocked.RESOURCES)  # a finished pod frees its node's resources

    def _tick(self) -> None:
        self._retry(Blocked.RESOURCES)
        self.ctx.timers.later(self.ctx.config.timings.scheduler_retry, self._tick)

    def _consider(self, pod: Obj) -> None:
        spec, m = pod.get("spec") or {}, pod["metadata"]
        if spec.get("nodeName") or m.get("deletionTimestamp"):
            return
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        self._queue(_key(pod))

    def _retry(self, *why: Blocked) -> None:
        for key, blocked in list(self.waiting.items()):
            if blocked in why:
                self._queue(key)

    def _queue(self, key: PodKey) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self.ctx.timers.later(self.ctx.config.timings.schedule_delay, self._attempt, key)

    def _forget(self, key: PodKey) -> None:
        self.waiting.pop(key, None)
        self._assumed.pop(key, None)

    def _attempt(self, key: PodKey) -> None:
        self._queued.discard(key)
        pod = self.ctx.store.get("pods", *key)
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            self._forget(key)
            return
        assumed = self._assumed.get(key)
        if assumed is not None and self._finish_binding(pod, key, assumed):
            return
        why = self._prefilter_volumes(pod)
        if why:
            self._unschedulable(pod, why, Blocked.VOLUMES)
            return
        node, why = self._choose(pod)
        if node is None:
            self._unschedulable(pod, why, Blocked.RESOURCES)
            return
        delayed = self._unbound_delayed_claims(pod)
        if delayed:
            for pvc in delayed:
                self._select_node(pvc, node)
            self._assumed[key] = node
            self.waiting[key] = Blocked.BINDING
            return
        self._forget(key)
        self._bind(pod, node)

    def _finish_binding(self, pod: Obj, key: PodKey, node: str) -> bool:
        """Bind an assumed pod once its claims are Bound; False if it must be tried afresh."""
        state = self._claim_state(pod)
        if state == "bound":
            self._forget(key)
            self._bind(pod, node)
            return True
        if state == "provisioning":
            return True  # still waiting, silently, as PreBind does
        self._assumed.pop(key, None)  # a claim went away: schedule the pod again
        return False

    # -- volumes -------------------------------------------------------------------------------
    def _pvcs(self, pod: Obj) -> list[tuple[str, Obj | None]]:
        """Each claim the pod mounts, by name, with the stored claim (None when missing)."""
        ns = pod["metadata"]["namespace"]
        names = [
            (vol.get("persistentVolumeClaim") or {}).get("claimName")
            for vol in pod["spec"].get("volumes") or []
        ]
        return [
            (name, self.ctx.store.get("persistentvolumeclaims", ns, name)) for name in names if name
        ]

    def _delays_binding(self, pvc: Obj) -> bool:
        class_name = (pvc.get("spec") or {}).get("storageClassName") or ""
        sc = self.ctx.store.get("storageclasses.storage.k8s.io", "", class_name)
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    def _prefilter_volumes(self, pod: Obj) -> str:
        """The VolumeBinding PreFilter's rejection, or "" when the pod may go on to nodes."""
        total = len(self.nodes.names())
        unbound_immediate = False
        for name, pvc in self._pvcs(pod):
            if pvc is None:
                return _prefilter_message(total, f'persistentvolumeclaim "{name}" not found')
            if pvc["metadata"].get("deletionTimestamp"):
                return _prefilter_message(total, f'persistentvolumeclaim "{name}" is being deleted')
            if not _is_bound(pvc) and not self._delays_binding(pvc):
                unbound_immediate = True
        if unbound_immediate:
            return _prefilter_message(total, "pod has unbound immediate PersistentVolumeClaims")
        return ""

    def _unbound_delayed_claims(self, pod: Obj) -> list[Obj]:
        """The pod's unbound ``WaitForFirstConsumer`` claims."""
        return [
            pvc
            for _, pvc in self._pvcs(pod)
            if pvc is not None and not _is_bound(pvc) and self._delays_binding(pvc)
        ]

    def _claim_state(self, pod: Obj) -> str:
        """``bound`` (all claims), ``provisioning`` (some still pending) or ``gone``."""
        pvcs = self._pvcs(pod)
        if any(pvc is None or pvc["metadata"].get("deletionTimestamp") for _, pvc in pvcs):
            return "gone"
        return "bound" if all(_is_bound(pvc) for _, pvc in pvcs if pvc) else "provisioning"

    def _selected_node(self, pod: Obj) -> str | None:
        """The node an unbound claim of the pod was already provisioned for, if any."""
        for pvc in self._unbound_delayed_claims(pod):
            node = (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if node:
                return str(node)
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

    # -- nodes ---------------------------------------------------------------------------------
    def _choose(self, pod: Obj) -> tuple[str | None, str]:
        """The least loaded node that fits, or None and the FailedScheduling message."""
        nodes = self.nodes.schedulable()
        selected = self._selected_node(pod)
        if selected is not None:
            nodes = [n for n in nodes if n == selected]
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
        if fits:
            return min(fits)[1], ""
        unschedulable = total - len(self.nodes.schedulable())
        if unschedulable:
            reasons["node(s) were unschedulable"] += unschedulable
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        return None, (
            f"0/{total} nodes are available: {detail}. preemption: 0/{total} nodes are "
            f"available: {total} No preemption victims found for incoming pod."
        )

    def _unschedulable(self, pod: Obj, message: str, blocked: Blocked) -> None:
        m = pod["metadata"]
        self.waiting[_key(pod)] = blocked
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


def _is_bound(pvc: Obj) -> bool:
    return (pvc.get("status") or {}).get("phase") == "Bound"


def _key(pod: Obj) -> PodKey:
    return pod["metadata"]["namespace"], pod["metadata"]["name"]
