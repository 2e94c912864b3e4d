"""A pod's phase and Ready conditions from its container statuses, as the kubelet derives them.

The phase follows the kubelet's ``getPhase`` (``kubelet_pods.go``): a container waiting for
the first time keeps the pod ``Pending``; any running container makes it ``Running``; once none
runs, ``Always`` (and ``OnFailure`` with a failure) keeps it ``Running`` while it restarts,
otherwise it is ``Succeeded`` when every container exited 0 and ``Failed`` if not. A pod the
kubelet has killed for deletion is terminal whatever its policy. Terminal pods get
``ContainersReady``/``Ready`` False with reason ``PodCompleted`` or ``PodFailed`` and
``PodReadyToStartContainers`` False (their sandbox is gone).
"""

from __future__ import annotations

from collections.abc import Callable

from ..objects import Obj, timestamp
from . import containers as cs
from .scheduler import set_condition

TERMINAL = ("Succeeded", "Failed")
StatusMaker = Callable[[Obj, Obj], Obj]


def container_of(pod: Obj, name: str) -> Obj:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def set_container_status(pod: Obj, name: str, make: StatusMaker, *, terminal: bool) -> None:
    """Replace one container's status with ``make(container, previous)``; recompute the pod."""
    statuses = pod.setdefault("status", {}).setdefault("containerStatuses", [])
    container = container_of(pod, name)
    index = next((i for i, s in enumerate(statuses) if s["name"] == name), None)
    previous = statuses[index] if index is not None else {}
    new = make(container, previous)
    if index is None:
        statuses.append(new)
    else:
        statuses[index] = new
    recompute(pod, terminal=terminal)


def sandbox_ready(pod: Obj, *, pod_ip: str, host_ip: str) -> None:
    """The pod sandbox exists: IPs, start time, conditions, containers ``ContainerCreating``."""
    status = pod.setdefault("status", {})
    status.update(
        hostIP=host_ip,
        hostIPs=[{"ip": host_ip}],
        podIP=pod_ip,
        podIPs=[{"ip": pod_ip}],
        startTime=timestamp(),
    )
    for ctype in ("PodReadyToStartContainers", "Initialized"):
        set_condition(pod, ctype, "True")
    names = " ".join(c["name"] for c in pod["spec"]["containers"])
    unready = f"containers with unready status: [{names}]"
    set_condition(pod, "ContainersReady", "False", "ContainersNotReady", unready)
    set_condition(pod, "Ready", "False", "ContainersNotReady", unready)
    status["containerStatuses"] = [
        cs.waiting(c, "ContainerCreating") for c in pod["spec"]["containers"]
    ]


def pod_phase(pod: Obj, *, terminal: bool = False) -> str:
    """The phase the kubelet reports for ``pod`` (terminal: it was killed for deletion)."""
    status = pod.get("status") or {}
    if status.get("phase") in TERMINAL:
        return str(status["phase"])
    statuses = status.get("containerStatuses") or []
    if len(statuses) < len(pod["spec"]["containers"]):
        return "Pending"
    running = stopped = succeeded = waiting = 0
    for s in statuses:
        state = cs.state_of(s)
        if state == "running":
            running += 1
        elif state == "terminated":
            stopped += 1
            succeeded += s["state"]["terminated"].get("exitCode") == 0
        elif (s.get("lastState") or {}).get("terminated"):
            stopped += 1  # waiting to restart: counts as stopped, as the kubelet counts it
            succeeded += s["lastState"]["terminated"].get("exitCode") == 0
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    policy = pod["spec"].get("restartPolicy", "Always")
    if not terminal and policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if terminal or policy == "Never" else "Running"


def recompute(pod: Obj, *, terminal: bool = False) -> None:
    """Set the phase and the ContainersReady, Ready (and, when terminal, sandbox) conditions."""
    status = pod["status"]
    phase = pod_phase(pod, terminal=terminal)
    status["phase"] = phase
    if phase in TERMINAL:
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        set_condition(pod, "PodReadyToStartContainers", "False")
        set_condition(pod, "ContainersReady", "False", reason)
        set_condition(pod, "Ready", "False", reason)
        return
    statuses = status.get("containerStatuses") or []
    unready = [s["name"] for s in statuses if not s.get("ready")]
    if unready:
        why = f"containers with unready status: [{' '.join(unready)}]"
        set_condition(pod, "ContainersReady", "False", "ContainersNotReady", why)
        set_condition(pod, "Ready", "False", "ContainersNotReady", why)
    else:
        set_condition(pod, "ContainersReady", "True")
        set_condition(pod, "Ready", "True")
