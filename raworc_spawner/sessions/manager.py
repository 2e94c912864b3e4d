"""The session manager: the one place where sessions are created, changed and deleted.

Every entry point (REST, pages, the hub spawner, the culler and the reconciler) calls these
methods; they authorize, validate, move the state machine, drive the backend and record an event
per transition. The manager is a facade over parts that each do one job and are private to it:

- :class:`~raworc_spawner.sessions.runtime.Runtimes`: what the server holds per live session
  (lock, readiness waiter, wake, progress), removed in one place;
- :class:`~raworc_spawner.sessions.cache.SessionCache`: sessions in memory (single writer);
- :class:`~raworc_spawner.sessions.writer.SessionWriter`: each change with its event, published;
- :class:`~raworc_spawner.sessions.readiness.ReadinessWatcher`: ``init`` → ``ready``/``error``;
- :class:`~raworc_spawner.sessions.backend_events.BackendEventRouter`: the backend's events;
- :class:`~raworc_spawner.sessions.waker.Waker`: one shared resume per sleeping session;
- :class:`~raworc_spawner.sessions.sync.ReplicaSync`: other replicas' changes reach the cache
  and the live streams (PostgreSQL ``LISTEN/NOTIFY``).

Operations on one session are serialized by its lock, so double deletes, deletes during a create
and pauses during a create resolve in order; the store's version check guards against writers in
other processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from traitlets import observe

from raworc_spawner.backends.base import Backend, BackendEvent
from raworc_spawner.errors import (
    BackendError,
    InvalidTransition,
    SessionFailed,
)
from raworc_spawner.loops import BackgroundTasks
from raworc_spawner.sessions import metrics
from raworc_spawner.sessions.activity import ActivityTracker
from raworc_spawner.sessions.backend_events import BackendEventRouter
from raworc_spawner.sessions.cache import SessionCache
from raworc_spawner.sessions.events import EventBus
from raworc_spawner.sessions.model import (
    ACTIVE_STATES,
    EventKind,
    Principal,
    Session,
    SessionEvent,
    SessionState,
    check_transition,
    new_session_id,
    utcnow,
)
from raworc_spawner.sessions.placement import RECORDED_ON_OBJECTS, SessionPlacement
from raworc_spawner.sessions.ports import Store
from raworc_spawner.sessions.readiness import ReadinessWatcher
from raworc_spawner.sessions.reads import SessionReads
from raworc_spawner.sessions.requests import CreateRequest
from raworc_spawner.sessions.runtime import Runtimes
from raworc_spawner.sessions.settings import ManagerSettings
from raworc_spawner.sessions.spec import NO_OVERRIDES, SpecOverrides, build_spec
from raworc_spawner.sessions.sync import ReplicaSync
from raworc_spawner.sessions.upkeep import SessionUpkeep
from raworc_spawner.sessions.waker import Waker
from raworc_spawner.sessions.writer import SessionWriter

S = SessionState
K = EventKind
SYSTEM = Principal("raworc-system", admin=True)


class SessionManager(SessionReads, SessionUpkeep, SessionPlacement, ManagerSettings):
    """Creates, changes and deletes sessions over a store and a backend."""

    def __init__(self, *, store: Store, backend: Backend, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = store
        self._backend = backend
        self._bus = EventBus()
        self._runtimes = Runtimes()
        self._tasks = BackgroundTasks(self.log)
        self._cache = SessionCache(store, enabled=self.cache_sessions)
        self._writer = SessionWriter(
            store, self._cache, self._bus, keep_events=self.max_events_per_session
        )
        self._activity = ActivityTracker(
            store,
            flush_interval=self.activity_flush_seconds,
            on_written=self._cache.activity_written,
        )
        self._readiness = ReadinessWatcher(
            backend=backend,
            cache=self._cache,
            writer=self._writer,
            runtimes=self._runtimes,
            tasks=self._tasks,
            settings=self,
            fail=self._fail_compute,
        )
        self._router = BackendEventRouter(
            cache=self._cache,
            writer=self._writer,
            runtimes=self._runtimes,
            tasks=self._tasks,
            handles=self.handles,
            on_lost=self._lost_event,
            on_exited=self._exited_event,
        )
        self._sync = ReplicaSync(store, self._cache, self._bus)
        self._waker = Waker(
            bus=self._bus,
            runtimes=self._runtimes,
            tasks=self._tasks,
            load=lambda sid: self.get(SYSTEM, sid),
            resume=lambda sid: self.set_state(SYSTEM, sid, S.READY),
        )

    # Settings changed after construction reach the parts (at construction, the parts are
    # built from the settings, so an observer firing before they exist has nothing to do).
    @observe("cache_sessions")
    def _cache_changed(self, change: Mapping[str, Any]) -> None:
        if hasattr(self, "_cache"):
            self._cache.enabled = bool(change["new"])

    @observe("max_events_per_session")
    def _keep_changed(self, change: Mapping[str, Any]) -> None:
        if hasattr(self, "_writer"):
            self._writer.keep_events = int(change["new"])

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend and listen to its events.

        Sessions recorded before records named their backend are assigned this one's.
        """
        mine = self._backend.instance_name
        if assigned := await self._store.assign_backend(self._backend.name, mine):
            self.log.info("%d sessions recorded as on the %s backend", assigned, self._backend.name)
        await self._backend.start(self._router)
        await self._sync.start()
        self._activity.start()

    async def close(self) -> None:
        """Stop background work; sessions' compute keeps running."""
        self._router.closing = True  # backend events from now on are ignored
        await self._sync.close()
        await self._backend.close()
        await self._tasks.close()
        await self._activity.close()

    # -- commands -----------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        request: CreateRequest,
        *,
        overrides: SpecOverrides = NO_OVERRIDES,
    ) -> Session:
        """Create a session: record it, create its workspace and compute, return it.

        Returns once the backend has created the resources (so ``container_id`` and
        ``persistent_volume_id`` are known); readiness is awaited in the background and reported
        as a transition to ``ready`` (or ``error``).
        """
        session = Session(
            id=overrides.session_id or new_session_id(),
            name=request.name,
            owner=principal.name,
            namespace=request.namespace or self.default_namespace,
            starting_prompt=request.starting_prompt,
            agent_ids=request.agent_ids,
            metadata=request.metadata,
            profile=request.profile,
            waiting_timeout_seconds=request.waiting_timeout_seconds,
            parent_session_id=overrides.clone_from,
            backend=self._backend.name,
            instance=self._backend.instance_name,
        )
        spec = build_spec(session, overrides)
        self._backend.validate(spec)
        # The lock is taken before the record exists, so that a delete or pause arriving as
        # soon as the record is visible waits for the backend objects to exist first.
        async with self._runtimes.lock(session.id):
            session = await self._writer.insert(
                session, f"session {session.name!r} created", owner_limit=self._quota(principal)
            )
            metrics.SESSIONS_CREATED.labels(self._backend.name).inc()
            return await self._start_compute(session, overrides)

    async def remix(
        self, principal: Principal, parent_id: str, changes: Mapping[str, Any]
    ) -> Session:
        """A new session whose workspace starts as a copy of the parent's.

        Fields not in ``changes`` are inherited from the parent; the name defaults to
        ``<parent name> (remix)``.
        """
        parent = await self.get(principal, parent_id)
        self._require_here(parent, "remix")
        request = CreateRequest(
            name=changes.get("name") or f"{parent.name} (remix)",
            namespace=changes.get("namespace") or parent.namespace,
            starting_prompt=changes.get("starting_prompt", parent.starting_prompt),
            agent_ids=changes.get("agent_ids", parent.agent_ids),
            metadata=changes.get("metadata", parent.metadata),
            waiting_timeout_seconds=changes.get(
                "waiting_timeout_seconds", parent.waiting_timeout_seconds
            ),
            profile=changes.get("profile", parent.profile),
        )
        return await self.create(principal, request, overrides=SpecOverrides(clone_from=parent.id))

    async def update(
        self, principal: Principal, session_id: str, changes: Mapping[str, Any]
    ) -> Session:
        """Apply validated field changes (see ``requests.parse_update``)."""
        async with self._runtimes.lock(session_id):
            session = await self.get(principal, session_id)
            if not self.owns(session):
                self._require_here(session, "change")
            if not changes:
                return session
            session = await self._writer.save(session, **changes)
            await self._writer.record(
                session.id, K.UPDATED, f"updated {', '.join(sorted(changes))}"
            )
            if RECORDED_ON_OBJECTS & set(changes) and self.runs_here(session):
                await self._record_on_objects(session)
            return session

    async def set_state(
        self,
        principal: Principal,
        session_id: str,
        target: SessionState,
        *,
        overrides: SpecOverrides = NO_OVERRIDES,
    ) -> Session:
        """Pause (``idle``), resume (``ready``) or mark busy/ready for an agent (``busy``).

        Asking for the state the session is already in is a no-op (a pause of an idle session,
        a busy report of a busy one), so clients may repeat themselves. A resume with
        ``overrides.new_workspace`` accepts a new, empty workspace in place of a lost one, or
        of one on another backend (:class:`BackendMismatch` otherwise).
        """
        target = SessionState(target)
        async with self._runtimes.lock(session_id):
            session = await self.get(principal, session_id)
            if target == session.state and target in (S.IDLE, S.BUSY):
                return session
            if target == S.IDLE:
                self._require_here(session, "pause")
                return await self._pause(session, K.PAUSED, "Paused", "paused on request")
            if target == S.BUSY or (target == S.READY and session.state == S.BUSY):
                self._require_here(session, f"mark {target}")
                return await self._writer.transition(
                    session, target, K.AGENT, f"agent reports {target}", last_activity_at=utcnow()
                )
            if target == S.READY and session.state in ACTIVE_STATES:
                self._require_here(session, "resume")
            if target == S.READY and session.state in (S.READY, S.INIT):
                return session
            if target == S.READY:
                return await self._resume(session, overrides)
            raise InvalidTransition(f"cannot set state {target!r}")

    async def pause(self, principal: Principal, session_id: str, *, reason: str) -> Session:
        """Scale the session to zero (compute gone, workspace kept); no-op when idle."""
        async with self._runtimes.lock(session_id):
            session = await self.get(principal, session_id)
            if session.state == S.IDLE:
                return session
            self._require_here(session, "pause")
            return await self._pause(session, K.PAUSED, reason, f"paused: {reason}")

    async def pause_if(
        self, session_id: str, *, expected: SessionState, kind: EventKind, reason: str, message: str
    ) -> bool:
        """Pause a session still in ``expected`` with no pending activity; False otherwise.

        For the culler: a request that arrived since it looked keeps the session running.
        """
        async with self._runtimes.lock(session_id):
            session = await self._cache.load(session_id)
            if session is None or session.state != expected:
                return False
            if self._activity.pending(session_id) is not None:
                return False
            await self._pause(session, kind, reason, message)
        return True

    async def delete(self, principal: Principal, session_id: str) -> None:
        """Remove the compute, then the workspace, then the record.

        If the backend cannot finish within ``delete_timeout_seconds`` the session is kept in
        ``error`` with the reason and :class:`BackendError` is raised; deleting again retries.
        """
        began = time.monotonic()
        async with self._runtimes.lock(session_id):
            session = await self.get(principal, session_id)
            self._require_here(session, "delete")
            self._runtimes.cancel_waiter(session_id)
            if session.state != S.DELETING:
                session = await self._writer.transition(session, S.DELETING, K.DELETING, "deleting")
            await self._remove_resources(session)
            await self._store.delete(session_id)
            self._cache.forget(session_id)
        self._runtimes.drop(session_id)
        self._activity.forget(session_id)
        metrics.SESSIONS_DELETED.labels(self._backend.name).inc()
        metrics.DELETE_DURATION.labels(self._backend.name).observe(time.monotonic() - began)
        self._writer.publish(SessionEvent(session_id, 0, K.DELETED, "session deleted"))
        self._bus.close_session(session_id)

    async def wake(self, principal: Principal, session_id: str, *, timeout: float) -> Session:
        """Make a session ready, resuming it if it sleeps; concurrent callers share one resume.

        Raises ``TimeoutError`` if it is not ready within ``timeout`` seconds and
        :class:`SessionFailed` if it fails to start.
        """
        session = await self.get(principal, session_id)
        self._require_here(session, "open")
        if session.state in (S.READY, S.BUSY):
            return session
        return await self._waker.wake(session_id, timeout=timeout)

    async def heartbeat(self, principal: Principal, session_id: str) -> None:
        """An explicit sign of life from the session's user or agent: activity now."""
        await self.get(principal, session_id)
        self._activity.note(session_id)

    def note_activity(self, session_id: str, when: datetime | None = None) -> None:
        """Record activity on a session (coalesced; written in batches)."""
        self._activity.note(session_id, when)

    async def record_event_of(self, event: BackendEvent) -> None:
        """Record what the backend reported about a session as a warning event."""
        await self._writer.record(event.session_id, K.WARNING, event.message, reason=event.reason)

    async def record_event(
        self, session: Session, kind: EventKind, message: str, *, reason: str | None = None
    ) -> None:
        """Record (and publish) an event that is not a state change."""
        await self._writer.record(session.id, kind, message, reason=reason)

    # -- reconciliation and background loops --------------------------------------------------

    async def adopt_starting(self, session_id: str) -> None:
        """Watch a session found in ``init`` with compute (after a restart, or started by a
        replica since gone) until it is ready; no-op when this server already waits for it."""
        async with self._runtimes.lock(session_id):
            runtime = self._runtimes.peek(session_id)
            if runtime is not None and runtime.waiter is not None and not runtime.waiter.done():
                return
            self._readiness.watch(session_id)

    async def compute_exited(self, event: BackendEvent) -> Session | None:
        """A running session's compute ended by itself: idle on exit 0, error otherwise.

        Either way the compute is removed (the workspace kept); a failure keeps it only with
        ``keep_failed_compute``.
        """
        async with self._runtimes.lock(event.session_id):
            session = await self._cache.load(event.session_id)
            if session is None or session.state not in (S.READY, S.BUSY):
                return session
            if event.exit_code == 0:
                message = f"the session's server exited: {event.message}"
                return await self._pause(session, K.PAUSED, event.reason or "Completed", message)
            return await self._fail_compute(session, event.reason or "Exited", event.message)

    async def stop_unwanted_compute(self, session_id: str) -> bool:
        """Remove compute found running for an ``idle`` (or failed) session; True if removed.

        A failed session's compute stays with ``keep_failed_compute``.
        """
        async with self._runtimes.lock(session_id):
            session = await self._cache.load(session_id)
            if session is None or session.state not in (S.IDLE, S.ERROR):
                return False
            if session.state == S.ERROR and self.keep_failed_compute:
                return False
            await self._backend.pause(session_id)
            return True

    async def compute_lost(self, session_id: str, message: str) -> Session | None:
        """Apply ``lost_compute_policy`` to a session whose compute vanished by itself."""
        async with self._runtimes.lock(session_id):
            session = await self._cache.load(session_id)
            if session is None or session.state not in ACTIVE_STATES:
                return session
            if self.lost_compute_policy == "idle":
                return await self._pause(session, K.PAUSED, "ComputeLost", message)
            self._runtimes.cancel_waiter(session_id)
            if session.state != S.INIT:
                session = await self._writer.transition(
                    session, S.INIT, K.RESTARTING, message, reason="ComputeLost"
                )
            return await self._start_compute(session, NO_OVERRIDES)

    # -- internals ----------------------------------------------------------------------------

    async def _resume(self, session: Session, overrides: SpecOverrides) -> Session:
        """idle/error → init, then create compute (on the recorded workspace unless renewed)."""
        check_transition(session.state, S.INIT)
        if not self.owns(session):
            self._require_here(session, "resume")  # never taken over, new workspace or not
        if not overrides.new_workspace:
            self._require_here(session, "resume")
            session = await self._writer.transition(
                session, S.INIT, K.RESUMING, "resuming", error=None, termination_reason=None
            )
            return await self._start_compute(session, overrides)
        here = self._backend.name
        old = session.persistent_volume_id or "none recorded"
        if self.runs_here(session):
            message = f"resuming with a new workspace if the old one ({old}) is gone"
        else:
            message = (
                f"resuming on the {here} backend, in the workspace it had there if that is "
                f"still there, else a new, empty one (the {session.backend} one, {old}, stays "
                "where it is)"
            )
        session = await self._writer.transition(
            session,
            S.INIT,
            K.RESUMING,
            message,
            reason="NewWorkspace",
            error=None,
            termination_reason=None,
            backend=here,
            instance=self._backend.instance_name,
            persistent_volume_id=None,
            container_id=None,
        )
        return await self._start_compute(session, overrides)

    async def _start_compute(self, session: Session, overrides: SpecOverrides) -> Session:
        try:
            placement = await self._backend.create(build_spec(session, overrides))
        except SessionFailed as e:
            return await self._fail_compute(session, e.reason, e.detail)
        except BackendError as e:
            return await self._fail_compute(session, "BackendError", e.message)
        except Exception as e:  # a backend bug must not leave the session in init forever
            self.log.exception("the backend failed to create compute for %s", session.id)
            await self._fail_compute(session, "BackendError", f"{type(e).__name__}: {e}"[:500])
            raise BackendError(f"could not create the session's compute: {type(e).__name__}") from e
        ids = {
            "container_id": placement.container_id,
            "persistent_volume_id": placement.persistent_volume_id,
            "error": None,
        }
        if self._cache.enabled:
            # Readers see the ids at once from the cache; they reach the store with the next
            # transition (ready or error), one write less per spawn. A crash in between loses
            # nothing: the backend still has the objects and reconciliation adopts them.
            session = self._cache.remember(session.evolve(**ids))
        else:
            session = await self._writer.save(session, **ids)
        self._readiness.watch(session.id)
        return session

    async def _pause(self, session: Session, kind: EventKind, reason: str, message: str) -> Session:
        check_transition(session.state, S.IDLE)
        self._runtimes.cancel_waiter(session.id)
        await self._backend.pause(session.id)
        return await self._writer.transition(
            session, S.IDLE, kind, message, reason=reason, terminated_at=utcnow()
        )

    async def _fail_compute(self, session: Session, reason: str, message: str) -> Session:
        """Remove the session's compute (unless kept for debugging), then move it to ``error``.

        Called with the session's lock held. In that order, so that whoever sees the error
        (the hub's spawner, a page) sees no compute left: compute that could not start or that
        failed would otherwise keep backing off or running unseen. The workspace is never
        touched.
        """
        self._runtimes.cancel_waiter(session.id)
        if not self.keep_failed_compute:
            try:
                await self._backend.pause(session.id)
            except BackendError as e:
                self.log.warning("could not remove the failed compute of %s: %s", session.id, e)
        return await self._writer.fail(session, reason, message)

    async def _remove_resources(self, session: Session) -> None:
        try:
            async with asyncio.timeout(self.delete_timeout_seconds):
                await self._backend.delete(session.id)
        except TimeoutError as e:
            message = (
                f"could not remove the session's resources within {self.delete_timeout_seconds:g} s"
            )
            if holdup := self._backend.waiting_on(session.id):
                message += f": still waiting for {holdup}"
            await self._writer.fail(session, "DeleteTimeout", message)
            raise BackendError(message) from e
        except BackendError as e:
            message = f"could not remove the session's resources: {e.message}"
            await self._writer.fail(session, "DeleteFailed", message)
            raise BackendError(message) from e

    def _quota(self, principal: Principal) -> int | None:
        """The most sessions the principal may have (None: no limit); checked at insert."""
        limit = self.max_sessions_per_user
        return None if limit <= 0 or principal.admin else limit
