"""The Kubernetes backend: a PVC and a pod per session, watched through shared caches.

Creating a session sends exactly two writes at once (the PVC and the pod; the scheduler holds
the pod until its claim is bound). Waiting for readiness, status reads and failure detection
are answered from three informers (pods and PVCs labelled ``app=raworc,component=session``,
and events about session objects), so a waiting session costs the API server nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import (
    BackendEvent,
    ComputeState,
    EventSink,
    Inventory,
    Placement,
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
from raworc_spawner.backends.kubernetes.informer import Informer, Obj
from raworc_spawner.backends.kubernetes.manifests import ManifestRenderer
from raworc_spawner.backends.kubernetes.naming import (
    NETWORK_POLICY_NAME,
    SESSION_SELECTOR,
    pod_name,
    pvc_name,
    session_id_of,
)
from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
from raworc_spawner.errors import BackendError, SessionFailed

PVC_PREFIX = "session-pvc-"
POD_PREFIX = "session-"


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
        self.settings = KubernetesSettings(parent=self)
        self.settings.check()
        self.renderer = ManifestRenderer(self.settings)
        self.namespace = self.settings.namespace
        self.client: KubeClient | None = None
        self._sink: EventSink = lambda event: None
        self._waiters: dict[str, list[asyncio.Future[Placement]]] = {}
        self._gone: dict[str, list[asyncio.Future[None]]] = {}
        self._recent: dict[str, deque[dict[str, Any]]] = {}
        self._failures: dict[str, podstate.Failure] = {}
        self._unschedulable_since: dict[str, float] = {}
        self._stopping: set[str] = set()
        self._running: set[str] = set()
        self._pvc_phase: dict[str, str] = {}
        self.pods: Informer
        self.pvcs: Informer
        self.events: Informer

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
        timeout = self.watch_timeout_seconds
        self.pods = Informer(
            client,
            "pods",
            self.namespace,
            label_selector=SESSION_SELECTOR,
            watch_timeout_seconds=timeout,
        )
        self.pvcs = Informer(
            client,
            "persistentvolumeclaims",
            self.namespace,
            label_selector=SESSION_SELECTOR,
            watch_timeout_seconds=timeout,
        )
        self.events = Informer(
            client,
            "events",
            self.namespace,
            keep=_is_session_event,
            cache=False,
            watch_timeout_seconds=timeout,
        )
        self.pods.add_listener(self._on_pod)
        self.pvcs.add_listener(self._on_pvc)
        self.events.add_listener(self._on_event)
        try:
            await asyncio.gather(self.pods.start(), self.pvcs.start(), self.events.start())
            self._running = {
                sid for sid in self._ids(self.pods) if podstate.is_ready(self._pod(sid))
            }
            if self.settings.create_network_policy:
                await self.ensure_network_policy()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the watches and close the client; pods keep running."""
        for informer in (getattr(self, n, None) for n in ("pods", "pvcs", "events")):
            if informer is not None:
                await informer.close()
        if self.client is not None:
            await self.client.close()
            self.client = None

    def profiles(self) -> Mapping[str, Mapping[str, Any]]:
        """The configured profiles (name → description, image, resources…)."""
        return self.renderer.profile_catalog()

    def validate(self, spec: SessionSpec) -> None:
        """Reject unknown profiles and specs that cannot render."""
        self.renderer.validate_spec(spec)

    # -- commands -----------------------------------------------------------------------------

    async def create(self, spec: SessionSpec) -> Placement:
        """Create the PVC and the pod at once (each unless it exists); return their UIDs."""
        sid = spec.session_id
        self._failures.pop(sid, None)
        self._unschedulable_since.pop(sid, None)
        self._stopping.discard(sid)
        pod, pvc = self._pod(sid), self.pvcs.get(pvc_name(sid))
        if podstate.is_terminating(pod):
            await self._wait_gone("pods", pod_name(sid))
            pod = None
        if podstate.is_terminating(pvc):
            await self._wait_gone("persistentvolumeclaims", pvc_name(sid))
            pvc = None
        made_pvc, made_pod = await asyncio.gather(
            self._ensure(
                "persistentvolumeclaims", sid, pvc, lambda: self.renderer.render_pvc(spec)
            ),
            self._ensure("pods", sid, pod, lambda: self.renderer.render_pod(spec)),
        )
        self._progress(sid, "PVCCreated", f"workspace claim {pvc_name(sid)} ready to bind")
        self._progress(sid, "PodCreated", f"pod {pod_name(sid)} created")
        return self._placement(made_pod, made_pvc)

    async def wait_ready(self, session_id: str, *, timeout: float) -> Placement:
        """Resolve when the pod is Running and Ready; fail fast on a fatal condition."""
        future: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(session_id, []).append(future)
        try:
            self._evaluate(session_id)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            waiters = self._waiters.get(session_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(session_id, None)

    async def pause(self, session_id: str) -> None:
        """Delete the pod (gracefully) and wait until it is gone; the PVC stays."""
        self._stopping.add(session_id)
        self._cancel_waiters(session_id)
        await self._delete_and_wait("pods", pod_name(session_id))
        self._running.discard(session_id)

    async def delete(self, session_id: str) -> None:
        """Delete the pod, wait until it is gone, then the PVC, and wait for that too."""
        await self.pause(session_id)
        await self._delete_and_wait("persistentvolumeclaims", pvc_name(session_id))
        for table in (self._recent, self._failures, self._unschedulable_since):
            table.pop(session_id, None)
        self._stopping.discard(session_id)

    async def ensure_network_policy(self) -> None:
        """Create the session isolation NetworkPolicy, or bring it up to date."""
        assert self.client is not None
        body = self.renderer.render_network_policy()
        try:
            await self.client.create("networkpolicies", self.namespace, body)
            self.log.info("created NetworkPolicy %s", NETWORK_POLICY_NAME)
        except APIConflict:
            current = await self.client.get("networkpolicies", self.namespace, NETWORK_POLICY_NAME)
            if current.get("spec") != body.get("spec"):
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                await self.client.replace(
                    "networkpolicies", self.namespace, NETWORK_POLICY_NAME, body
                )
                self.log.info("updated NetworkPolicy %s", NETWORK_POLICY_NAME)

    # -- queries ------------------------------------------------------------------------------

    def compute_state(self, session_id: str) -> ComputeState:
        """From the pod cache: running only when Running, Ready and not terminating."""
        if session_id in self._failures:
            return ComputeState.FAILED
        return podstate.compute_state(self._pod(session_id))

    def address(self, session_id: str) -> str | None:
        """The pod IP, only while the pod is running and ready."""
        pod = self._pod(session_id)
        if not podstate.is_ready(pod):
            return None
        return ((pod or {}).get("status") or {}).get("podIP")

    async def status(self, session_id: str) -> dict[str, Any]:
        """Pod, PVC and recent events, from the caches."""
        failure = self._failures.get(session_id)
        pod = self._pod(session_id)
        return {
            "backend": self.name,
            "namespace": self.namespace,
            "compute": {
                "state": self.compute_state(session_id).value,
                "reason": failure.reason if failure else None,
                "message": failure.message if failure else None,
            },
            "pod": podstate.pod_summary(pod),
            "pvc": podstate.pvc_summary(self.pvcs.get(pvc_name(session_id))),
            "events": list(self._recent.get(session_id, ())),
        }

    async def logs(
        self, session_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[str]:
        """The session container's output (nothing when there is no pod)."""
        if self.client is None or self._pod(session_id) is None:
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
        return Inventory(
            compute=frozenset(self._ids(self.pods)), workspaces=frozenset(self._ids(self.pvcs))
        )

    # -- cache listeners ----------------------------------------------------------------------

    def _on_pod(self, kind: str, pod: Obj) -> None:
        sid = session_id_of(pod)
        if sid is None:
            return
        if kind == "DELETED":
            self._resolve_gone(pod_name(sid))
            if sid in self._running and sid not in self._stopping:
                self._sink(BackendEvent(sid, "lost", "the session pod was deleted", "PodDeleted"))
            self._running.discard(sid)
            return
        failure = podstate.pod_failure(pod)
        if sid in self._running and sid not in self._stopping:
            # Deleted by someone else (eviction, node drain, kubectl): the compute is lost but
            # nothing is wrong with the session. A failure inside the pod is an error.
            if podstate.is_terminating(pod):
                self._sink(
                    BackendEvent(sid, "lost", "the session pod is being deleted", "PodDeleted")
                )
            elif failure:
                self._sink(BackendEvent(sid, "exited", failure.message, failure.reason))
        if failure or podstate.is_terminating(pod):
            self._running.discard(sid)
        if podstate.is_ready(pod):
            self._running.add(sid)
        self._evaluate(sid)

    def _on_pvc(self, kind: str, pvc: Obj) -> None:
        sid = session_id_of(pvc)
        if sid is None:
            return
        if kind == "DELETED":
            self._resolve_gone(pvc_name(sid))
            self._pvc_phase.pop(sid, None)
            return
        phase = (pvc.get("status") or {}).get("phase") or "Pending"
        if self._pvc_phase.get(sid) != phase:
            self._pvc_phase[sid] = phase
            if phase == "Bound":
                volume = (pvc.get("spec") or {}).get("volumeName")
                self._progress(sid, "PVCBound", f"workspace volume {volume} bound")

    def _on_event(self, kind: str, event: Obj) -> None:
        if kind == "DELETED":
            return
        sid = _event_session_id(event)
        if sid is None:
            return
        summary = podstate.event_summary(event)
        ring = self._recent.setdefault(sid, deque(maxlen=self.events_per_session))
        ring.append(summary)
        level = "warning" if event.get("type") == "Warning" else "progress"
        message = f"{summary['object']}: {summary['message']}"
        self._sink(BackendEvent(sid, level, message, summary["reason"]))
        failure = podstate.event_failure(event)
        if failure is not None and sid not in self._stopping:
            self._failures[sid] = failure
            self._evaluate(sid)

    def _evaluate(self, sid: str) -> None:
        """Settle the session's readiness waiters if the caches now say ready or failed."""
        waiters = self._waiters.get(sid)
        if not waiters:
            return
        pod = self._pod(sid)
        failure = self._failures.get(sid) or (pod and podstate.pod_failure(pod))
        failure = failure or self._unschedulable(sid, pod)
        if failure:
            self._failures[sid] = failure
            result: Placement | SessionFailed = SessionFailed(failure.reason, failure.message)
        elif podstate.is_ready(pod):
            result = self._placement(pod, self.pvcs.get(pvc_name(sid)))
        else:
            return
        for future in waiters:
            if future.done():
                continue
            if isinstance(result, Placement):
                future.set_result(result)
            else:
                future.set_exception(result)

    def _unschedulable(self, sid: str, pod: Obj | None) -> podstate.Failure | None:
        message = podstate.unschedulable_message(pod) if pod else None
        if message is None:
            self._unschedulable_since.pop(sid, None)
            return None
        now = time.monotonic()
        since = self._unschedulable_since.setdefault(sid, now)
        if now - since >= self.unschedulable_grace_seconds:
            return podstate.Failure("Unschedulable", message)
        if since == now:  # first sighting: look again when the grace period is over
            asyncio.get_running_loop().call_later(
                self.unschedulable_grace_seconds, self._evaluate, sid
            )
        return None

    # -- helpers ------------------------------------------------------------------------------

    async def _ensure(self, resource: str, sid: str, cached: Obj | None, render: Any) -> Obj:
        """Create the object unless cached; on AlreadyExists adopt it if it is this session's."""
        if cached is not None:
            return cached
        assert self.client is not None
        body = render()
        name = body["metadata"]["name"]
        try:
            return await self.client.create(resource, self.namespace, body)
        except APIConflict:
            existing = await self.client.get(resource, self.namespace, name)
        except APIInvalid as e:
            causes = "; ".join(
                f"{c.get('field')}: {c.get('message')}" for c in e.details.get("causes", [])
            )
            raise SessionFailed("Invalid", f"{resource} {name} rejected: {causes or e}") from e
        except APIForbidden as e:
            raise SessionFailed(
                "Forbidden", f"not allowed to create {resource} (run `raworc-spawner doctor`): {e}"
            ) from e
        if session_id_of(existing) != sid:
            raise SessionFailed(
                "AlreadyExists", f"{resource} {name} exists and belongs to another owner"
            )
        return existing

    async def _delete_and_wait(self, resource: str, name: str) -> None:
        assert self.client is not None
        informer = self.pods if resource == "pods" else self.pvcs
        if informer.get(name) is None:
            return
        grace = self.delete_grace_seconds if self.delete_grace_seconds >= 0 else None
        with contextlib.suppress(APINotFound):
            await self.client.delete(
                resource,
                self.namespace,
                name,
                grace_period_seconds=grace if resource == "pods" else None,
            )
        await self._wait_gone(resource, name)

    async def _wait_gone(self, resource: str, name: str) -> None:
        informer = self.pods if resource == "pods" else self.pvcs
        if informer.get(name) is None:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._gone.setdefault(name, []).append(future)
        try:
            async with asyncio.timeout(self.gone_timeout_seconds):
                await future
        except TimeoutError as e:
            raise BackendError(
                f"{resource} {name} still exists after {self.gone_timeout_seconds:g} s"
            ) from e
        finally:
            futures = self._gone.get(name, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._gone.pop(name, None)

    def _resolve_gone(self, name: str) -> None:
        for future in self._gone.get(name, ()):
            if not future.done():
                future.set_result(None)

    def _cancel_waiters(self, sid: str) -> None:
        for future in self._waiters.get(sid, ()):
            if not future.done():
                future.set_exception(SessionFailed("Stopped", "the session was stopped"))

    def _progress(self, sid: str, reason: str, message: str) -> None:
        self._sink(BackendEvent(sid, "progress", message, reason))

    def _pod(self, sid: str) -> Obj | None:
        return self.pods.get(pod_name(sid))

    def _placement(self, pod: Obj | None, pvc: Obj | None) -> Placement:
        pod_meta = (pod or {}).get("metadata") or {}
        pvc_uid = ((pvc or {}).get("metadata") or {}).get("uid")
        return Placement(
            container_id=pod_meta.get("uid"),
            persistent_volume_id=f"pvc-{pvc_uid}" if pvc_uid else None,
            host=((pod or {}).get("status") or {}).get("podIP"),
            port=_notebook_port(pod),
        )

    @staticmethod
    def _ids(informer: Informer) -> list[str]:
        ids = (session_id_of(obj) for obj in informer.objects.values())
        return [sid for sid in ids if sid]


def _notebook_port(pod: Obj | None) -> int | None:
    for container in ((pod or {}).get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "notebook-port":
                return int(port["containerPort"])
    return None


def _event_session_id(event: Obj) -> str | None:
    name = str((event.get("involvedObject") or {}).get("name") or "")
    if name.startswith(PVC_PREFIX):
        return name[len(PVC_PREFIX) :]
    if name.startswith(POD_PREFIX):
        return name[len(POD_PREFIX) :]
    return None


def _is_session_event(event: Obj) -> bool:
    return _event_session_id(event) is not None
