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


def running(container: Obj, *, previous: Obj | None = None, container_id: str | None = None) -> Obj:
    prev = previous or {}
    status = _base(container, prev)
    status.update(
        ready=True,
        started=True,
        containerID=container_id or new_container_id(),
        imageID=image_id(str(container.get("image", ""))),
        state={"running": {"startedAt": timestamp()}},
    )
    return status


def terminated(
    container: Obj, previous: Obj, *, exit_code: int, reason: str, message: str = ""
) -> Obj:
    """The container has exited: ``OOMKilled``, ``Error``, ``Completed``."""
    status = _base(container, previous)
    started = ((previous.get("state") or {}).get("running") or {}).get("startedAt") or timestamp()
    record: Obj = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started,
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


def restarted_from(container: Obj, previous: Obj) -> Obj:
    """Carry a terminated state into ``lastState`` and count the restart."""
    status = dict(previous)
    status["lastState"] = {"terminated": (previous.get("state") or {}).get("terminated", {})}
    status["restartCount"] = previous.get("restartCount", 0) + 1
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
