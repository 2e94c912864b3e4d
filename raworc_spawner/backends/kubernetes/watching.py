"""The backend's cache listeners: what each pod, claim and Event change means for its session.

- A pod seen Running and Ready is the session's running compute. When it then ends, the
  session hears at once from the watch event: ``exited`` (with the exit code, the kubelet's
  reason and the log's last lines) when its container exited, ``lost`` when it was deleted,
  evicted or stopped from outside.
- Readiness waiters are settled from the pod and claim objects: ready, or failed for a
  condition of those objects (a fatal waiting reason, an exit, unschedulable or unprovisioned
  for longer than their grace).
- Kubernetes Events are believed only about the session's current pod and claim (see
  :mod:`~raworc_spawner.backends.kubernetes.eventbook`); they are progress and warnings, each
  once however often it is updated, and they decide nothing destructive by themselves.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from raworc_spawner.backends.base import BackendEvent, BackendEventKind, EventSink
from raworc_spawner.backends.kubernetes import eventbook, outcome, podstate
from raworc_spawner.backends.kubernetes.eventbook import Match
from raworc_spawner.backends.kubernetes.naming import pod_name, pvc_name, session_id_of
from raworc_spawner.backends.kubernetes.podstate import Failure
from raworc_spawner.backends.kubernetes.tracked import Tracked, TrackedSessions
from raworc_spawner.errors import SessionFailed

if TYPE_CHECKING:
    from raworc_spawner.backends.kubernetes.backend import KubernetesBackend

Obj = dict[str, Any]
Kind = BackendEventKind
PODS = "pods"
PVCS = "persistentvolumeclaims"


class Watching:
    """Turns cache changes into session state, readiness and :class:`BackendEvent`\\ s."""

    def __init__(self, backend: KubernetesBackend, tracked: TrackedSessions) -> None:
        self._backend = backend
        self._tracked = tracked
        self.sink: EventSink = lambda event: None

    # -- emitting -----------------------------------------------------------------------------

    def emit(
        self,
        sid: str,
        kind: BackendEventKind,
        message: str,
        reason: str | None,
        *,
        exit_code: int | None = None,
    ) -> None:
        """Send one BackendEvent to the manager."""
        self.sink(BackendEvent(sid, kind, message, reason, exit_code))

    def progress(self, sid: str, reason: str, message: str) -> None:
        """Send a progress event."""
        self.emit(sid, Kind.PROGRESS, message, reason)

    # -- what is current ------------------------------------------------------------------------

    def adopt(self, sid: str, pod: Obj | None, pvc: Obj | None) -> None:
        """The pod and claim a create made (or found) are the session's current ones."""
        tracked = self._tracked.track(sid)
        self._make_current(sid, tracked, PODS, _uid(pod))
        self._make_current(sid, tracked, PVCS, _uid(pvc))
        if pod is not None and _uid(pod) == tracked.pod_uid:
            self._note_running(tracked, pod)

    def _note_running(self, tracked: Tracked, pod: Obj) -> None:
        """A ready pod is the session's running compute (unless its end was already seen)."""
        if podstate.is_ready(pod) and not tracked.running and tracked.failure is None:
            tracked.running = True
            tracked.restarts_seen = outcome.restart_count(pod)

    def _make_current(self, sid: str, tracked: Tracked, resource: str, uid: str | None) -> bool:
        """Make ``uid`` the current pod or claim; True when it is a new one."""
        if not uid or uid in tracked.retired:
            return False
        if resource == PODS and tracked.pod_uid != uid:
            tracked.pod_uid, tracked.running, tracked.restarts_seen = uid, False, None
            # A stop by this server was about the pod before: this one (another replica's
            # resume, say) is to be watched, and its end reported.
            tracked.stopping = False
        elif resource == PVCS and tracked.pvc_uid != uid:
            tracked.pvc_uid, tracked.pvc_phase, tracked.provisioning = uid, None, None
        else:
            return False
        self._replay_pending(sid, tracked)
        return True

    # -- pods -----------------------------------------------------------------------------------

    def on_pod(self, kind: str, pod: Obj) -> None:
        """A session pod was added, changed or deleted."""
        sid = session_id_of(pod)
        if sid is None:
            return
        uid = _uid(pod)
        if kind == "DELETED":
            self._pod_deleted(sid, uid)
            return
        tracked = self._tracked.track(sid)
        tracked.resolve_gone(pod_name(sid), uid=uid, present=True)
        if uid in tracked.retired:
            return  # a pod this server is removing: nothing about it matters any more
        self._make_current(sid, tracked, PODS, uid)
        if tracked.running and not tracked.stopping:
            self._report_end(sid, pod, tracked)
        self._note_running(tracked, pod)
        self.evaluate(sid)

    def _pod_deleted(self, sid: str, uid: str | None) -> None:
        tracked = self._tracked.get(sid)
        if tracked is None:
            return
        tracked.resolve_gone(pod_name(sid), uid=uid, present=False)
        if uid == tracked.pod_uid:
            if tracked.running and not tracked.stopping:
                self.emit(sid, Kind.LOST, "the session pod was deleted", "PodDeleted")
            tracked.running = False
        self._forget_if_gone(sid)

    def _report_end(self, sid: str, pod: Obj, tracked: Tracked) -> None:
        """Report a running pod that ended: deleted or stopped from outside, or its exit."""
        if podstate.is_terminating(pod):
            tracked.running = False
            self.emit(sid, Kind.LOST, "the session pod is being deleted", "PodDeleted")
            return
        stopped = outcome.stopped_from_outside(pod)
        if stopped is not None:
            tracked.running = False
            tracked.failure = Failure(stopped.reason, stopped.message)
            self.emit(sid, Kind.LOST, stopped.message, stopped.reason)
            return
        ended = outcome.session_exit(pod, restarts_seen=tracked.restarts_seen)
        if ended is not None:
            tracked.running = False
            tracked.failure = Failure(ended.reason, ended.message)
            self.emit(sid, Kind.EXITED, ended.message, ended.reason, exit_code=ended.exit_code)

    # -- claims ---------------------------------------------------------------------------------

    def on_pvc(self, kind: str, pvc: Obj) -> None:
        """A session claim was added, changed or deleted."""
        sid = session_id_of(pvc)
        if sid is None:
            return
        uid = _uid(pvc)
        if kind == "DELETED":
            tracked = self._tracked.get(sid)
            if tracked is not None:
                tracked.resolve_gone(pvc_name(sid), uid=uid, present=False)
                if uid == tracked.pvc_uid:
                    tracked.pvc_phase = None
                self._forget_if_gone(sid)
            return
        tracked = self._tracked.track(sid)
        tracked.resolve_gone(pvc_name(sid), uid=uid, present=True)
        self._make_current(sid, tracked, PVCS, uid)
        phase = (pvc.get("status") or {}).get("phase") or "Pending"
        if uid == tracked.pvc_uid and tracked.pvc_phase != phase:
            tracked.pvc_phase = phase
            if phase == "Bound":
                tracked.provisioning = None
                volume = (pvc.get("spec") or {}).get("volumeName")
                self.progress(sid, "PVCBound", f"workspace volume {volume} bound")
        self.evaluate(sid)

    # -- events ---------------------------------------------------------------------------------

    def on_event(self, kind: str, event: Obj) -> None:
        """A Kubernetes Event about a session's pod or claim (by name) was written or updated."""
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
        verdict = self._match(sid, tracked, event)
        if verdict is Match.UNKNOWN:
            tracked.pending.append(event)
        elif verdict is Match.CURRENT:
            self._believe(sid, tracked, event)

    def _match(self, sid: str, tracked: Tracked, event: Obj) -> Match:
        kind = eventbook.involved_kind(event)
        if eventbook.involved_uid(event) in tracked.retired:
            return Match.FOREIGN
        if kind == "Pod":
            uid, resource = tracked.pod_uid, PODS
        elif kind == "PersistentVolumeClaim":
            uid, resource = tracked.pvc_uid, PVCS
        else:
            return Match.FOREIGN
        cached = self._cached(resource, sid)
        created = (cached or {}).get("metadata", {}).get("creationTimestamp")
        return eventbook.match(
            event, current_uid=uid, created=created if _uid(cached) == uid else None
        )

    def _believe(self, sid: str, tracked: Tracked, event: Obj) -> None:
        """Keep a current object's Event; report it once, as progress or a warning."""
        new = tracked.events.record(event)
        warning = event.get("type") == "Warning"
        if warning and event.get("reason") == "ProvisioningFailed":
            tracked.provisioning = str(event.get("message") or "ProvisioningFailed")
            self.evaluate(sid)
        if not new:
            return  # an update (count) of an Event already reported
        grace = self._backend.expected_warning_seconds
        expected = eventbook.is_expected_warning(event, claim_age=self._claim_age(sid), grace=grace)
        shown = eventbook.event_summary(event)
        level = Kind.WARNING if warning and not expected else Kind.PROGRESS
        self.emit(sid, level, f"{shown.object}: {shown.message}", shown.reason)

    def _replay_pending(self, sid: str, tracked: Tracked) -> None:
        """Events that arrived before their object was known: believe or drop them now."""
        waiting = list(tracked.pending)
        tracked.pending.clear()
        for event in waiting:
            verdict = self._match(sid, tracked, event)
            if verdict is Match.CURRENT:
                self._believe(sid, tracked, event)
            elif verdict is Match.UNKNOWN:
                tracked.pending.append(event)

    def _claim_age(self, sid: str) -> float | None:
        created = eventbook.parse_time(
            ((self._cached(PVCS, sid) or {}).get("metadata") or {}).get("creationTimestamp")
        )
        return None if created is None else (dt.datetime.now(dt.UTC) - created).total_seconds()

    # -- readiness ------------------------------------------------------------------------------

    def evaluate(self, sid: str) -> None:
        """Settle the session's readiness waiters if the caches now say ready or failed."""
        tracked = self._tracked.get(sid)
        if tracked is None or not tracked.waiters:
            return
        pod, pvc = self._cached(PODS, sid), self._cached(PVCS, sid)
        if _uid(pod) in tracked.retired:
            pod = None  # an old pod on its way out says nothing about this start
        failure = tracked.failure or (pod and podstate.pod_failure(pod))
        failure = failure or self._lasting_failure(sid, tracked, pod, pvc)
        if failure:
            tracked.failure = failure
            tracked.settle(SessionFailed(failure.reason, failure.message))
        elif podstate.is_ready(pod):
            tracked.settle(podstate.placement(pod, pvc))

    def _lasting_failure(
        self, sid: str, tracked: Tracked, pod: Obj | None, pvc: Obj | None
    ) -> Failure | None:
        """Unschedulable or unprovisioned for longer than its grace period."""
        backend = self._backend
        unschedulable = podstate.unschedulable_message(pod) if pod else None
        if unschedulable is not None and podstate.waits_for_claims(unschedulable):
            unschedulable = None  # the claim is what is late: see unprovisioned below
        if tracked.unschedulable.lasted(
            unschedulable is not None,
            grace=backend.unschedulable_grace_seconds,
            recheck=lambda: self.evaluate(sid),
        ):
            return Failure("Unschedulable", unschedulable or "no node can run the pod")
        unbound = pvc is not None and (pvc.get("status") or {}).get("phase") != "Bound"
        if tracked.unprovisioned.lasted(
            unbound and tracked.provisioning is not None,
            grace=backend.provisioning_grace_seconds,
            recheck=lambda: self.evaluate(sid),
        ):
            return Failure("ProvisioningFailed", tracked.provisioning or "ProvisioningFailed")
        return None

    def _forget_if_gone(self, sid: str) -> None:
        """Forget a session whose pod and PVC were both deleted from outside, once idle."""
        tracked = self._tracked.get(sid)
        if tracked is None or not tracked.idle:
            return
        if self._cached(PODS, sid) is None and self._cached(PVCS, sid) is None:
            self._tracked.forget(sid)

    def _cached(self, resource: str, sid: str) -> Obj | None:
        return self._backend.cached(resource, sid)


def _uid(obj: Obj | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("uid")
