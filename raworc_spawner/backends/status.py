"""What a backend reports about one session: the "status proxy" (``GET …/sessions/{id}/status``).

Every value here is frozen and mirrors the JSON the API returns: attribute names are the JSON
keys, nested dataclasses are nested objects, tuples are arrays. :meth:`BackendStatus.to_dict`
gives that JSON. A backend returns its own subclass: :class:`KubernetesStatus` (namespace, pod,
PVC and recent Kubernetes events) or :class:`LocalStatus` (process and workspace directory).

>>> status = LocalStatus(
...     backend="local",
...     compute=ProcessStatus(ComputeState.RUNNING, pid=42, port=8888, host="127.0.0.1"),
...     workspace=WorkspaceStatus("/data/workspaces/abc", True, "pvc-1"),
... )
>>> status.to_dict()["compute"]["pid"], status.to_dict()["workspace"]["exists"]
(42, True)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ComputeState(enum.StrEnum):
    """What the backend currently knows about a session's compute."""

    ABSENT = "absent"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"


# -- the compute -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComputeStatus:
    """The compute's state, and why it failed when it did (``reason``, ``message``)."""

    state: ComputeState
    reason: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``state``, ``reason``, ``message``."""
        return {"state": self.state.value, "reason": self.reason, "message": self.message}


@dataclass(frozen=True, slots=True)
class ProcessStatus(ComputeStatus):
    """A local session process: pid, the UUID made at its start, where it listens.

    The process fields are None when no process runs (they are shown all the same).
    """

    pid: int | None = None
    container_id: str | None = None
    port: int | None = None
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``state``, ``pid``, ``container_id``, ``port``, ``host``, ``reason``…"""
        return {
            "state": self.state.value,
            "pid": self.pid,
            "container_id": self.container_id,
            "port": self.port,
            "host": self.host,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class WorkspaceStatus:
    """A local workspace directory and the volume id it was given."""

    path: str
    exists: bool
    persistent_volume_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``path``, ``exists``, ``persistent_volume_id``."""
        return {
            "path": self.path,
            "exists": self.exists,
            "persistent_volume_id": self.persistent_volume_id,
        }


# -- Kubernetes objects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodCondition:
    """One entry of a pod's ``status.conditions`` (PodScheduled, Initialized, Ready…)."""

    type: str | None
    status: str | None
    reason: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``type``, ``status``, ``reason``, ``message``."""
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """One container of the pod: readiness, restarts and its current state (with why)."""

    name: str | None
    ready: bool | None
    restart_count: int | None
    state: str | None  # "waiting", "running" or "terminated"
    reason: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys as the attributes."""
        return {
            "name": self.name,
            "ready": self.ready,
            "restart_count": self.restart_count,
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class PodStatus:
    """The session pod: identity, phase, placement, the session container's image and resources.

    ``resources`` is the session container's Kubernetes ``resources`` block as it is
    (``{"requests": {...}, "limits": {...}}``).
    """

    name: str | None
    uid: str | None
    phase: str | None
    state: ComputeState
    terminating: bool
    node: str | None
    pod_ip: str | None
    host_ip: str | None
    started_at: str | None
    image: str | None
    resources: Mapping[str, Any]
    conditions: tuple[PodCondition, ...] = ()
    containers: tuple[ContainerStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys as the attributes."""
        return {
            "name": self.name,
            "uid": self.uid,
            "phase": self.phase,
            "state": self.state.value,
            "terminating": self.terminating,
            "node": self.node,
            "pod_ip": self.pod_ip,
            "host_ip": self.host_ip,
            "started_at": self.started_at,
            "image": self.image,
            "resources": dict(self.resources),
            "conditions": [c.to_dict() for c in self.conditions],
            "containers": [c.to_dict() for c in self.containers],
        }


@dataclass(frozen=True, slots=True)
class ClaimStatus:
    """The workspace PersistentVolumeClaim: phase, bound volume, size asked for and given."""

    name: str | None
    uid: str | None
    phase: str | None
    terminating: bool
    volume_name: str | None
    storage_class: str | None
    requested: str | None
    capacity: str | None
    access_modes: tuple[str, ...] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys as the attributes."""
        return {
            "name": self.name,
            "uid": self.uid,
            "phase": self.phase,
            "terminating": self.terminating,
            "volume_name": self.volume_name,
            "storage_class": self.storage_class,
            "requested": self.requested,
            "capacity": self.capacity,
            "access_modes": None if self.access_modes is None else list(self.access_modes),
        }


@dataclass(frozen=True, slots=True)
class KubernetesEvent:
    """A Kubernetes Event about the session's pod or PVC (``object`` is ``Kind/name``)."""

    type: str | None  # "Normal" or "Warning"
    reason: str | None
    message: str | None
    object: str
    count: int | None = None
    last_timestamp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys as the attributes."""
        return {
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "object": self.object,
            "count": self.count,
            "last_timestamp": self.last_timestamp,
        }


# -- what status() returns -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """A session's compute and workspace as one backend sees them now (``backend`` is its name).

    Backends return a subclass with their own details; :meth:`to_dict` is the API's JSON.
    """

    backend: str
    compute: ComputeStatus

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``backend`` and ``compute``."""
        return {"backend": self.backend, "compute": self.compute.to_dict()}


@dataclass(frozen=True, slots=True)
class KubernetesStatus(BackendStatus):
    """The Kubernetes view: the namespace, the pod and PVC (None when absent), recent events.

    Events are the Kubernetes Events about the session's objects this server has seen, oldest
    first (a bounded ring, ``KubernetesBackend.events_per_session``).
    """

    namespace: str
    pod: PodStatus | None = None
    pvc: ClaimStatus | None = None
    events: tuple[KubernetesEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``backend``, ``namespace``, ``compute``, ``pod``, ``pvc``, ``events``."""
        return {
            "backend": self.backend,
            "namespace": self.namespace,
            "compute": self.compute.to_dict(),
            "pod": self.pod.to_dict() if self.pod else None,
            "pvc": self.pvc.to_dict() if self.pvc else None,
            "events": [event.to_dict() for event in self.events],
        }


@dataclass(frozen=True, slots=True)
class LocalStatus(BackendStatus):
    """The local view: the process (in ``compute``, a :class:`ProcessStatus`) and the workspace."""

    workspace: WorkspaceStatus

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``backend``, ``compute``, ``workspace``."""
        return {
            "backend": self.backend,
            "compute": self.compute.to_dict(),
            "workspace": self.workspace.to_dict(),
        }
