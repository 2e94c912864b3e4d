"""Reading pods, PVCs and events: is it running, has it failed for good, what is it doing.

Pure functions over the API's dicts, so they are easy to test and cost no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raworc_spawner.backends.base import Placement
from raworc_spawner.backends.kubernetes.naming import session_id_of_name
from raworc_spawner.backends.status import (
    ClaimStatus,
    ComputeState,
    ContainerStatus,
    KubernetesEvent,
    PodCondition,
    PodStatus,
)

Obj = dict[str, Any]

#: Container waiting reasons that will not fix themselves without a change to the spec.
FATAL_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "CrashLoopBackOff",
        "RunContainerError",
    }
)
#: Event reasons that fail a session at once (about its PVC or pod).
FATAL_EVENT_REASONS = frozenset({"ProvisioningFailed", "FailedMount", "FailedAttachVolume"})


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a session's compute cannot become ready."""

    reason: str
    message: str


def is_terminating(obj: Obj | None) -> bool:
    """Whether the object has a ``deletionTimestamp`` (it is going away)."""
    return bool(obj and (obj.get("metadata") or {}).get("deletionTimestamp"))


def is_ready(pod: Obj | None) -> bool:
    """Running, Ready, and not terminating: the only state reported as running."""
    if pod is None or is_terminating(pod):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return condition(pod, "Ready") == "True"


def condition(obj: Obj, kind: str) -> str | None:
    """The status (``"True"``/``"False"``/``"Unknown"``) of a condition, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def compute_state(pod: Obj | None) -> ComputeState:
    """The backend-neutral state of a pod."""
    if pod is None:
        return ComputeState.ABSENT
    if is_terminating(pod):
        return ComputeState.STOPPING
    if is_ready(pod):
        return ComputeState.RUNNING
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Failed", "Succeeded") or pod_failure(pod) is not None:
        return ComputeState.FAILED
    return ComputeState.STARTING


def pod_failure(pod: Obj) -> Failure | None:
    """A fatal condition visible in the pod's status, if any."""
    status = pod.get("status") or {}
    for container in _container_statuses(status):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in FATAL_WAITING_REASONS:
            detail = waiting.get("message") or reason
            image = container.get("image") or ""
            return Failure(reason, f"container {container.get('name')} ({image}): {detail}")
        terminated = (container.get("state") or {}).get("terminated") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        for ended in (terminated, last):
            if ended.get("reason") == "OOMKilled":
                return Failure(
                    "OOMKilled",
                    f"container {container.get('name')} ran out of memory "
                    f"(exit code {ended.get('exitCode')}); raise its memory limit",
                )
    if status.get("phase") == "Failed":
        return Failure(
            status.get("reason") or "PodFailed", status.get("message") or "the pod failed"
        )
    return None


def unschedulable_message(pod: Obj) -> str | None:
    """The scheduler's message when the pod cannot be placed, else None."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return str(cond.get("message") or "no node can run the pod")
    return None


def event_failure(event: Obj) -> Failure | None:
    """A fatal condition reported by an event, if any."""
    reason = event.get("reason")
    if reason in FATAL_EVENT_REASONS and event.get("type") == "Warning":
        return Failure(str(reason), str(event.get("message") or reason))
    return None


def pvc_summary(pvc: Obj | None) -> ClaimStatus | None:
    """The workspace PVC as the status endpoint shows it."""
    if pvc is None:
        return None
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    meta = pvc.get("metadata") or {}
    modes = spec.get("accessModes")
    return ClaimStatus(
        name=meta.get("name"),
        uid=meta.get("uid"),
        phase=status.get("phase"),
        terminating=is_terminating(pvc),
        volume_name=spec.get("volumeName"),
        storage_class=spec.get("storageClassName"),
        requested=((spec.get("resources") or {}).get("requests") or {}).get("storage"),
        capacity=(status.get("capacity") or {}).get("storage"),
        access_modes=None if modes is None else tuple(modes),
    )


def pod_summary(pod: Obj | None) -> PodStatus | None:
    """The session pod as the status endpoint shows it."""
    if pod is None:
        return None
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    containers = spec.get("containers") or [{}]
    return PodStatus(
        name=meta.get("name"),
        uid=meta.get("uid"),
        phase=status.get("phase"),
        state=compute_state(pod),
        terminating=is_terminating(pod),
        node=spec.get("nodeName"),
        pod_ip=status.get("podIP"),
        host_ip=status.get("hostIP"),
        started_at=status.get("startTime"),
        image=containers[0].get("image"),
        resources=containers[0].get("resources") or {},
        conditions=tuple(
            PodCondition(c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in status.get("conditions") or []
        ),
        containers=tuple(_container_summary(c) for c in _container_statuses(status)),
    )


def event_summary(event: Obj) -> KubernetesEvent:
    """A Kubernetes event as the status endpoint and progress stream show it."""
    involved = event.get("involvedObject") or {}
    return KubernetesEvent(
        type=event.get("type"),
        reason=event.get("reason"),
        message=event.get("message"),
        object=f"{involved.get('kind', '')}/{involved.get('name', '')}",
        count=event.get("count"),
        last_timestamp=event.get("lastTimestamp") or event.get("eventTime"),
    )


def placement(pod: Obj | None, pvc: Obj | None) -> Placement:
    """The ids of a session's pod and PVC, and the pod's address."""
    pod_meta = (pod or {}).get("metadata") or {}
    pvc_uid = ((pvc or {}).get("metadata") or {}).get("uid")
    return Placement(
        container_id=pod_meta.get("uid"),
        persistent_volume_id=f"pvc-{pvc_uid}" if pvc_uid else None,
        host=((pod or {}).get("status") or {}).get("podIP"),
        port=_notebook_port(pod),
    )


def _notebook_port(pod: Obj | None) -> int | None:
    for container in ((pod or {}).get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "notebook-port":
                return int(port["containerPort"])
    return None


def event_session_id(event: Obj) -> str | None:
    """The session an Event is about, from its ``involvedObject`` name; None if no session's."""
    return session_id_of_name(str((event.get("involvedObject") or {}).get("name") or ""))


def is_session_event(event: Obj) -> bool:
    """Whether an Event is about a session's pod or PVC (the events informer keeps only those)."""
    return event_session_id(event) is not None


def _container_statuses(status: Obj) -> list[Obj]:
    return list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or []
    )


def _container_summary(container: Obj) -> ContainerStatus:
    state = container.get("state") or {}
    name = next(iter(state), None)
    detail = state.get(name) or {} if name else {}
    return ContainerStatus(
        name=container.get("name"),
        ready=container.get("ready"),
        restart_count=container.get("restartCount"),
        state=name,
        reason=detail.get("reason"),
        message=detail.get("message"),
    )
