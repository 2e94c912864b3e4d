"""The contract every compute backend honours.

A backend owns two things per session: a *workspace* that persists (a PVC, or a directory) and
*compute* that comes and goes (a pod, or a local process). It knows nothing of HTTP or SQL; the
session manager drives it and listens to the :class:`BackendEvent` stream it emits.

The values a backend answers with are typed: :class:`Placement` (ids and address),
:class:`~raworc_spawner.backends.status.BackendStatus` (what the status endpoint shows),
:class:`Profile` (a preset sessions may choose), :class:`Inventory` (what exists).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypedDict, runtime_checkable

from raworc_spawner.backends.status import BackendStatus, ComputeState

__all__ = [
    "Backend",
    "BackendEvent",
    "BackendEventKind",
    "BackendStatus",
    "ComputeState",
    "EventSink",
    "ForeignObject",
    "FoundSession",
    "HubServer",
    "Inventory",
    "Placement",
    "Profile",
    "ProfileResources",
    "SessionSpec",
]


@dataclass(frozen=True, slots=True)
class HubServer:
    """The JupyterHub server a session is: its user and server name (empty: the default one)."""

    user: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What a backend needs to know to give a session its compute and workspace.

    ``command`` and ``port`` override the backend's defaults (the hub passes its single-user
    server command and port); ``resources`` maps ``cpu_request``/``cpu_limit``/``memory_request``/
    ``memory_limit`` to Kubernetes quantities and overrides the profile's.

    ``namespace`` (the logical one, not Kubernetes'), ``owner``, ``name``, ``profile``,
    ``created_at``, ``clone_from``, ``waiting_timeout_seconds`` and ``hub_server`` are recorded
    with the workspace and compute (annotations on Kubernetes, a record file locally), so that a
    server whose store lost the record can rebuild it (:meth:`Backend.describe`).

    ``expected_volume`` is the ``persistent_volume_id`` the session's record holds, when it has
    had a workspace: the workspace must still be that one. If it is gone, or another took its
    place, :meth:`Backend.create` raises ``SessionFailed("WorkspaceLost", …)`` naming it instead
    of creating an empty one. None (a new session, or an explicit ``new_workspace`` request)
    means any workspace found is used and a missing one is created.
    """

    session_id: str
    name: str
    owner: str
    starting_prompt: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None
    command: Sequence[str] | None = None
    port: int | None = None
    resources: Mapping[str, str] = field(default_factory=dict)
    clone_from: str | None = None
    namespace: str = "default"
    created_at: datetime | None = None
    expected_volume: str | None = None
    waiting_timeout_seconds: int | None = None
    hub_server: HubServer | None = None

    def session_env(self) -> dict[str, str]:
        """The environment injected into every session, then the spec's extras."""
        env = {
            "SESSION_ID": self.session_id,
            "SESSION_NAME": self.name,
            "STARTING_PROMPT": self.starting_prompt,
        }
        env.update(self.env)
        return env


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a session's resources are: ids for the record and an address to reach it."""

    container_id: str | None = None
    persistent_volume_id: str | None = None
    host: str | None = None
    port: int | None = None


class BackendEventKind(enum.StrEnum):
    """What a :class:`BackendEvent` reports.

    A failure *before* ready is not an event: :meth:`Backend.wait_ready` raises it
    (``SessionFailed`` with the reason), so the one waiting for the session hears it once.
    """

    #: A step towards ready: the workspace claimed or bound, the pod created, the image
    #: pulled, the process started. Informational.
    PROGRESS = "progress"
    #: Something worth a look that does not fail the session by itself (a Kubernetes
    #: ``Warning`` event: a failed probe, a scheduling retry, a slow pull).
    WARNING = "warning"
    #: Running compute went away by itself: the local process exited, or the pod's session
    #: container terminated or failed (OOMKilled, CrashLoopBackOff, phase Failed).
    EXITED = "exited"
    #: Running compute vanished from outside, with nothing wrong inside: the pod was deleted
    #: by someone else (kubectl, a node drain) or evicted.
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """Something the backend observed about a session (see :class:`BackendEventKind`).

    ``reason`` is a short CamelCase cause (``PodDeleted``, ``ProcessExited``, a Kubernetes
    event's reason); ``message`` says it in words. For ``exited``, ``exit_code`` is the
    process's or container's exit status when known: 0 is a clean exit (the session becomes
    idle), anything else a failure (the session goes to error with the code and reason).
    """

    session_id: str
    kind: BackendEventKind
    message: str
    reason: str | None = None
    exit_code: int | None = None


EventSink = Callable[[BackendEvent], None]


class ProfileResources(TypedDict):
    """A profile's effective resources: Kubernetes quantities (empty: not set), GPUs as a count."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    gpu_limit: int


class Profile(TypedDict):
    """A named preset a session may choose, with the values it takes effect with (JSON-ready).

    A dict with these keys, so that pages, forms and the API use it as they do any JSON.
    """

    name: str
    description: str
    default: bool  # used when a session names no profile
    image: str
    image_pull_policy: str
    resources: ProfileResources
    storage_size: str
    storage_class: str  # empty: the cluster's default class


@dataclass(frozen=True, slots=True)
class Inventory:
    """Which sessions have compute and which have a workspace, as the backend sees it now."""

    compute: frozenset[str] = frozenset()
    workspaces: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FoundSession:
    """A session this instance has objects of, described from what the objects carry.

    What :meth:`Backend.describe` answers, so that a record lost from the store can be rebuilt
    (re-adoption). ``has_compute``: its compute exists now (running or starting).
    """

    session_id: str
    name: str
    owner: str
    namespace: str = "default"
    profile: str | None = None
    created_at: datetime | None = None
    parent_session_id: str | None = None
    persistent_volume_id: str | None = None
    container_id: str | None = None
    has_compute: bool = False
    waiting_timeout_seconds: int | None = None
    hub_server: HubServer | None = None


class ForeignKind(enum.StrEnum):
    """What kind of object a :class:`ForeignObject` is."""

    POD = "pod"
    PERSISTENT_VOLUME_CLAIM = "persistentvolumeclaim"
    PROCESS = "process"
    WORKSPACE = "workspace"


@dataclass(frozen=True, slots=True)
class ForeignObject:
    """An object that carries the session labels but is not this instance's: never touched.

    ``instance`` is the owner instance it names; None when it names none (made by a version
    that did not record owners, and not claimed by :meth:`Backend.claim`).
    """

    kind: ForeignKind
    name: str
    session_id: str | None
    instance: str | None


@runtime_checkable
class Backend(Protocol):
    """A place to run sessions. Every method is idempotent; ids are session ids.

    A backend acts only on objects of its own ``instance_name`` (given to its constructor):
    every object it creates carries it, its caches and :meth:`inventory` hold only those, and
    objects of other instances are reported by :meth:`foreign`, never changed.
    """

    name: str
    instance_name: str

    async def start(self, sink: EventSink) -> None:
        """Connect, warm caches and begin emitting events into ``sink``."""

    async def close(self) -> None:
        """Stop background work; leaves sessions' compute running."""

    def profiles(self) -> Mapping[str, Profile]:
        """The named presets sessions may choose from, by name (sorted); empty when none."""

    def validate(self, spec: SessionSpec) -> None:
        """Raise :class:`~raworc_spawner.errors.ValidationError` if ``spec`` cannot be run."""

    async def create(self, spec: SessionSpec) -> Placement:
        """Make sure the workspace exists and compute is starting; return the ids."""

    async def wait_ready(self, session_id: str, *, timeout: float) -> Placement:
        """Wait until compute is running; raise ``SessionFailed`` on a fatal condition.

        Raises ``TimeoutError`` when ``timeout`` seconds pass first.
        """

    async def pause(self, session_id: str) -> None:
        """Remove the compute and keep the workspace."""

    async def delete(self, session_id: str) -> None:
        """Remove the compute, then the workspace. Returns once both are gone."""

    def compute_state(self, session_id: str) -> ComputeState:
        """The compute's state from the backend's cache, without I/O."""

    def address(self, session_id: str) -> str | None:
        """The IP address the running compute listens on (None when not running); no I/O."""

    async def status(self, session_id: str) -> BackendStatus:
        """The session's compute and workspace as the backend sees them now.

        ``to_dict()`` of the answer is the JSON the status endpoint shows.
        """

    def logs(self, session_id: str, *, tail: int | None, follow: bool) -> AsyncIterator[str]:
        """The compute's output, line by line; with ``follow`` it keeps streaming."""

    async def inventory(self) -> Inventory:
        """What exists now (this instance's objects only), for reconciliation with the records."""

    async def describe(self, session_ids: Collection[str]) -> Sequence[FoundSession]:
        """The sessions among ``session_ids`` this instance has a workspace or compute of.

        Rebuilt from what the objects carry (annotations, local record files); ids with
        nothing, or with objects that carry too little to rebuild a record, are absent.
        """

    async def foreign(self) -> Sequence[ForeignObject]:
        """Objects with the session labels that belong to another instance (or to none)."""

    async def update_recorded(
        self, session_id: str, *, name: str, waiting_timeout_seconds: int | None
    ) -> None:
        """Record a session's changed fields on its objects (what :meth:`describe` reads back).

        Nothing when the session has no objects (or only another instance's).
        """

    async def claim(self, session_ids: Collection[str]) -> Sequence[str]:
        """Mark objects that name no owner instance as this instance's, for these sessions.

        For objects made before owners were recorded: the caller passes the ids its store has
        records of. Returns the ids of the sessions whose objects were claimed, once
        :meth:`inventory` and the caches show them.
        """

    def waiting_on(self, session_id: str) -> str | None:
        """What a starting session's compute is waiting for now, in words, without I/O.

        E.g. ``"pulling image python:3.11-slim"``, ``"claim session-pvc-… to bind"``, ``"a
        node with enough cpu"``; None when nothing is known (or it is running).
        """

    async def usage(self, session_ids: Collection[str]) -> Mapping[str, float]:
        """CPU the sessions' compute used recently, in millicores (1000 = one core).

        Averaged over the last sample window the backend has (the metrics API's window on
        Kubernetes; since the previous call locally). Sessions without running compute or
        without a sample yet are absent from the answer.
        """
