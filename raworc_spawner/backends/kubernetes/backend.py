"""The Kubernetes backend: a PVC and a pod per session, watched through shared caches.

Creating a session sends exactly two writes at once (the PVC and the pod; the scheduler holds
the pod until its claim is bound). Waiting for readiness, status reads and failure detection
are answered from three informers (pods and PVCs labelled ``app=raworc,component=session``,
and events about session objects), so a waiting session costs the API server nothing. What is
not in the caches (waiters, failures, timers, recent events) is kept in one
:class:`~raworc_spawner.backends.kubernetes.tracked.Tracked` record per session, dropped in
one place when the session goes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import (
    BackendEvent,
    BackendEventKind,
    ComputeState,
    EventSink,
    Inventory,
    Placement,
    Profile,
    SessionSpec,
)
from raworc_spawner.backends.kubernetes import podstate
from raworc_spawner.backends.kubernetes.apierrors import (
    APIConflict,
    APIError,
    APIForbidden,
    APIInvalid,
    APINotFound,
)
from raworc_spawner.backends.kubernetes.client import ConnectionOptions, KubeClient, RetryPolicy
from raworc_spawner.backends.kubernetes.informer import Informer, Listener, Obj
from raworc_spawner.backends.kubernetes.manifests import ManifestRenderer
from raworc_spawner.backends.kubernetes.naming import (
    NETWORK_POLICY_NAME,
    SESSION_SELECTOR,
    pod_name,
    pvc_name,
    session_id_of,
)
from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
from raworc_spawner.backends.kubernetes.tracked import Tracked, TrackedSessions
from raworc_spawner.backends.status import ComputeStatus, KubernetesStatus
from raworc_spawner.errors import BackendError, SessionFailed

PODS = "pods"
PVCS = "persistentvolumeclaims"

Kind = BackendEventKind


class KubernetesBackend(LoggingConfigurable):
    """Runs each session as a pod with a PVC workspace (``KUBERNETES_ENABLED=true``)."""

    name = "kubernetes"

    api_url = Unicode(
        "",
        help="""URL of the Kubernetes API server. Empty: detect (in-cluster ServiceAccount,
        then KUBECONFIG / ~/.kube/config). When set it is used as is, with api_token.""",
    ).tag(config=True)
    api_token = Unicode("", help="""Bearer token for api_url.""").tag(config=True)
    api_token_file = Unicode("", help="""File holding the bearer token for api_url.""").tag(
        config=True
    )
    ca_file = Unicode("", help="""CA bundle for api_url's TLS certificate.""").tag(config=True)
    verify_tls = Bool(True, help="""Verify api_url's TLS certificate.""").tag(config=True)
    kubeconfig = Unicode(
        "", help="""Kubeconfig file. Empty: $KUBECONFIG, then ~/.kube/config."""
    ).tag(config=True)
    context = Unicode("", help="""Kubeconfig context. Empty: the current context.""").tag(
        config=True
    )
    api_retries = Int(
        5,
        help="""Attempts per API request when it fails with 429, 5xx or a connection error
        (1 = no retry). Waits grow exponentially with jitter; Retry-After is honoured.""",
    ).tag(config=True)
    api_backoff_seconds = Float(0.1, help="""First retry wait, in seconds.""").tag(config=True)
    api_backoff_max_seconds = Float(5.0, help="""Longest retry wait, in seconds.""").tag(
        config=True
    )
    delete_grace_seconds = Int(
        -1,
        help="""Grace period (seconds) given to a session pod when it is paused or deleted.
        -1 uses the pod's terminationGracePeriodSeconds; 0 kills at once.""",
    ).tag(config=True)
    unschedulable_grace_seconds = Float(
        30.0,
        help="""Seconds a pod may stay unschedulable (no node fits) before the session fails
        with reason Unschedulable and the scheduler's message. 0 fails at once.""",
    ).tag(config=True)
    events_per_session = Int(
        50, help="""Kubernetes events kept in memory per session (a ring)."""
    ).tag(config=True)
    watch_timeout_seconds = Int(
        300,
        help="""Server-side timeout of each watch request; the watch then resumes from the
        last resourceVersion (no re-LIST).""",
    ).tag(config=True)
    gone_timeout_seconds = Float(
        120.0,
        help="""Seconds to wait for a deleted pod or PVC to disappear before giving up.""",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The traits above say how to reach the API server and how patient to be; what a
        # session's pod and PVC look like is KubernetesSettings, which checks itself here.
        self.settings = KubernetesSettings(parent=self)
        self.renderer = ManifestRenderer(self.settings)
        self.client: KubeClient | None = None
        self._sink: EventSink = lambda event: None
        self._tracked = TrackedSessions(events_kept=self.events_per_session)
        self.pods = self._informer(PODS, self._on_pod, label_selector=SESSION_SELECTOR)
        self.pvcs = self._informer(PVCS, self._on_pvc, label_selector=SESSION_SELECTOR)
        self.events = self._informer(
            "events", self._on_event, keep=podstate.is_session_event, cache=False
        )

    def _informer(self, resource: str, listener: Listener, **options: Any) -> Informer:
        """A watch cache of ``resource`` in the sessions' namespace, feeding ``listener``."""
        informer = Informer(
            resource, self.namespace, watch_timeout_seconds=self.watch_timeout_seconds, **options
        )
        informer.add_listener(listener)
        return informer

    @property
    def namespace(self) -> str:
        """The sessions' Kubernetes namespace (``KubernetesSettings.namespace``)."""
        return str(self.settings.namespace)

    # -- lifecycle ----------------------------------------------------------------------------

    def connection_options(self) -> ConnectionOptions:
        """The explicit connection settings (empty ones mean "detect")."""
        return ConnectionOptions(
            api_url=self.api_url,
            token=self.api_token,
            token_file=self.api_token_file,
            ca_file=self.ca_file,
            verify_tls=self.verify_tls,
            kubeconfig=self.kubeconfig,
            context=self.context,
        )

    async def connect(self, *, attempts: int | None = None) -> KubeClient:
        """A client for the configured cluster, retrying as configured (or ``attempts`` times)."""
        retry = RetryPolicy(
            attempts or self.api_retries, self.api_backoff_seconds, self.api_backoff_max_seconds
        )
        return await KubeClient.connect(self.connection_options(), retry=retry)

    async def start(self, sink: EventSink) -> None:
        """Connect, fill the caches and start watching."""
        self._sink = sink
        self.client = client = await self.connect()
        self.log.info("Kubernetes API via %s; namespace %s", client.source, self.namespace)
        try:
            informers = (self.pods, self.pvcs, self.events)
            await asyncio.gather(*(informer.start(client) for informer in informers))
            if self.settings.create_network_policy:
                await self.ensure_network_policy()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the watches and close the client; pods keep running."""
        for informer in (self.pods, self.pvcs, self.events):
            await informer.close()
        self._tracked.close()
        if self.client is not None:
            await self.client.close()
            self.client = None

    def profiles(self) -> dict[str, Profile]:
        """The configured profiles (name → description, image, resources…)."""
        return self.renderer.profile_catalog()

    def validate(self, spec: SessionSpec) -> None:
        """Reject unknown profiles and specs that cannot render."""
        self.renderer.validate_spec(spec)

    # -- commands -----------------------------------------------------------------------------

    async def create(self, spec: SessionSpec) -> Placement:
        """Create the PVC and the pod at once (each unless it exists); return their UIDs."""
        sid = spec.session_id
        self._tracked.track(sid).restart()
        for resource in (PODS, PVCS):
            if podstate.is_terminating(self._cached(resource, sid)):
                await self._wait_gone(resource, sid)
        made_pvc, made_pod = await asyncio.gather(
            self._ensure(PVCS, sid, lambda: self.renderer.render_pvc(spec)),
            self._ensure(PODS, sid, lambda: self.renderer.render_pod(spec)),
        )
        self._progress(sid, "PVCCreated", f"workspace claim {pvc_name(sid)} ready to bind")
        self._progress(sid, "PodCreated", f"pod {pod_name(sid)} created")
        return podstate.placement(made_pod, made_pvc)

    async def wait_ready(self, session_id: str, *, timeout: float) -> Placement:
        """Resolve when the pod is Running and Ready; fail fast on a fatal condition."""
        future: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
        tracked = self._tracked.track(session_id)
        tracked.waiters.append(future)
        try:
            self._evaluate(session_id)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            with contextlib.suppress(ValueError):
                tracked.waiters.remove(future)

    async def pause(self, session_id: str) -> None:
        """Delete the pod (gracefully) and wait until it is gone; the PVC stays."""
        tracked = self._tracked.track(session_id)
        tracked.stopping = True
        tracked.settle(SessionFailed("Stopped", "the session was stopped"))
        await self._delete_and_wait(PODS, session_id)
        tracked.running = False

    async def delete(self, session_id: str) -> None:
        """Delete the pod, wait until it is gone, then the PVC, and wait for that too."""
        await self.pause(session_id)
        await self._delete_and_wait(PVCS, session_id)
        self._tracked.forget(session_id)

    async def ensure_network_policy(self) -> None:
        """Create the session isolation NetworkPolicy, or bring it up to date."""
        client = self._client()
        body = self.renderer.render_network_policy()
        try:
            await client.create("networkpolicies", self.namespace, body)
            self.log.info("created NetworkPolicy %s", NETWORK_POLICY_NAME)
        except APIConflict:
            current = await client.get("networkpolicies", self.namespace, NETWORK_POLICY_NAME)
            if current.get("spec") != body.get("spec"):
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                await client.replace("networkpolicies", self.namespace, NETWORK_POLICY_NAME, body)
                self.log.info("updated NetworkPolicy %s", NETWORK_POLICY_NAME)

    # -- queries ------------------------------------------------------------------------------

    def compute_state(self, session_id: str) -> ComputeState:
        """From the pod cache: running only when Running, Ready and not terminating."""
        if self._tracked.failure(session_id) is not None:
            return ComputeState.FAILED
        return podstate.compute_state(self._cached(PODS, session_id))

    def address(self, session_id: str) -> str | None:
        """The pod IP, only while the pod is running and ready."""
        pod = self._cached(PODS, session_id)
        if not podstate.is_ready(pod):
            return None
        return ((pod or {}).get("status") or {}).get("podIP")

    async def status(self, session_id: str) -> KubernetesStatus:
        """Pod, PVC and recent events, from the caches."""
        failure = self._tracked.failure(session_id)
        tracked = self._tracked.get(session_id)
        return KubernetesStatus(
            backend=self.name,
            namespace=self.namespace,
            compute=ComputeStatus(
                state=self.compute_state(session_id),
                reason=failure.reason if failure else None,
                message=failure.message if failure else None,
            ),
            pod=podstate.pod_summary(self._cached(PODS, session_id)),
            pvc=podstate.pvc_summary(self._cached(PVCS, session_id)),
            events=tuple(tracked.events) if tracked else (),
        )

    async def logs(
        self, session_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[str]:
        """The session container's output (nothing when there is no pod)."""
        if self.client is None or self._cached(PODS, session_id) is None:
            return
        try:
            async for line in self.client.pod_logs(
                self.namespace, pod_name(session_id), tail_lines=tail, follow=follow
            ):
                yield line
        except (APINotFound, APIError) as e:
            yield f"[logs unavailable: {e}]\n"

    async def inventory(self) -> Inventory:
        """Session ids that have a pod, and those that have a PVC."""
        return Inventory(compute=frozenset(_ids(self.pods)), workspaces=frozenset(_ids(self.pvcs)))

    # -- cache listeners ----------------------------------------------------------------------

    def _on_pod(self, kind: str, pod: Obj) -> None:
        sid = session_id_of(pod)
        if sid is None:
            return
        tracked = self._tracked.get(sid)
        if kind == "DELETED":
            if tracked is not None:
                tracked.resolve_gone(pod_name(sid))
                if tracked.running and not tracked.stopping:
                    self._emit(sid, Kind.LOST, "the session pod was deleted", "PodDeleted")
                tracked.running = False
                self._forget_if_gone(sid)
            return
        self._on_pod_changed(sid, pod, tracked)
        self._evaluate(sid)

    def _on_pod_changed(self, sid: str, pod: Obj, tracked: Tracked | None) -> None:
        failure = podstate.pod_failure(pod)
        terminating = podstate.is_terminating(pod)
        if tracked is not None and tracked.running and not tracked.stopping:
            # Deleted by someone else (eviction, node drain, kubectl): the compute is lost but
            # nothing is wrong with the session. A failure inside the pod is an exit.
            if terminating:
                self._emit(sid, Kind.LOST, "the session pod is being deleted", "PodDeleted")
            elif failure:
                self._emit(sid, Kind.EXITED, failure.message, failure.reason)
        if tracked is not None and (failure or terminating):
            tracked.running = False
        if podstate.is_ready(pod):
            self._tracked.track(sid).running = True

    def _on_pvc(self, kind: str, pvc: Obj) -> None:
        sid = session_id_of(pvc)
        if sid is None:
            return
        if kind == "DELETED":
            tracked = self._tracked.get(sid)
            if tracked is not None:
                tracked.resolve_gone(pvc_name(sid))
                tracked.pvc_phase = None
                self._forget_if_gone(sid)
            return
        phase = (pvc.get("status") or {}).get("phase") or "Pending"
        tracked = self._tracked.track(sid)
        if tracked.pvc_phase != phase:
            tracked.pvc_phase = phase
            if phase == "Bound":
                volume = (pvc.get("spec") or {}).get("volumeName")
                self._progress(sid, "PVCBound", f"workspace volume {volume} bound")

    def _on_event(self, kind: str, event: Obj) -> None:
        if kind == "DELETED":
            return
        sid = podstate.event_session_id(event)
        if sid is None:
            return
        tracked = self._tracked.get(sid)
        if tracked is None:
            if self._cached(PODS, sid) is None and self._cached(PVCS, sid) is None:
                return  # late news of a session that is gone: nothing to keep it for
            tracked = self._tracked.track(sid)
        summary = podstate.event_summary(event)
        tracked.events.append(summary)
        level = Kind.WARNING if event.get("type") == "Warning" else Kind.PROGRESS
        self._emit(sid, level, f"{summary.object}: {summary.message}", summary.reason)
        failure = podstate.event_failure(event)
        if failure is not None and not tracked.stopping:
            tracked.failure = failure
            self._evaluate(sid)

    def _evaluate(self, sid: str) -> None:
        """Settle the session's readiness waiters if the caches now say ready or failed."""
        tracked = self._tracked.get(sid)
        if tracked is None or not tracked.waiters:
            return
        pod = self._cached(PODS, sid)
        failure = tracked.failure or (pod and podstate.pod_failure(pod))
        failure = failure or tracked.unschedulable(
            podstate.unschedulable_message(pod) if pod else None,
            grace=self.unschedulable_grace_seconds,
            recheck=lambda: self._recheck(sid),
        )
        if failure:
            tracked.failure = failure
            tracked.settle(SessionFailed(failure.reason, failure.message))
        elif podstate.is_ready(pod):
            tracked.settle(podstate.placement(pod, self._cached(PVCS, sid)))

    def _recheck(self, sid: str) -> None:
        tracked = self._tracked.get(sid)
        if tracked is not None:
            tracked.recheck = None
            self._evaluate(sid)

    def _forget_if_gone(self, sid: str) -> None:
        """Forget a session whose pod and PVC were both deleted from outside, once idle."""
        tracked = self._tracked.get(sid)
        if tracked is None or not tracked.idle:
            return
        if self._cached(PODS, sid) is None and self._cached(PVCS, sid) is None:
            self._tracked.forget(sid)

    # -- helpers ------------------------------------------------------------------------------

    def _client(self) -> KubeClient:
        if self.client is None:
            raise BackendError("the Kubernetes backend is not started")
        return self.client

    def _cached(self, resource: str, sid: str) -> Obj | None:
        """The session's pod or PVC from the cache."""
        informer = self.pods if resource == PODS else self.pvcs
        return informer.get(_object_name(resource, sid))

    async def _ensure(self, resource: str, sid: str, render: Callable[[], Obj]) -> Obj:
        """Create the object unless cached; on AlreadyExists adopt it if it is this session's."""
        cached = self._cached(resource, sid)
        if cached is not None:
            return cached
        client = self._client()
        body = render()
        name = body["metadata"]["name"]
        try:
            return await client.create(resource, self.namespace, body)
        except APIConflict:
            existing = await client.get(resource, self.namespace, name)
        except (APIInvalid, APIForbidden) as e:
            raise _refused(resource, name, e) from e
        if session_id_of(existing) != sid:
            raise SessionFailed(
                "AlreadyExists", f"{resource} {name} exists and belongs to another owner"
            )
        return existing

    async def _delete_and_wait(self, resource: str, sid: str) -> None:
        if self._cached(resource, sid) is None:
            return
        name = _object_name(resource, sid)
        grace = self.delete_grace_seconds if self.delete_grace_seconds >= 0 else None
        with contextlib.suppress(APINotFound):
            await self._client().delete(
                resource,
                self.namespace,
                name,
                grace_period_seconds=grace if resource == PODS else None,
            )
        await self._wait_gone(resource, sid)

    async def _wait_gone(self, resource: str, sid: str) -> None:
        if self._cached(resource, sid) is None:
            return
        name = _object_name(resource, sid)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._tracked.track(sid).gone.setdefault(name, [])
        waiting.append(future)
        try:
            async with asyncio.timeout(self.gone_timeout_seconds):
                await future
        except TimeoutError as e:
            raise BackendError(
                f"{resource} {name} still exists after {self.gone_timeout_seconds:g} s"
            ) from e
        finally:
            waiting.remove(future)
            tracked = self._tracked.get(sid)
            if tracked is not None and not waiting:
                tracked.gone.pop(name, None)

    def _emit(self, sid: str, kind: BackendEventKind, message: str, reason: str | None) -> None:
        self._sink(BackendEvent(sid, kind, message, reason))

    def _progress(self, sid: str, reason: str, message: str) -> None:
        self._emit(sid, Kind.PROGRESS, message, reason)


def _refused(resource: str, name: str, error: APIInvalid | APIForbidden) -> SessionFailed:
    """Why the API server refused to create ``name``, as the session's failure."""
    if isinstance(error, APIForbidden):
        hint = "run `raworc-spawner doctor`"
        return SessionFailed("Forbidden", f"not allowed to create {resource} ({hint}): {error}")
    causes = "; ".join(
        f"{c.get('field')}: {c.get('message')}" for c in error.details.get("causes", [])
    )
    return SessionFailed("Invalid", f"{resource} {name} rejected: {causes or error}")


def _object_name(resource: str, sid: str) -> str:
    return pod_name(sid) if resource == PODS else pvc_name(sid)


def _ids(informer: Informer) -> list[str]:
    ids = (session_id_of(obj) for obj in informer.objects.values())
    return [sid for sid in ids if sid]
