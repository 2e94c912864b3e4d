"""What a starting session waits for, in words, from the caches (no I/O).

The steps of a start, in order: the claim bound (or, for a ``WaitForFirstConsumer`` class, a
node picked for the pod first), the pod scheduled, volumes attached and mounted, the image
pulled, the container started and ready. The first step not done is the answer, e.g. ``pulling
image python:3.11-slim``, ``claim session-pvc-… to bind (storage class standard)``, ``a node:
0/3 nodes are available: 3 Insufficient cpu.``, ``container session to start``.
"""

from __future__ import annotations

import re
from typing import Any

from raworc_spawner.backends.kubernetes import outcome, podstate
from raworc_spawner.backends.kubernetes.eventbook import EventBook
from raworc_spawner.backends.kubernetes.naming import MAIN_CONTAINER, pod_name, pvc_name

Obj = dict[str, Any]

#: Kubelet events that tell how far the session container got (kubelet ``events/event.go``).
_STEPS = frozenset(
    {"Pulling", "Pulled", "Created", "Started", "FailedMount", "FailedAttachVolume", "BackOff"}
)
_PULLING_IMAGE = re.compile(r'Pulling image "([^"]+)"')
#: Waiting reasons of a container whose pod is still being set up (kubelet ``kuberuntime``).
_SETTING_UP = frozenset({"ContainerCreating", "PodInitializing"})


def waiting_on(
    sid: str,
    pod: Obj | None,
    pvc: Obj | None,
    *,
    events: EventBook | None,
    pod_uid: str | None,
    provisioning: str | None = None,
) -> str | None:
    """The first step of the start that is not done yet; None when ready or nothing is known.

    ``events`` are the session's believed events (for the image pull and volume mounts of the
    pod ``pod_uid``); ``provisioning`` is the provisioner's last complaint about the claim.
    """
    if pod is not None and podstate.is_ready(pod):
        return None
    if pod is not None and podstate.is_terminating(pod):
        return f"pod {pod_name(sid)} to stop"
    unschedulable = podstate.unschedulable_message(pod) if pod is not None else None
    if unschedulable is not None and not podstate.waits_for_claims(unschedulable):
        return f"a node: {unschedulable}"
    if pvc is not None and _unbound(pvc) and not _scheduled(pod):
        return _claim(sid, pvc, provisioning)
    if pod is None:
        return f"pod {pod_name(sid)} to be created" if pvc is not None else None
    if not _scheduled(pod):
        return "a node"
    return _container(pod, events, pod_uid)


def _claim(sid: str, pvc: Obj, provisioning: str | None) -> str:
    storage_class = (pvc.get("spec") or {}).get("storageClassName")
    which = f"storage class {storage_class}" if storage_class else "the default storage class"
    text = f"claim {pvc_name(sid)} to bind ({which})"
    return f"{text}: {provisioning}" if provisioning else text


def _container(pod: Obj, events: EventBook | None, pod_uid: str | None) -> str:
    status = outcome.main_status(pod) or {}
    name = status.get("name") or MAIN_CONTAINER
    state = status.get("state") or {}
    if "running" in state:
        return f"container {name} to become ready"
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason and reason not in _SETTING_UP:
        detail = waiting.get("message") or reason
        return f"container {name} ({reason}): {detail}"
    step = events.last(pod_uid, _STEPS) if events is not None and pod_uid else None
    if step is not None and step.reason == "Pulling":
        found = _PULLING_IMAGE.search(step.message or "")
        return f"pulling image {found.group(1) if found else _image(pod, name)}"
    if step is not None and step.reason in ("FailedMount", "FailedAttachVolume"):
        return f"volume to mount: {step.message}"
    return f"container {name} to start"


def _unbound(pvc: Obj) -> bool:
    return (pvc.get("status") or {}).get("phase") != "Bound"


def _scheduled(pod: Obj | None) -> bool:
    return bool(((pod or {}).get("spec") or {}).get("nodeName"))


def _image(pod: Obj, container: str) -> str:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            return str(spec.get("image") or "")
    return ""
