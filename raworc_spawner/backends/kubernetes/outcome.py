"""What became of a session pod: its server exited, it was stopped from outside, or it cannot be
reused for a new start.

Pure functions over the pod as the API returns it (no I/O). Sources: the kubelet's container
states (``ContainerStateTerminated``: ``exitCode``, ``reason``, ``message``, k8s.io/api
``core/v1/types.go``); a pod the kubelet or the node stops from outside ends ``Failed`` with a
pod-level ``reason`` (``Evicted`` by the eviction manager, ``Terminated``/``Shutdown`` by the
node shutdown manager, ``Preempted``…), whereas a container that exits by itself leaves the
pod-level reason empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raworc_spawner.backends.kubernetes.naming import MAIN_CONTAINER, SPEC_HASH_ANNOTATION

Obj = dict[str, Any]

#: Lines of the termination message (the log's tail with FallbackToLogsOnError) kept.
EXIT_LOG_LINES = 5
EXIT_LOG_CHARS = 1000
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


@dataclass(frozen=True, slots=True)
class Exit:
    """The session container ended: its exit code, the kubelet's reason, and what it said."""

    container: str
    exit_code: int | None
    reason: str
    detail: str

    @property
    def message(self) -> str:
        """``container session exited with code 3: <last log lines, else the reason>``."""
        code = "unknown" if self.exit_code is None else str(self.exit_code)
        return f"container {self.container} exited with code {code}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Stopped:
    """The pod was stopped from outside (evicted, preempted, its node shut down)."""

    reason: str
    message: str


def main_status(pod: Obj | None) -> Obj | None:
    """The status of the session container (``session``), else of the first container."""
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == MAIN_CONTAINER:
            return dict(status)
    return dict(statuses[0]) if statuses else None


def restart_count(pod: Obj | None) -> int:
    """How often the kubelet restarted the session container."""
    return int((main_status(pod) or {}).get("restartCount") or 0)


def stopped_from_outside(pod: Obj) -> Stopped | None:
    """Why a Failed pod was stopped by the node or the cluster, when it was."""
    status = pod.get("status") or {}
    reason = status.get("reason")
    if status.get("phase") != "Failed" or not reason:
        return None
    name = (pod.get("metadata") or {}).get("name", "")
    detail = status.get("message") or reason
    what = "was evicted" if reason == "Evicted" else f"was stopped ({reason})"
    return Stopped(str(reason), f"pod {name} {what}: {detail}")


def session_exit(pod: Obj, *, restarts_seen: int | None = None) -> Exit | None:
    """The session container's exit, if it has exited.

    An exit is a ``terminated`` state, or (with a restartPolicy that restarts it) a restart
    count above ``restarts_seen`` with the exit in ``lastState``. A pod that finished with no
    container status left is an exit too (code 0 when it Succeeded, unknown otherwise).
    """
    status = main_status(pod)
    if status is not None:
        ended = (status.get("state") or {}).get("terminated")
        if not ended and restarts_seen is not None and restart_count(pod) > restarts_seen:
            ended = (status.get("lastState") or {}).get("terminated")
        if ended:
            return _exit(str(status.get("name") or MAIN_CONTAINER), ended)
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return Exit(MAIN_CONTAINER, 0, "Completed", "Completed")
    if phase == "Failed" and stopped_from_outside(pod) is None:
        return Exit(MAIN_CONTAINER, None, "PodFailed", "the pod failed")
    return None


def _exit(container: str, ended: Obj) -> Exit:
    code = ended.get("exitCode")
    reason = str(ended.get("reason") or ("Completed" if code == 0 else "Error"))
    return Exit(container, None if code is None else int(code), reason, _detail(ended, reason))


def _detail(ended: Obj, reason: str) -> str:
    """The termination message's last lines (the log's tail), else the reason."""
    lines = [line.rstrip() for line in str(ended.get("message") or "").strip().splitlines()]
    text = "\n".join(lines[-EXIT_LOG_LINES:]).strip()
    if len(text) > EXIT_LOG_CHARS:
        text = "…" + text[-EXIT_LOG_CHARS:]
    return text or reason


def fatal_waiting(pod: Obj) -> tuple[Obj, str] | None:
    """A container (init or not) waiting for a reason that will not clear by itself."""
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        reason = ((container.get("state") or {}).get("waiting") or {}).get("reason")
        if reason in FATAL_WAITING_REASONS:
            return container, str(reason)
    return None


def why_replace(pod: Obj, *, spec_hash: str) -> tuple[str, bool] | None:
    """Why ``pod`` must not be reused for a start that renders ``spec_hash``, else None.

    Returns the reason in words and whether it is a failure (a pod that ended or is stuck) as
    opposed to a change of settings. A pod without the annotation (made by an older version)
    is not judged by its hash.
    """
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase in ("Failed", "Succeeded"):
        reason = status.get("reason")
        return (f"phase {phase}, reason {reason}" if reason else f"phase {phase}"), True
    stuck = fatal_waiting(pod)
    if stuck is not None:
        return f"container {stuck[0].get('name')}: {stuck[1]}", True
    ended = session_exit(pod)
    if ended is not None:
        return f"container {ended.container} exited with code {ended.exit_code}", True
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    rendered = annotations.get(SPEC_HASH_ANNOTATION)
    if rendered is not None and rendered != spec_hash:
        return "rendered from settings that changed", False
    return None
