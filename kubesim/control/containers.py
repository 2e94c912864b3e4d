"""Container status records as the kubelet reports them."""

from __future__ import annotations

import hashlib

from ..objects import Obj, random_hex, timestamp


def image_id(image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    return f"{repo}@sha256:{digest}"


def new_container_id() -> str:
    return f"containerd://{random_hex(64)}"


def waiting(container: Obj, reason: str, message: str = "", *, previous: Obj | None = None) -> Obj:
    """A waiting status (``ContainerCreating``, ``ErrImagePull``, ``CrashLoopBackOff`` …)."""
    state: Obj = {"reason": reason}
    if message:
        state["message"] = message
    prev = previous or {}
    status = _base(container, prev)
    status.update(ready=False, started=False, state={"waiting": state})
    return status


def running(
    container: Obj,
    *,
    previous: Obj | None = None,
    container_id: str | None = None,
    restarted: bool = False,
) -> Obj:
    """A running status; ``restarted``: a new container after an exit (count it, keep the last)."""
    prev = previous or {}
    status = _base(container, prev)
    if restarted:
        status.update(lastState=last_termination(prev), restartCount=status["restartCount"] + 1)
    status.update(
        ready=True,
        started=True,
        containerID=container_id or new_container_id(),
        imageID=image_id(str(container.get("image", ""))),
        state={"running": {"startedAt": timestamp()}},
    )
    return status


def crash_loop(container: Obj, previous: Obj, message: str) -> Obj:
    """Waiting in ``CrashLoopBackOff`` after an exit: the exit is the last state; the count is
    unchanged until a new container is created (as the kubelet reports it)."""
    status = waiting(container, "CrashLoopBackOff", message, previous=previous)
    status["lastState"] = last_termination(previous)
    return status


def last_termination(previous: Obj) -> Obj:
    """The ``lastState`` after ``previous``: its termination, else its own last state."""
    terminated = (previous.get("state") or {}).get("terminated")
    return {"terminated": terminated} if terminated else dict(previous.get("lastState") or {})


def was_started(previous: Obj) -> bool:
    """Whether a container with this status ran before (so starting it again is a restart)."""
    return state_of(previous) == "terminated" or bool(
        (previous.get("lastState") or {}).get("terminated")
    )


def terminated(
    container: Obj,
    previous: Obj,
    *,
    exit_code: int,
    reason: str,
    message: str = "",
    started_at: str | None = None,
) -> Obj:
    """The container has exited: ``Completed``, ``Error``, ``OOMKilled``, ``StartError``."""
    status = _base(container, previous)
    running_since = ((previous.get("state") or {}).get("running") or {}).get("startedAt")
    record: Obj = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started_at or running_since or timestamp(),
        "finishedAt": timestamp(),
        "containerID": previous.get("containerID", ""),
    }
    if message:
        record["message"] = message
    status.update(
        ready=False,
        started=False,
        state={"terminated": record},
        containerID=previous.get("containerID", ""),
        imageID=previous.get("imageID", ""),
    )
    return status


def _base(container: Obj, previous: Obj) -> Obj:
    status: Obj = {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": previous.get("imageID", ""),
        "restartCount": previous.get("restartCount", 0),
        "lastState": previous.get("lastState", {}),
        "volumeMounts": [
            {"name": m.get("name"), "mountPath": m.get("mountPath")}
            for m in container.get("volumeMounts") or []
        ],
    }
    if previous.get("containerID"):
        status["containerID"] = previous["containerID"]
    return status


def state_of(status: Obj) -> str:
    """``waiting``, ``running`` or ``terminated``."""
    return next(iter(status.get("state") or {"waiting": {}}))
