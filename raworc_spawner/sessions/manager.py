"""The session manager: the one place where sessions are created, changed and deleted.

Every entry point (REST, pages, the hub spawner) calls these methods; they authorize, validate,
move the state machine, drive the backend and record an event per transition. Operations on one
session are serialized by a per-session lock, so double deletes, deletes during a create and
pauses during a create resolve in order, and the store's version check guards against writers in
other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Collection, Mapping
from datetime import datetime
from typing import Any

from traitlets import Bool, Enum, Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from raworc_spawner.backends.base import Backend, BackendEvent, ComputeState, SessionSpec
from raworc_spawner.errors import (
    BackendError,
    Conflict,
    InvalidTransition,
    QuotaExceeded,
    SessionFailed,
    SessionNotFound,
)
from raworc_spawner.sessions import metrics
from raworc_spawner.sessions.activity import ActivityTracker
from raworc_spawner.sessions.events import ALL, EventBus
from raworc_spawner.sessions.model import (
    ACTIVE_STATES,
    Principal,
    Session,
    SessionEvent,
    SessionState,
    check_transition,
    new_session_id,
    utcnow,
)
from raworc_spawner.sessions.ports import EventList, Page, Store
from raworc_spawner.sessions.requests import CreateRequest

S = SessionState
SYSTEM = Principal("raworc-system", admin=True)
#: Backend event kinds that are streamed but not stored.
TRANSIENT_KINDS = frozenset({"progress", "warning"})
#: Transient events kept per session for late subscribers and the status endpoint.
PROGRESS_RING = 50


class SessionManager(LoggingConfigurable):
    """Creates, changes and deletes sessions over a store and a backend."""

    ready_timeout_seconds = Float(
        300.0,
        help="""Seconds a session may take from create (or resume) to ready before it is moved
        to error with reason ``Timeout``. Fatal conditions fail it sooner.""",
    ).tag(config=True)

    delete_timeout_seconds = Float(
        120.0,
        help="""Seconds to wait for a session's compute and workspace to be removed. If they are
        not gone by then the session is moved to error (reason ``DeleteTimeout``) and kept, so
        nothing leaks silently; deleting again retries.""",
    ).tag(config=True)

    default_waiting_timeout_seconds = Int(
        300,
        help="""Idle timeout (seconds without activity before a ready session is paused) for
        sessions created without their own ``waiting_timeout_seconds``. 0 means never.""",
    ).tag(config=True)

    max_events_per_session = Int(
        200,
        help="""Events kept per session; older ones are dropped.""",
    ).tag(config=True)

    max_sessions_per_user = Int(
        0,
        help="""Most sessions one non-admin user may have at once. 0 means no limit.""",
    ).tag(config=True)

    lost_compute_policy = Enum(
        ["idle", "restart"],
        default_value="idle",
        help="""What to do with a session whose compute vanished by itself (eviction, node loss,
        a pod deleted by hand, compute gone across a server restart): mark it ``idle`` (it
        wakes on the next resume, workspace intact) or ``restart`` its compute at once.""",
    ).tag(config=True)

    cache_sessions = Bool(
        True,
        help="""Keep every session this server reads or writes in memory, so that reads cost no
        database round trip. Correct when this server is the only writer of its store (the
        default set-up); turn it off when several processes change the same sessions (a hub
        and a raworc service sharing a store turn it off themselves).""",
    ).tag(config=True)

    handle_hub_sessions = Bool(
        True,
        help="""React to backend events (compute exited or lost) of sessions a JupyterHub
        spawner made (metadata key ``jupyterhub``). Off in a raworc server running as a hub
        service next to the hub, whose own manager looks after those sessions.""",
    ).tag(config=True)

    activity_flush_seconds = Float(
        5.0,
        help="""Seconds between batched writes of session activity (API calls, proxied
        requests, heartbeats). Activity is coalesced in memory in between.""",
    ).tag(config=True)

    default_namespace = Unicode(
        "default",
        help="""Logical namespace given to sessions created without one (not a Kubernetes
        namespace).""",
    ).tag(config=True)

    def __init__(self, *, store: Store, backend: Backend, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.backend = backend
        self.bus = EventBus()
        self.activity = ActivityTracker(
            store, flush_interval=self.activity_flush_seconds, on_written=self._activity_written
        )
        self._cache: dict[str, Session] = {}
        self._wakes: dict[str, asyncio.Task[Session]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started: dict[str, float] = {}
        self._closing = False
        self._progress: dict[str, deque[SessionEvent]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend and listen to its events."""
        await self.backend.start(self._on_backend_event)
        self.activity.start()

    async def close(self) -> None:
        """Stop background work; sessions' compute keeps running."""
        self._closing = True  # backend events from now on are ignored
        await self.backend.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.activity.close()

    # -- queries ------------------------------------------------------------------------------

    async def get(self, principal: Principal, session_id: str) -> Session:
        """The session, if it exists and the principal may see it (else SessionNotFound)."""
        session = await self._load(session_id)
        if session is None or not principal.may_see(session):
            raise SessionNotFound(session_id)
        if principal is not SYSTEM:
            self.activity.note(session_id)  # an API call about the session is activity
        return session

    async def list(
        self,
        principal: Principal,
        *,
        states: Collection[SessionState] | None = None,
        namespace: str | None = None,
        text: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of the sessions the principal may see, newest first."""
        if not principal.admin:
            owner = principal.name
        items, next_cursor = await self.store.list(
            owner=owner,
            states=states,
            namespace=namespace,
            text=text,
            limit=limit,
            cursor=cursor,
        )
        return Page(items, next_cursor)

    async def events(
        self, principal: Principal, session_id: str, *, after_seq: int = 0, limit: int = 200
    ) -> EventList:
        """The session's recorded events after ``after_seq``, oldest first."""
        await self.get(principal, session_id)
        return await self.store.events(session_id, after_seq=after_seq, limit=limit)

    async def status(self, principal: Principal, session_id: str) -> dict[str, Any]:
        """The session with its compute and workspace as the backend sees them now."""
        session = await self.get(principal, session_id)
        detail = await self.backend.status(session_id)
        recent = await self.store.events(session_id, after_seq=0, limit=self.max_events_per_session)
        return {
            "session": session.to_dict(),
            "backend": detail,
            "events": [event.to_dict() for event in recent[-20:]],
            "progress": [event.to_dict() for event in self.recent_progress(session_id)],
        }

    async def logs(
        self, principal: Principal, session_id: str, *, tail: int | None, follow: bool
    ) -> AsyncIterator[str]:
        """The session's compute output; checks access before the first line."""
        await self.get(principal, session_id)
        return self.backend.logs(session_id, tail=tail, follow=follow)

    def profiles(self) -> Mapping[str, Mapping[str, Any]]:
        """The backend's profiles, by name."""
        return self.backend.profiles()

    async def count_by_state(self) -> dict[SessionState, int]:
        """How many sessions are in each state."""
        return await self.store.count_by_state()

    @contextlib.asynccontextmanager
    async def subscribe(
        self, principal: Principal, session_id: str | None = None
    ) -> AsyncIterator[AsyncIterator[SessionEvent]]:
        """Live events of one session (checked for access), or of all the principal may see."""
        if session_id is not None:
            await self.get(principal, session_id)
        async with self.bus.subscribe(session_id or ALL) as events:
            yield events if session_id or principal.admin else self._own(principal, events)

    async def _own(
        self, principal: Principal, events: AsyncIterator[SessionEvent]
    ) -> AsyncIterator[SessionEvent]:
        visible: set[str] = set()  # a deleted session's record is gone: remember who saw it
        async for event in events:
            if event.kind == "deleted":
                if event.session_id in visible:
                    visible.discard(event.session_id)
                    yield event
                continue
            session = await self._load(event.session_id)
            if session and principal.may_see(session):
                visible.add(event.session_id)
                yield event

    # -- commands -----------------------------------------------------------------------------

    async def create(
        self, principal: Principal, request: CreateRequest, *, spec_extra: Mapping[str, Any] = {}
    ) -> Session:
        """Create a session: record it, create its workspace and compute, return it.

        Returns once the backend has created the resources (so ``container_id`` and
        ``persistent_volume_id`` are known); readiness is awaited in the background and reported
        as a transition to ``ready`` (or ``error``). ``spec_extra`` overrides fields of the
        backend :class:`SessionSpec` (the hub passes its command, port and environment).
        """
        await self._check_quota(principal)
        session = Session(
            id=spec_extra.get("session_id") or new_session_id(),
            name=request.name,
            owner=principal.name,
            namespace=request.namespace or self.default_namespace,
            starting_prompt=request.starting_prompt,
            agent_ids=request.agent_ids,
            metadata=request.metadata,
            profile=request.profile,
            waiting_timeout_seconds=request.waiting_timeout_seconds,
            parent_session_id=spec_extra.get("clone_from"),
        )
        spec = self._spec(session, spec_extra)
        self.backend.validate(spec)
        # The lock is taken before the record exists, so that a delete or pause arriving as
        # soon as the record is visible waits for the backend objects to exist first.
        async with self._lock(session.id):
            created = SessionEvent(
                session.id, 0, "created", f"session {session.name!r} created", state=S.INIT
            )
            session, stored = await self.store.insert_and_record(
                session, created, keep=self.max_events_per_session
            )
            self._remember(session)
            metrics.SESSIONS_CREATED.labels(self.backend.name).inc()
            self.bus.publish(stored)
            return await self._start_compute(session, spec, create=True)

    async def update(
        self, principal: Principal, session_id: str, changes: Mapping[str, Any]
    ) -> Session:
        """Apply validated field changes (see ``requests.parse_update``)."""
        async with self._lock(session_id):
            session = await self.get(principal, session_id)
            if not changes:
                return session
            session = self._remember(await self.store.update(session.evolve(**changes)))
            await self._record(session, "updated", f"updated {', '.join(sorted(changes))}")
            return session

    async def set_state(
        self,
        principal: Principal,
        session_id: str,
        target: str,
        *,
        spec_extra: Mapping[str, Any] = {},
    ) -> Session:
        """Pause (``idle``), resume (``ready``) or mark busy/ready for an agent (``busy``)."""
        async with self._lock(session_id):
            session = await self.get(principal, session_id)
            if target == S.IDLE:
                return await self._pause(session, reason="Paused", message="paused on request")
            if target == S.BUSY or (target == S.READY and session.state == S.BUSY):
                message = f"agent reports {target}"
                return await self._transition(
                    session, S(target), "agent", message, last_activity_at=utcnow()
                )
            if target == S.READY and session.state in (S.READY, S.INIT):
                return session
            if target == S.READY:
                return await self._resume(session, spec_extra)
            raise InvalidTransition(f"cannot set state {target!r}")

    async def pause(self, principal: Principal, session_id: str, *, reason: str) -> Session:
        """Scale the session to zero (compute gone, workspace kept); no-op when idle."""
        async with self._lock(session_id):
            session = await self.get(principal, session_id)
            if session.state == S.IDLE:
                return session
            return await self._pause(session, reason=reason, message=f"paused: {reason}")

    async def delete(self, principal: Principal, session_id: str) -> None:
        """Remove the compute, then the workspace, then the record.

        If the backend cannot finish within ``delete_timeout_seconds`` the session is kept in
        ``error`` with the reason and :class:`BackendError` is raised; deleting again retries.
        """
        began = time.monotonic()
        async with self._lock(session_id):
            session = await self.get(principal, session_id)
            self._cancel_waiter(session_id)
            if session.state != S.DELETING:
                session = await self._transition(session, S.DELETING, "deleting", "deleting")
            try:
                async with asyncio.timeout(self.delete_timeout_seconds):
                    await self.backend.delete(session_id)
            except (TimeoutError, BackendError) as e:
                reason = "DeleteTimeout" if isinstance(e, TimeoutError) else "DeleteFailed"
                message = f"could not remove the session's resources: {e or 'timed out'}"
                await self._fail(session, reason, message)
                raise BackendError(message) from e
            await self.store.delete(session_id)
            self._cache.pop(session_id, None)
        self._locks.pop(session_id, None)
        self.activity.forget(session_id)
        self._progress.pop(session_id, None)
        metrics.SESSIONS_DELETED.labels(self.backend.name).inc()
        metrics.DELETE_DURATION.labels(self.backend.name).observe(time.monotonic() - began)
        self.bus.publish(SessionEvent(session_id, 0, "deleted", "session deleted"))
        self.bus.close_session(session_id)

    async def adopt_starting(self, session_id: str) -> None:
        """Watch a session found in ``init`` with compute (after a restart) until it is ready."""
        async with self._lock(session_id):
            self._started[session_id] = time.monotonic()
            self._watch_ready(session_id)

    async def compute_lost(self, session_id: str, message: str) -> Session | None:
        """Apply ``lost_compute_policy`` to a session whose compute vanished by itself."""
        async with self._lock(session_id):
            session = await self._load(session_id)
            if session is None or session.state not in ACTIVE_STATES:
                return session
            self._cancel_waiter(session_id)
            if self.lost_compute_policy == "idle":
                await self.backend.pause(session_id)
                return await self._transition(
                    session, S.IDLE, "paused", message, reason="ComputeLost", terminated_at=utcnow()
                )
            if session.state != S.INIT:
                session = await self._transition(
                    session, S.INIT, "restarting", message, reason="ComputeLost"
                )
            return await self._start_compute(session, self._spec(session, {}), create=False)

    # -- serverless lifecycle -----------------------------------------------------------------

    def note_activity(self, session_id: str, when: datetime | None = None) -> None:
        """Record activity on a session (coalesced; written in batches)."""
        self.activity.note(session_id, when)

    async def pause_if(
        self, session_id: str, *, expected: SessionState, kind: str, reason: str, message: str
    ) -> bool:
        """Pause a session still in ``expected`` with no pending activity; False otherwise.

        For the culler: a request that arrived since it looked keeps the session running.
        """
        async with self._lock(session_id):
            session = await self._load(session_id)
            if session is None or session.state != expected:
                return False
            if self.activity.pending(session_id) is not None:
                return False
            self._cancel_waiter(session_id)
            await self.backend.pause(session_id)
            await self._transition(
                session, S.IDLE, kind, message, reason=reason, terminated_at=utcnow()
            )
        return True

    async def record_event(
        self, session: Session, kind: str, message: str, *, reason: str | None = None
    ) -> None:
        """Record (and publish) an event that is not a state change."""
        await self._record(session, kind, message, reason=reason)

    async def wake(self, principal: Principal, session_id: str, *, timeout: float) -> Session:
        """Make a session ready, resuming it if it sleeps; concurrent callers share one resume.

        Raises ``TimeoutError`` if it is not ready within ``timeout`` seconds and
        :class:`SessionFailed` if it fails to start.
        """
        session = await self.get(principal, session_id)
        if session.state in (S.READY, S.BUSY):
            return session
        task = self._wakes.get(session_id)
        if task is None:
            task = self._spawn(self._wake(session_id))
            self._wakes[session_id] = task
            task.add_done_callback(lambda _: self._wakes.pop(session_id, None))
        return await asyncio.wait_for(asyncio.shield(task), timeout)

    async def _wake(self, session_id: str) -> Session:
        began = time.monotonic()
        async with self.bus.subscribe(session_id) as events:
            session = await self.get(SYSTEM, session_id)
            if session.state in (S.IDLE, S.ERROR):
                metrics.WAKES.inc()
                await self.set_state(SYSTEM, session_id, "ready")
            session = await self._until_settled(session_id, events)
        metrics.WAKE_DURATION.observe(time.monotonic() - began)
        return session

    async def _until_settled(self, session_id: str, events: AsyncIterator[SessionEvent]) -> Session:
        while True:
            session = await self.get(SYSTEM, session_id)
            if session.state in (S.READY, S.BUSY):
                return session
            if session.state in (S.ERROR, S.IDLE, S.DELETING):
                reason = session.termination_reason or session.state.value
                raise SessionFailed(reason, session.error or f"session is {session.state.value}")
            await anext(events)

    @property
    def backend_name(self) -> str:
        """The name of the backend sessions run on (``local`` or ``kubernetes``)."""
        return self.backend.name

    def address(self, session_id: str) -> str | None:
        """Where the session's compute can be reached (an IP), from the backend's cache."""
        return self.backend.address(session_id)

    async def remix(
        self, principal: Principal, parent_id: str, changes: Mapping[str, Any]
    ) -> Session:
        """A new session whose workspace starts as a copy of the parent's.

        Fields not in ``changes`` are inherited from the parent; the name defaults to
        ``<parent name> (remix)``.
        """
        parent = await self.get(principal, parent_id)
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
        return await self.create(principal, request, spec_extra={"clone_from": parent.id})

    # -- internals: state machine -------------------------------------------------------------

    async def _start_compute(self, session: Session, spec: SessionSpec, *, create: bool) -> Session:
        try:
            placement = await self.backend.create(spec)
        except BackendError as e:
            reason = e.reason if isinstance(e, SessionFailed) else "BackendError"
            return await self._fail(session, reason, e.message)
        ids = {
            "container_id": placement.container_id,
            "persistent_volume_id": placement.persistent_volume_id,
            "error": None,
        }
        if self.cache_sessions:
            # Readers see the ids at once from the cache; they reach the store with the next
            # transition (ready or error), one write less per spawn. A crash in between loses
            # nothing: the backend still has the objects and reconciliation adopts them.
            session = self._remember(session.evolve(**ids))
        else:
            session = await self._save(session, **ids)
        self._started[session.id] = time.monotonic()
        self._watch_ready(session.id)
        return session

    async def _pause(self, session: Session, *, reason: str, message: str) -> Session:
        check_transition(session.state, S.IDLE)
        self._cancel_waiter(session.id)
        await self.backend.pause(session.id)
        return await self._transition(
            session, S.IDLE, "paused", message, reason=reason, terminated_at=utcnow()
        )

    async def _resume(self, session: Session, spec_extra: Mapping[str, Any]) -> Session:
        check_transition(session.state, S.INIT)
        session = await self._transition(
            session, S.INIT, "resuming", "resuming", error=None, termination_reason=None
        )
        return await self._start_compute(session, self._spec(session, spec_extra), create=False)

    async def _transition(
        self,
        session: Session,
        target: SessionState,
        kind: str,
        message: str,
        *,
        reason: str | None = None,
        **fields: Any,
    ) -> Session:
        check_transition(session.state, target)
        previous = session.state
        if target == S.IDLE:
            fields.setdefault("termination_reason", reason)
        event = SessionEvent(session.id, 0, kind, message, state=target, reason=reason)
        keep = self.max_events_per_session
        try:
            changed = session.evolve(state=target, **fields)
            session, stored = await self.store.update_and_record(changed, event, keep=keep)
        except Conflict:  # written elsewhere meanwhile: apply to the fresh record if allowed
            fresh = await self._reload(session.id)
            if fresh is None:
                raise SessionNotFound(session.id) from None
            check_transition(fresh.state, target)
            changed = fresh.evolve(state=target, **fields)
            session, stored = await self.store.update_and_record(changed, event, keep=keep)
        self._remember(session)
        metrics.TRANSITIONS.labels(previous.value, target.value).inc()
        self.bus.publish(stored)
        return session

    async def _fail(self, session: Session, reason: str, message: str) -> Session:
        metrics.SESSION_FAILURES.labels(reason).inc()
        self.log.warning("session %s failed: %s: %s", session.id, reason, message)
        fresh = await self._load(session.id) or session
        if fresh.state == S.ERROR:
            return await self._save(fresh, error=f"{reason}: {message}")
        return await self._transition(
            fresh,
            S.ERROR,
            "failed",
            message,
            reason=reason,
            error=f"{reason}: {message}",
            termination_reason=reason,
        )

    async def _save(self, session: Session, **fields: Any) -> Session:
        """Write ``fields``; on a concurrent write elsewhere, re-read and re-apply once."""
        try:
            return self._remember(await self.store.update(session.evolve(**fields)))
        except Conflict:
            fresh = await self._reload(session.id)
            if fresh is None:
                raise SessionNotFound(session.id) from None
            return self._remember(await self.store.update(fresh.evolve(**fields)))

    async def _record(
        self,
        session: Session,
        kind: str,
        message: str,
        state: SessionState | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        event = SessionEvent(session.id, 0, kind, message, state=state, reason=reason)
        stored = await self.store.add_event(event, keep=self.max_events_per_session)
        self.bus.publish(stored)

    # -- internals: readiness -----------------------------------------------------------------

    def _watch_ready(self, session_id: str) -> None:
        self._cancel_waiter(session_id)
        task = self._spawn(self._await_ready(session_id))
        self._waiters[session_id] = task

    def _cancel_waiter(self, session_id: str) -> None:
        task = self._waiters.pop(session_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _await_ready(self, session_id: str) -> None:
        try:
            placement = await self.backend.wait_ready(
                session_id, timeout=self.ready_timeout_seconds
            )
        except SessionFailed as e:
            await self._settle(session_id, failure=(e.reason, e.detail))
        except TimeoutError:
            seconds = self.ready_timeout_seconds
            await self._settle(session_id, failure=("Timeout", f"not ready after {seconds:g} s"))
        else:
            await self._settle(session_id, container_id=placement.container_id)
        finally:
            if self._waiters.get(session_id) is asyncio.current_task():
                del self._waiters[session_id]

    async def _settle(
        self,
        session_id: str,
        *,
        failure: tuple[str, str] | None = None,
        container_id: str | None = None,
    ) -> None:
        async with self._lock(session_id):
            session = await self._load(session_id)
            if session is None or session.state != S.INIT:
                return  # paused, deleted or failed meanwhile: nothing to settle
            if failure is not None:
                await self._fail(session, *failure)
                return
            now = utcnow()
            fields: dict[str, Any] = {"started_at": now, "last_activity_at": now}
            if container_id:
                fields["container_id"] = container_id
            await self._transition(session, S.READY, "ready", "session is ready", **fields)
            began = self._started.pop(session_id, None)
            if began is not None:
                elapsed = time.monotonic() - began
                metrics.CREATE_DURATION.labels(self.backend.name).observe(elapsed)

    def _on_backend_event(self, event: BackendEvent) -> None:
        if self._closing:
            return
        if event.kind in TRANSIENT_KINDS:
            # Progress is streamed live and kept in a small ring, not written to the store: a
            # spawn storm would otherwise queue a dozen writes per session ahead of "ready".
            transient = SessionEvent(
                event.session_id, 0, event.kind, event.message, reason=event.reason
            )
            ring = self._progress.setdefault(event.session_id, deque(maxlen=PROGRESS_RING))
            ring.append(transient)
            self.bus.publish(transient)
            return
        self._spawn(self._handle_backend_event(event))

    def recent_progress(self, session_id: str) -> EventList:
        """The latest progress and warning events from the backend (not stored), oldest first."""
        return list(self._progress.get(session_id, ()))

    async def _handle_backend_event(self, event: BackendEvent) -> None:
        session = await self._load(event.session_id)
        if session is None or not self.handles(session):
            return
        if event.kind == "lost":
            await self._record(session, "warning", event.message, reason=event.reason)
            await self.compute_lost(session.id, f"compute lost: {event.message}")
            return
        if event.kind == "exited" and session.state in (S.READY, S.BUSY):
            async with self._lock(session.id):
                fresh = await self._load(session.id)
                if fresh is not None and fresh.state in (S.READY, S.BUSY):
                    await self._fail(fresh, event.reason or "Exited", event.message)
            return
        await self._record(session, event.kind, event.message, reason=event.reason)

    # -- internals: helpers -------------------------------------------------------------------

    def _spec(self, session: Session, extra: Mapping[str, Any]) -> SessionSpec:
        fields = {k: v for k, v in extra.items() if k != "session_id"}
        return SessionSpec(
            session_id=session.id,
            name=session.name,
            owner=session.owner,
            starting_prompt=session.starting_prompt,
            profile=session.profile,
            **fields,
        )

    async def _check_quota(self, principal: Principal) -> None:
        limit = self.max_sessions_per_user
        if limit <= 0 or principal.admin:
            return
        page = await self.store.list(owner=principal.name, limit=limit)
        if len(page[0]) >= limit:
            raise QuotaExceeded(f"user {principal.name!r} already has {limit} sessions (the limit)")

    async def _load(self, session_id: str) -> Session | None:
        """A session from the cache (when on), else from the store."""
        cached = self._cache.get(session_id) if self.cache_sessions else None
        return cached if cached is not None else await self._reload(session_id)

    async def _reload(self, session_id: str) -> Session | None:
        """A session from the store, refreshing the cache."""
        session = await self.store.get(session_id)
        if session is None:
            self._cache.pop(session_id, None)
            return None
        return self._remember(session)

    def _remember(self, session: Session) -> Session:
        if self.cache_sessions:
            self._cache[session.id] = session
        return session

    def _activity_written(self, batch: Mapping[str, datetime]) -> None:
        """Keep cached sessions' ``last_activity_at`` in step with the batch just written."""
        for session_id, when in batch.items():
            cached = self._cache.get(session_id)
            if cached is not None and (cached.last_activity_at or when) <= when:
                self._cache[session_id] = cached.evolve(last_activity_at=when)

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        return lock

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("background task failed", exc_info=task.exception())

    def handles(self, session: Session) -> bool:
        """Whether this manager looks after the session (hub sessions may be the hub's)."""
        return self.handle_hub_sessions or "jupyterhub" not in session.metadata

    def compute_state(self, session_id: str) -> ComputeState:
        """The backend's cached view of a session's compute (no I/O)."""
        return self.backend.compute_state(session_id)

    @staticmethod
    def is_active(session: Session) -> bool:
        """Whether a session has or is getting compute."""
        return session.state in ACTIVE_STATES
