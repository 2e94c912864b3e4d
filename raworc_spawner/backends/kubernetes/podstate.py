"""Reading pods, PVCs and events: is it running, has it failed for good, what is it doing.

Pure functions over the API's dicts, so they are easy to test and cost no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raworc_spawner.backends.base import Placement
from raworc_spawner.backends.kubernetes import outcome
from raworc_spawner.backends.kubernetes.naming import session_id_of_name
from raworc_spawner.backends.status import (
    ClaimStatus,
    ComputeState,
    ContainerStatus,
    PodCondition,
    PodStatus,
)

Obj = dict[str, Any]


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
    """The backend-neutral state of a pod.

    Failed when it ended (Succeeded or Failed), is stuck (a fatal waiting reason), or its
    session container has exited and not (yet) been restarted.
    """
    if pod is None:
        return ComputeState.ABSENT
    if is_terminating(pod):
        return ComputeState.STOPPING
    if is_ready(pod):
        return ComputeState.RUNNING
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Failed", "Succeeded") or pod_failure(pod) is not None:
        return ComputeState.FAILED
    if ((outcome.main_status(pod) or {}).get("state") or {}).get("terminated"):
        return ComputeState.FAILED
    return ComputeState.STARTING


def pod_failure(pod: Obj) -> Failure | None:
    """A condition visible in the pod's status that keeps it from ever becoming ready."""
    stuck = outcome.fatal_waiting(pod)
    if stuck is not None:
        container, reason = stuck
        waiting = (container.get("state") or {}).get("waiting") or {}
        detail = waiting.get("message") or reason
        image = container.get("image") or ""
        return Failure(reason, f"container {container.get('name')} ({image}): {detail}")
    status = pod.get("status") or {}
    for container in _container_statuses(status):
        terminated = (container.get("state") or {}).get("terminated") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        for ended in (terminated, last):
            if ended.get("reason") == "OOMKilled":
                return Failure(
                    "OOMKilled",
                    f"container {container.get('name')} ran out of memory "
                    f"(exit code {ended.get('exitCode')}); raise its memory limit",
                )
    stopped = outcome.stopped_from_outside(pod)
    if stopped is not None:
        return Failure(stopped.reason, stopped.message)
    if status.get("phase") in ("Failed", "Succeeded"):
        ended_now = outcome.session_exit(pod)
        if ended_now is not None:
            return Failure(ended_now.reason, ended_now.message)
    return None


#: What the scheduler says of a pod whose claims are missing, going or not bound yet, in the
#: words of its VolumeBinding plugin (``pod has unbound immediate PersistentVolumeClaims``,
#: ``persistentvolumeclaim "x" not found``, ``… is being deleted``) and of the volume binder
#: (``waiting for first consumer to be created before binding``). The claim is what is late.
_CLAIM_MESSAGES = (
    "unbound immediate PersistentVolumeClaims",
    "waiting for first consumer",
    'persistentvolumeclaim "',
)


def waits_for_claims(message: str) -> bool:
    """Whether a scheduling message only says the pod's claims are not there or bound yet."""
    return any(text in message for text in _CLAIM_MESSAGES)


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
