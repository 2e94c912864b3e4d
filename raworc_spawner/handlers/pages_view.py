"""What the session pages say: state labels, failure explanations and the template environment.

Pure presentation, no I/O: the page handlers (:mod:`raworc_spawner.handlers.pages`) fetch data
from the session manager and hand it to :func:`render`. Everything a user reads about a state or
a failure reason lives in :data:`STATES` and :data:`FAILURES`, so a new state or reason is one
entry here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from raworc_spawner.sessions.model import EventKind

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = PACKAGE / "templates" / "pages"
STATIC_PATH = PACKAGE / "static"


@dataclass(frozen=True, slots=True)
class StateView:
    """How a session state reads on screen: a short label and one sentence about it."""

    label: str
    description: str


#: Session state → label and description. ``deleted`` is not a stored state: the pages show it
#: when a session's ``deleted`` event arrives.
STATES: dict[str, StateView] = {
    "init": StateView("starting", "Creating the workspace and starting compute."),
    "ready": StateView("ready", "Running and ready for work."),
    "busy": StateView("busy", "Running; its agent is working."),
    "idle": StateView(
        "sleeping — wakes on next request",
        "No compute is running; the workspace is kept. A request through the session proxy "
        "wakes it, or resume it here.",
    ),
    "error": StateView("failed", "The session stopped because of a problem (see below)."),
    "deleting": StateView("deleting", "Removing compute, then the workspace."),
    "deleted": StateView("deleted", "The session and its workspace are gone."),
}


def state_view(state: str) -> StateView:
    """The view of a state; an unknown one reads as itself."""
    return STATES.get(state, StateView(state, ""))


def state_labels() -> dict[str, dict[str, str]]:
    """Every state's label and description, for the live-update scripts."""
    return {name: asdict(view) for name, view in STATES.items()}


#: Kinds of session events the live scripts listen for (an EventSource needs each by name):
#: every kind a session's stream can carry. Backend observations reach the streams as these
#: kinds too: progress and warnings as themselves, lost compute as a warning then ``paused`` or
#: ``restarting``, an exit of running compute as ``failed``, anything else as a warning.
EVENT_KINDS = tuple(kind.value for kind in EventKind)


def live_data() -> dict[str, Any]:
    """What the live-update scripts need from the server: state words and event kinds."""
    return {"states": state_labels(), "kinds": list(EVENT_KINDS)}


def actions_for(state: str) -> dict[str, bool]:
    """Which of pause, resume and delete the detail page offers in a state."""
    return {
        "pause": state in ("init", "ready", "busy"),
        "resume": state in ("idle", "error"),
        "delete": True,
    }


@dataclass(frozen=True, slots=True)
class Explanation:
    """A failure reason in plain words: what happened and what to do about it."""

    title: str
    meaning: str
    action: str


_IMAGE = Explanation(
    "The container image can't be pulled",
    "Kubernetes could not download the session's container image: the name or tag is wrong, "
    "the registry is unreachable, or it needs credentials the cluster does not have.",
    "Check that KUBERNETES_IMAGE (or the profile's image) names an image and tag that exist, "
    "that nodes can reach the registry, and that a private registry has an image pull secret. "
    "Then resume the session.",
)
_MOUNT = Explanation(
    "The workspace volume can't be attached",
    "The session's workspace (its PersistentVolumeClaim) was created but could not be mounted "
    "into the pod.",
    "Look at the Kubernetes events below for the storage driver's message; an administrator "
    "may need to fix the volume or the node. Then resume the session.",
)
_CONTAINER = Explanation(
    "The container can't start",
    "The container was pulled but Kubernetes could not start it, usually because of a missing "
    "secret or config map, a bad command, or a security setting the image does not allow.",
    "Read the detail below and the Kubernetes events; fix the profile or settings it names, "
    "then resume the session.",
)

#: Failure reason (``termination_reason``, or the prefix of ``error``) → explanation.
FAILURES: dict[str, Explanation] = {
    "ErrImagePull": _IMAGE,
    "ImagePullBackOff": _IMAGE,
    "InvalidImageName": Explanation(
        "The container image name is not valid",
        "The configured image name is not a valid image reference, so nothing can be pulled.",
        "Correct KUBERNETES_IMAGE (or the profile's image), e.g. python:3.11-slim, then resume.",
    ),
    "ErrImageNeverPull": Explanation(
        "The image is not on the node and pulling is disabled",
        "The pull policy is Never, and the node does not already have the image.",
        "Set KUBERNETES_IMAGE_PULL_POLICY to IfNotPresent, or preload the image on the nodes.",
    ),
    "CreateContainerConfigError": _CONTAINER,
    "CreateContainerError": _CONTAINER,
    "RunContainerError": _CONTAINER,
    "CrashLoopBackOff": Explanation(
        "The session's program keeps crashing",
        "The container starts and then exits, again and again.",
        "Read the log below for the program's last words; fix the image or its command, then "
        "resume the session.",
    ),
    "Unschedulable": Explanation(
        "No node can run the session",
        "The cluster has no node with enough free CPU or memory (or matching the profile's node "
        "selector and tolerations) for what the session requests.",
        "Choose a smaller profile, lower KUBERNETES_CPU_REQUEST / KUBERNETES_MEMORY_REQUEST, or "
        "ask an administrator to add capacity. Then resume the session.",
    ),
    "ProvisioningFailed": Explanation(
        "The workspace volume can't be created",
        "The storage provisioner could not create a volume for the session's workspace.",
        "Check KUBERNETES_STORAGE_CLASS names a storage class that exists and has capacity for "
        "KUBERNETES_STORAGE_SIZE; the Kubernetes events below carry the provisioner's message.",
    ),
    "FailedMount": _MOUNT,
    "FailedAttachVolume": _MOUNT,
    "OOMKilled": Explanation(
        "The session ran out of memory",
        "Its program used more memory than its limit allows, and was killed.",
        "Choose a profile with more memory or raise KUBERNETES_MEMORY_LIMIT, then resume.",
    ),
    "ProcessExited": Explanation(
        "The session's process exited",
        "The program the session runs stopped by itself, so there is no compute left.",
        "Read its last output below. Fix the command (LocalBackend.command) or what it needs, "
        "then resume the session; the workspace is intact.",
    ),
    "Killed": Explanation(
        "The session's process was killed",
        "A signal ended the program the session runs (the detail names it): someone or "
        "something outside the session stopped it.",
        "Resume the session; the workspace is intact. If it keeps happening, look for what "
        "sends the signal (an out-of-memory killer, an operator, a supervisor).",
    ),
    "Completed": Explanation(
        "The session's program finished",
        "The program the session runs exited successfully, so the session went to sleep.",
        "Resume it to start the program again; the workspace is intact.",
    ),
    "Exited": Explanation(
        "The session's program exited",
        "The program the session runs stopped by itself.",
        "Read the log below, fix the cause, then resume the session.",
    ),
    "PodFailed": Explanation(
        "The session's pod failed",
        "Kubernetes reports the pod as failed.",
        "Read the detail and the Kubernetes events below, fix the cause, then resume.",
    ),
    "Evicted": Explanation(
        "The node evicted the session",
        "The node ran short of memory or disk and removed the session's pod.",
        "Resume the session; if it happens again, use a profile with larger requests.",
    ),
    "StartError": Explanation(
        "The session's command can't be run",
        "The program configured to run the session was not found or is not executable.",
        "Check LocalBackend.command names a program installed on this machine, then resume.",
    ),
    "ProcessMissing": Explanation(
        "The session's process disappeared",
        "The process was gone before the session became ready.",
        "Resume the session; if it fails again, read the log below.",
    ),
    "Timeout": Explanation(
        "The session took too long to start",
        "It was not ready within the allowed time (SessionManager.ready_timeout_seconds).",
        "Look at the events and the log for what it was waiting on (a slow image pull, a volume "
        "being provisioned). Resume to try again, or raise the timeout.",
    ),
    "ComputeLost": Explanation(
        "The session's compute was lost",
        "Its pod or process went away without being asked (node loss, eviction, a manual "
        "delete, or a server restart). The workspace is kept.",
        "Resume the session to start new compute on the same workspace.",
    ),
    "PodDeleted": Explanation(
        "The session's pod was deleted",
        "Someone or something outside raworc-spawner deleted the pod. The workspace is kept.",
        "Resume the session to start a new pod on the same workspace.",
    ),
    "CloneSourceMissing": Explanation(
        "The workspace to copy from is gone",
        "This session was to start from another session's workspace, which no longer exists.",
        "Delete this session and create a new one.",
    ),
    "DeleteTimeout": Explanation(
        "Deleting did not finish in time",
        "The session's compute or workspace was still there when the delete time ran out, so the "
        "session was kept rather than leaking resources silently.",
        "Delete it again. If it keeps failing, an administrator should look at the pod and PVC.",
    ),
    "DeleteFailed": Explanation(
        "Deleting failed",
        "The backend refused or failed to remove the session's compute or workspace.",
        "Delete it again; the detail below says what went wrong.",
    ),
    "Forbidden": Explanation(
        "The server may not create the session's resources",
        "Kubernetes refused the request: the server's service account lacks a permission.",
        "An administrator should run `raworc-spawner doctor` and apply the RBAC in deploy/.",
    ),
    "Invalid": Explanation(
        "Kubernetes rejected the session's resources",
        "The pod or volume claim rendered from the templates was not accepted by the API server.",
        "An administrator should check the profile and custom templates; the detail says which "
        "field is wrong.",
    ),
    "AlreadyExists": Explanation(
        "A resource with the session's name already exists",
        "A pod or claim with this session's name exists and belongs to something else.",
        "An administrator should remove the conflicting object, then resume the session.",
    ),
    "BackendError": Explanation(
        "The compute backend failed",
        "The request to create the session's compute failed.",
        "Try resuming in a moment; if it keeps failing, an administrator should check the "
        "server log and the cluster.",
    ),
}

#: Why a session sleeps (``termination_reason`` of an idle session) → one sentence.
SLEEP_REASONS: dict[str, str] = {
    "Paused": "It was paused on request.",
    "Culled": "It was put to sleep after a period without activity.",
    "ComputeLost": "Its compute went away by itself; the workspace is intact.",
}

_UNKNOWN = Explanation(
    "The session failed",
    "Its compute could not be started or kept running.",
    "Read the detail, the events and the log below, then resume or delete the session.",
)


def failure_reason(session: Mapping[str, Any]) -> str | None:
    """The reason code of a failed session: ``termination_reason``, else ``error``'s prefix."""
    reason = session.get("termination_reason")
    if reason:
        return str(reason)
    error = str(session.get("error") or "")
    head, sep, _ = error.partition(":")
    return head if sep and head.isidentifier() else None


def explain(session: Mapping[str, Any]) -> dict[str, Any] | None:
    """What to tell the user about a failed session, or None if it has not failed."""
    if session.get("state") != "error" and not session.get("error"):
        return None
    reason = failure_reason(session)
    explanation = FAILURES.get(reason or "", _UNKNOWN)
    error = str(session.get("error") or "")
    detail = (
        error[len(reason) + 1 :].strip() if reason and error.startswith(f"{reason}:") else error
    )
    return {"reason": reason, "detail": detail, **asdict(explanation)}


def sleep_note(session: Mapping[str, Any]) -> str | None:
    """Why an idle session sleeps, in a sentence (None when it is not idle)."""
    if session.get("state") != "idle":
        return None
    why = SLEEP_REASONS.get(str(session.get("termination_reason") or ""))
    wakes = "It wakes on the next request through its proxy, or when resumed."
    return f"{why} {wakes}" if why else wakes


#: HTTP status of an error page → its title.
ERROR_TITLES: dict[int, str] = {
    400: "That request was not understood",
    401: "Log in to continue",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "That can't be done right now",
    413: "That was too large",
    422: "Check what you entered",
    429: "Limit reached",
    502: "The compute backend failed",
    503: "The compute backend is unavailable",
}
#: Sentences for errors that carry no message of their own.
ERROR_MESSAGES: dict[int, str] = {
    404: "There is nothing at this address.",
    405: "This page does not accept that kind of request.",
}


# -- formatting ---------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    """An ISO timestamp from the API representation."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def age(value: str | None, *, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: ``just now``, ``5 min``, ``3 h``, ``2 d``."""
    when = parse_time(value)
    if when is None:
        return "—"
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 60:
        return "just now"
    size, unit = next(u for u in ((86400, "d"), (3600, "h"), (60, "min")) if seconds >= u[0])
    return f"{seconds // size} {unit} ago"


def clock(value: str | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS UTC``."""
    when = parse_time(value)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"


def resources_text(resources: Mapping[str, Any] | None) -> str:
    """Requests and limits in one line: ``CPU 100m to 1000m · memory 128Mi to 1Gi``."""
    if not resources:
        return ""
    parts = []
    for kind, label in (("cpu", "CPU"), ("memory", "memory")):
        low, high = resources.get(f"{kind}_request"), resources.get(f"{kind}_limit")
        if low or high:
            parts.append(f"{label} {low or '?'} to {high or '?'}")
    if resources.get("gpu_limit"):
        parts.append(f"GPU {resources['gpu_limit']}")
    return " · ".join(parts)


def profile_text(profile: str | None, catalog: Mapping[str, Mapping[str, Any]]) -> str:
    """The profile a session runs with and its resources, for the list page."""
    name = profile or next((n for n, p in catalog.items() if p.get("default")), None)
    if name is None:
        return "default" if catalog else "local process"
    entry = catalog.get(name) or {}
    summary = resources_text(entry.get("resources"))
    return f"{name} ({summary})" if summary else name


def pod_resources(resources: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """A pod container's ``resources`` as rows of (resource, request, limit)."""
    requests = (resources or {}).get("requests") or {}
    limits = (resources or {}).get("limits") or {}
    names = sorted(set(requests) | set(limits))
    return [(name, str(requests.get(name, "—")), str(limits.get(name, "—"))) for name in names]


# -- templates ----------------------------------------------------------------------------------


@functools.cache
def environment(path: str = str(TEMPLATE_PATH)) -> jinja2.Environment:
    """The Jinja2 environment of the pages: autoescaping on for every template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(path),
        autoescape=True,
        # Backend status dicts vary by backend and version: a missing key renders empty.
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(state_view=state_view, live_data=live_data)
    env.filters.update(
        age=age, clock=clock, resources_text=resources_text, pod_resources=pod_resources
    )
    return env


def render(template: str, context: Mapping[str, Any]) -> str:
    """Render a page template."""
    return environment().get_template(template).render(context)
