"""The Kubernetes backend: a PVC and a pod per session, watched through shared caches.

Creating a session sends two writes at once (the PVC and the pod; the scheduler holds the pod
until its claim is bound). A pod that can never become ready (it ended, is stuck, or was
rendered from settings since changed) is deleted first and replaced. Waiting for readiness,
status reads and failure detection are answered from three informers (pods and PVCs labelled
``app=raworc,component=session,raworc.dev/instance=<instance_name>``, and events about session
objects), so a waiting session costs the API server nothing. Objects of other instances are
never in the caches, so nothing here changes them (see :mod:`~raworc_spawner.backends.
kubernetes.ownership`). Whatever the caches do not hold (waiters, current objects, clocks,
believed events) is one :class:`~raworc_spawner.backends.kubernetes.tracked.Tracked` record per
session; the cache listeners that keep it are :class:`~raworc_spawner.backends.kubernetes.
watching.Watching`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

from traitlets import Unicode, validate

from raworc_spawner.backends.base import (
    ComputeState,
    EventSink,
    ForeignObject,
    FoundSession,
    Inventory,
    Placement,
    Profile,
    SessionSpec,
)
from raworc_spawner.backends.kubernetes import outcome, podstate, waiting
from raworc_spawner.backends.kubernetes.apierrors import (
    APIConflict,
    APIError,
    APIForbidden,
    APIInvalid,
    APINotFound,
    APIUnreachable,
)
from raworc_spawner.backends.kubernetes.client import ConnectionOptions, KubeClient, RetryPolicy
from raworc_spawner.backends.kubernetes.informer import Informer, Listener, Obj
from raworc_spawner.backends.kubernetes.manifests import SPEC_HASH_ANNOTATION, ManifestRenderer
from raworc_spawner.backends.kubernetes.naming import (
    NETWORK_POLICY_NAME,
    instance_of,
    instance_selector,
    is_label_value,
    pod_name,
    pvc_name,
    session_id_of,
)
from raworc_spawner.backends.kubernetes.options import BackendOptions
from raworc_spawner.backends.kubernetes.ownership import Ownership, not_ours
from raworc_spawner.backends.kubernetes.removal import Removal
from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
from raworc_spawner.backends.kubernetes.tracked import TrackedSessions
from raworc_spawner.backends.kubernetes.usage import millicores_by_session
from raworc_spawner.backends.kubernetes.watching import PODS, PVCS, Kind, Watching
from raworc_spawner.backends.status import ComputeStatus, KubernetesStatus
from raworc_spawner.errors import BackendError, InvalidConfig, SessionFailed

METRICS_MISSING = (
    "the metrics API (metrics.k8s.io/v1beta1) is not served: session CPU use is unknown and "
    "does not count as activity until it is"
)


class KubernetesBackend(BackendOptions):
    """Runs each session as a pod with a PVC workspace (``KUBERNETES_ENABLED=true``)."""

    name = "kubernetes"

    # Not configurable here: the composition root derives it (RaworcApp.instance_name).
    instance_name = Unicode(
        "raworc",
        help="""The owner instance of the session objects this backend creates and acts on: the
        value of their ``raworc.dev/instance`` label and annotation (a label value, at most 63
        characters). Objects of other instances are reported by foreign(), never touched.""",
    )

    @validate("instance_name")
    def _check_instance_name(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not value or not is_label_value(value):
            raise InvalidConfig(
                "KubernetesBackend.instance_name", value, "a label value of 1-63 characters"
            )
        return str(value)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The traits say how to reach the API server and how patient to be; what a session's
        # pod and PVC look like is KubernetesSettings, which checks itself here.
        self.settings = KubernetesSettings(parent=self)
        self.renderer = ManifestRenderer(self.settings, instance_name=self.instance_name)
        self.client: KubeClient | None = None
        self._tracked = TrackedSessions(events_kept=self.events_per_session)
        self.watching = Watching(self, self._tracked)
        own = instance_selector(self.instance_name)
        self.pods = self._informer(PODS, self.watching.on_pod, label_selector=own)
        self.pvcs = self._informer(PVCS, self.watching.on_pvc, label_selector=own)
        self.events = self._informer(
            "events", self.watching.on_event, keep=podstate.is_session_event, cache=False
        )
        self.removal = Removal(self, self._tracked)
        self.ownership = Ownership(self)
        self._metrics_unavailable = False

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
        self.watching.sink = sink
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
        """Create the PVC and the pod at once (each unless it exists); return their UIDs.

        A pod that can never become ready for this spec is deleted (waited out by uid) and
        replaced from the current settings; a warning or progress event says why. With
        ``spec.expected_volume`` the claim must be that very one, or ``SessionFailed``
        (``WorkspaceLost``) is raised before anything is created; no claim is created then.
        """
        sid = spec.session_id
        self._tracked.track(sid).restart()
        pod_body = self.renderer.render_pod(spec)
        kept = None
        if spec.expected_volume is not None:
            kept = await self.ownership.verified_workspace(spec)
        await self._clear_the_way(sid, pod_body)
        if kept is None:
            # Both run to their end even when one fails, so none is left running unseen.
            results = await asyncio.gather(
                self._ensure(PVCS, sid, lambda: self.renderer.render_pvc(spec)),
                self._ensure(PODS, sid, lambda: pod_body),
                return_exceptions=True,
            )
            pvc_result, pod_result = results
            if isinstance(pvc_result, BaseException):
                raise pvc_result
            if isinstance(pod_result, BaseException):
                raise pod_result
            made_pvc, made_pod = pvc_result, pod_result
        else:
            made_pvc, made_pod = kept, await self._ensure(PODS, sid, lambda: pod_body)
        self.watching.adopt(sid, made_pod, made_pvc)
        self.watching.progress(sid, "PVCCreated", f"workspace claim {pvc_name(sid)} ready to bind")
        self.watching.progress(sid, "PodCreated", f"pod {pod_name(sid)} created")
        return podstate.placement(made_pod, made_pvc)

    async def _clear_the_way(self, sid: str, pod_body: Obj) -> None:
        """Replace a pod that cannot serve this start; wait out objects already going."""
        pod = self.cached(PODS, sid)
        if pod is not None and not podstate.is_terminating(pod):
            spec_hash = pod_body["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
            why = outcome.why_replace(pod, spec_hash=spec_hash)
            if why is not None:
                text, failed = why
                level = Kind.WARNING if failed else Kind.PROGRESS
                message = f"replacing pod {pod_name(sid)} ({text})"
                self.watching.emit(sid, level, message, "PodReplaced")
                await self.removal.delete_and_wait(PODS, sid)
        for resource in (PODS, PVCS):
            obj = self.cached(resource, sid)
            if podstate.is_terminating(obj):
                await self.removal.wait_gone(resource, sid, uid=_uid(obj))

    async def wait_ready(self, session_id: str, *, timeout: float) -> Placement:
        """Resolve when the pod is Running and Ready; fail fast on a fatal condition."""
        future: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
        tracked = self._tracked.track(session_id)
        tracked.waiters.append(future)
        try:
            self.watching.evaluate(session_id)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            with contextlib.suppress(ValueError):
                tracked.waiters.remove(future)

    async def pause(self, session_id: str) -> None:
        """Delete the pod (gracefully, whatever state it is in) and wait; the PVC stays."""
        tracked = self._tracked.track(session_id)
        tracked.stopping = True
        tracked.settle(SessionFailed("Stopped", "the session was stopped"))
        await self.removal.delete_and_wait(PODS, session_id)
        tracked.running = False

    async def delete(self, session_id: str) -> None:
        """Delete the pod, wait until it is gone, then the PVC, and wait for that too."""
        await self.pause(session_id)
        await self.removal.delete_and_wait(PVCS, session_id)
        self._tracked.forget(session_id)

    async def ensure_network_policy(self) -> None:
        """Create the session isolation NetworkPolicy, or bring it up to date."""
        client = self.require_client()
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
        """From the pod cache: running only when Running, Ready and not terminating; failed
        once the session container exited or the pod ended or is stuck."""
        if self._tracked.failure(session_id) is not None:
            return ComputeState.FAILED
        return podstate.compute_state(self.cached(PODS, session_id))

    def address(self, session_id: str) -> str | None:
        """The pod IP, only while the pod is running and ready."""
        if self.compute_state(session_id) is not ComputeState.RUNNING:
            return None
        pod = self.cached(PODS, session_id)
        return ((pod or {}).get("status") or {}).get("podIP")

    async def status(self, session_id: str) -> KubernetesStatus:
        """Pod, PVC and the events about them (these objects only), from the caches."""
        failure = self._tracked.failure(session_id)
        tracked = self._tracked.get(session_id)
        current = {tracked.pod_uid or "", tracked.pvc_uid or ""} if tracked else set()
        return KubernetesStatus(
            backend=self.name,
            namespace=self.namespace,
            compute=ComputeStatus(
                state=self.compute_state(session_id),
                reason=failure.reason if failure else None,
                message=failure.message if failure else None,
            ),
            pod=podstate.pod_summary(self.cached(PODS, session_id)),
            pvc=podstate.pvc_summary(self.cached(PVCS, session_id)),
            events=tracked.events.shown(current - {""}) if tracked else (),
        )

    async def logs(
        self, session_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[str]:
        """The session container's output (nothing when there is no pod)."""
        if self.client is None or self.cached(PODS, session_id) is None:
            return
        try:
            async for line in self.client.pod_logs(
                self.namespace, pod_name(session_id), tail_lines=tail, follow=follow
            ):
                yield line
        except (APIError, APIUnreachable) as e:
            yield f"[logs unavailable: {e}]\n"

    async def inventory(self) -> Inventory:
        """Session ids that have a pod, and those that have a PVC (this instance's only)."""
        return Inventory(compute=frozenset(_ids(self.pods)), workspaces=frozenset(_ids(self.pvcs)))

    async def describe(self, session_ids: Collection[str]) -> Sequence[FoundSession]:
        """These sessions as their cached claim (else pod) annotations describe them."""
        return self.ownership.describe(session_ids)

    async def foreign(self) -> Sequence[ForeignObject]:
        """Session pods and claims of other instances or of none (LISTed, never changed)."""
        return await self.ownership.foreign()

    async def update_recorded(
        self, session_id: str, *, name: str, waiting_timeout_seconds: int | None
    ) -> None:
        """Patch the session's changed fields onto its pod and claim (label and annotations)."""
        await self.ownership.update_recorded(
            session_id, name=name, waiting_timeout_seconds=waiting_timeout_seconds
        )

    async def claim(self, session_ids: Collection[str]) -> Sequence[str]:
        """Label these sessions' objects that name no instance as ours; once cached, their ids."""
        return await self.ownership.claim(session_ids)

    def waiting_on(self, session_id: str) -> str | None:
        """What the session's start (or removal) waits for now, from the caches."""
        if removing := self._removal_holdup(session_id):
            return removing
        tracked = self._tracked.get(session_id)
        return waiting.waiting_on(
            session_id,
            self.cached(PODS, session_id),
            self.cached(PVCS, session_id),
            events=tracked.events if tracked else None,
            pod_uid=tracked.pod_uid if tracked else None,
            provisioning=tracked.provisioning if tracked else None,
        )

    def _removal_holdup(self, session_id: str) -> str | None:
        """What keeps a session's object whose deletion was requested, e.g. a finalizer."""
        for resource in (PODS, PVCS):
            meta = (self.cached(resource, session_id) or {}).get("metadata") or {}
            requested = meta.get("deletionTimestamp")
            if not requested:
                continue
            name = f"{'pod' if resource == PODS else 'persistentvolumeclaim'} {meta.get('name')}"
            finalizers = [f for f in meta.get("finalizers") or [] if f]
            held = f"held by finalizers {', '.join(finalizers)}" if finalizers else "terminating"
            return f"{name} to go: {held} (deletion requested at {requested})"
        return None

    async def usage(self, session_ids: Collection[str]) -> dict[str, float]:
        """Millicores each session's pod used (metrics API), from one LIST of PodMetrics.

        Sessions without a running pod or a sample are absent. Without a metrics API (404),
        the right to read it (403) or its server (503) the answer is empty, with one warning
        until it answers again.
        """
        wanted = set(session_ids)
        if not wanted or self.client is None:
            return {}
        try:
            items = await self.client.list_pod_metrics(
                self.namespace, label_selector=instance_selector(self.instance_name)
            )
        except (APIError, APIUnreachable) as e:
            self._metrics_missing(e)
            return {}
        if self._metrics_unavailable:
            self._metrics_unavailable = False
            self.log.info("the metrics API (metrics.k8s.io/v1beta1) answers again")
        return millicores_by_session(items, wanted)

    def _metrics_missing(self, error: APIError | APIUnreachable) -> None:
        """Warn once per outage of the metrics API (then every call is quiet until it is back)."""
        if self._metrics_unavailable:
            return
        self._metrics_unavailable = True
        if isinstance(error, APINotFound):
            self.log.warning(METRICS_MISSING)
        else:
            self.log.warning(
                "the metrics API (metrics.k8s.io/v1beta1) cannot be read (%s): session CPU use "
                "is unknown and does not count as activity until it can",
                error,
            )

    # -- helpers ------------------------------------------------------------------------------

    def require_client(self) -> KubeClient:
        if self.client is None:
            raise BackendError("the Kubernetes backend is not started")
        return self.client

    def cached(self, resource: str, sid: str) -> Obj | None:
        """The session's pod or PVC from the cache."""
        informer = self.pods if resource == PODS else self.pvcs
        return informer.get(_object_name(resource, sid))

    async def _ensure(self, resource: str, sid: str, render: Callable[[], Obj]) -> Obj:
        """Create the object unless cached; on AlreadyExists use it if it is this session's and
        this instance's (another instance's, or none's, fails the start and is left alone).

        A pod found that way (the cache was behind) that cannot serve the start is deleted by
        uid and created again, once.
        """
        cached = self.cached(resource, sid)
        if cached is not None:
            return cached
        body = render()
        made = await self._create_or_get(resource, sid, body)
        if made is None:  # an unusable pod was in the way: it is gone now, once more
            made = await self._create_or_get(resource, sid, body, created_only=True)
        if made is None:
            raise SessionFailed("AlreadyExists", f"{resource} {body['metadata']['name']} exists")
        return made

    async def _create_or_get(
        self, resource: str, sid: str, body: Obj, *, created_only: bool = False
    ) -> Obj | None:
        """The created object, or the existing one; None when an unusable pod was removed."""
        client = self.require_client()
        name = body["metadata"]["name"]
        try:
            return await client.create(resource, self.namespace, body)
        except APIConflict as e:
            if created_only:
                raise SessionFailed("AlreadyExists", f"{resource} {name} keeps coming back") from e
            existing = await client.get(resource, self.namespace, name)
        except (APIInvalid, APIForbidden) as e:
            raise _refused(resource, name, e) from e
        if session_id_of(existing) != sid:
            raise SessionFailed(
                "AlreadyExists", f"{resource} {name} exists and belongs to another owner"
            )
        if instance_of(existing) != self.instance_name:
            raise SessionFailed("AlreadyExists", not_ours(resource, name, instance_of(existing)))
        spec_hash = (body["metadata"].get("annotations") or {}).get(SPEC_HASH_ANNOTATION, "")
        if resource == PODS and (
            podstate.is_terminating(existing) or outcome.why_replace(existing, spec_hash=spec_hash)
        ):
            await self.removal.delete_and_wait(PODS, sid, obj=existing)
            return None
        return existing


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


def _uid(obj: Obj | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("uid")


def _ids(informer: Informer) -> list[str]:
    ids = (session_id_of(obj) for obj in informer.objects.values())
    return [sid for sid in ids if sid]
