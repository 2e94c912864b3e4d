"""Which session objects are this instance's: rebuilding records, reporting others', claiming.

Every pod and claim a server creates carries its instance in the label (and annotation)
``raworc.dev/instance``, and the backend's caches select on that label, so a server sees and
acts on its own objects only. This module answers the rest of the ownership questions:

- :meth:`Ownership.describe` rebuilds what a session record needs from the annotations of the
  cached claim (or the pod, when there is no claim), for re-adoption;
- :meth:`Ownership.foreign` lists, without touching them, the session objects of other
  instances and those that name none;
- :meth:`Ownership.claim` labels the objects of given sessions that name no instance (made by
  an earlier version) as this instance's, and waits until the caches hold them;
- :meth:`Ownership.verified_workspace` makes sure a resumed session finds the very claim its
  record names, never an empty replacement (``WorkspaceLost``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from raworc_spawner.backends.base import (
    ForeignKind,
    ForeignObject,
    FoundSession,
    HubServer,
    SessionSpec,
)
from raworc_spawner.backends.kubernetes import naming, podstate
from raworc_spawner.backends.kubernetes.apierrors import APIConflict, APINotFound
from raworc_spawner.backends.kubernetes.naming import (
    INSTANCE_ANNOTATION,
    INSTANCE_LABEL,
    instance_of,
    pod_name,
    pvc_name,
    session_id_of,
)
from raworc_spawner.errors import BackendError, SessionFailed

if TYPE_CHECKING:
    from raworc_spawner.backends.kubernetes.backend import KubernetesBackend

Obj = dict[str, Any]
PODS = "pods"
PVCS = "persistentvolumeclaims"
KINDS = {PODS: ForeignKind.POD, PVCS: ForeignKind.PERSISTENT_VOLUME_CLAIM}
#: Seconds a claimed object may take to reach the caches through the watch.
CLAIM_SEEN_TIMEOUT = 30.0
#: Claim patches sent at once.
CLAIM_CONCURRENCY = 16
#: Attempts at a claim patch whose object keeps changing under it (409 Conflict).
CLAIM_ATTEMPTS = 3


class Ownership:
    """Ownership queries and the claim of unowned objects, through the backend's client."""

    def __init__(self, backend: KubernetesBackend) -> None:
        self._backend = backend
        self._arrivals: dict[tuple[str, str], list[tuple[str, asyncio.Future[None]]]] = {}
        backend.pods.add_listener(lambda kind, obj: self._seen(PODS, obj))
        backend.pvcs.add_listener(lambda kind, obj: self._seen(PVCS, obj))

    @property
    def instance(self) -> str:
        """This server's instance name."""
        return self._backend.instance_name

    # -- describe -------------------------------------------------------------------------------

    def describe(self, session_ids: Collection[str]) -> list[FoundSession]:
        """The sessions among ``session_ids`` with a cached claim or pod that can be rebuilt."""
        found = []
        for sid in dict.fromkeys(session_ids):
            pod = self._backend.cached(PODS, sid)
            pvc = self._backend.cached(PVCS, sid)
            session = found_session(sid, pod=pod, pvc=pvc)
            if session is not None:
                found.append(session)
        return found

    # -- foreign --------------------------------------------------------------------------------

    async def foreign(self) -> list[ForeignObject]:
        """Session pods and claims of other instances or of none: one LIST of each kind."""
        client = self._backend.require_client()
        selector = naming.foreign_selector(self.instance)
        found: list[ForeignObject] = []
        for resource in (PODS, PVCS):
            items, _ = await client.list_all(
                resource, self._backend.namespace, label_selector=selector
            )
            found.extend(
                ForeignObject(
                    kind=KINDS[resource],
                    name=obj["metadata"]["name"],
                    session_id=session_id_of(obj),
                    instance=instance_of(obj),
                )
                for obj in items
                if instance_of(obj) != self.instance  # whatever the server's selector did
            )
        return sorted(found, key=lambda o: (o.kind, o.name))

    # -- claim ----------------------------------------------------------------------------------

    async def claim(self, session_ids: Collection[str]) -> list[str]:
        """Label these sessions' objects that name no instance as ours; wait till cached.

        Only an object named as the session's pod or claim is taken, and only if no instance
        annotation names another owner either. Each patch is conditional on the version
        listed, so two servers claiming at once cannot both take an object. Returns the
        session ids whose objects were claimed, sorted; raises BackendError when the watch
        does not show a claimed object within :data:`CLAIM_SEEN_TIMEOUT` seconds.
        """
        wanted = set(session_ids)
        if not wanted:
            return []
        client = self._backend.require_client()
        candidates: list[tuple[str, Obj]] = []
        for resource in (PVCS, PODS):
            items, _ = await client.list_all(
                resource, self._backend.namespace, label_selector=naming.unowned_selector()
            )
            candidates.extend((resource, obj) for obj in items if self._claimable(obj, wanted))
        gate = asyncio.Semaphore(CLAIM_CONCURRENCY)

        async def claim_one(resource: str, obj: Obj) -> tuple[str, Obj] | None:
            async with gate:
                claimed = await self._patch_owner(resource, obj)
            return (resource, claimed) if claimed is not None else None

        results = await asyncio.gather(*(claim_one(r, o) for r, o in candidates))
        claimed = [result for result in results if result is not None]
        await self._until_cached(claimed)
        return sorted({str(session_id_of(obj)) for _, obj in claimed})

    def _claimable(self, obj: Obj, wanted: set[str]) -> bool:
        """One of ``wanted``'s pod or claim, naming no owner instance (nor another's in notes)."""
        sid = session_id_of(obj)
        meta = obj.get("metadata") or {}
        if sid not in wanted or instance_of(obj) is not None:
            return False
        if meta.get("name") not in (pod_name(sid), pvc_name(sid)):
            return False
        noted = (meta.get("annotations") or {}).get(INSTANCE_ANNOTATION)
        return noted in (None, "", self.instance)

    async def _patch_owner(self, resource: str, obj: Obj) -> Obj | None:
        """Merge-patch the owner label and annotation onto ``obj``; None if it was not ours to take.

        On a conflict (the object changed since it was read) it is read again and, while it
        still names no owner, patched again.
        """
        client = self._backend.require_client()
        namespace, name = self._backend.namespace, obj["metadata"]["name"]
        for _ in range(CLAIM_ATTEMPTS):
            body = {
                "metadata": {
                    "resourceVersion": obj["metadata"].get("resourceVersion"),
                    "labels": {INSTANCE_LABEL: self.instance},
                    "annotations": {INSTANCE_ANNOTATION: self.instance},
                }
            }
            try:
                return await client.patch(resource, namespace, name, body)
            except APINotFound:
                return None
            except APIConflict:
                try:
                    obj = await client.get(resource, namespace, name)
                except APINotFound:
                    return None
                owner = instance_of(obj)
                if owner is not None:
                    return obj if owner == self.instance else None
        return None

    async def _until_cached(self, objects: Iterable[tuple[str, Obj]]) -> None:
        """Wait until the caches hold each object (by uid), the watch having delivered it."""
        waits = []
        for resource, obj in objects:
            sid = str(session_id_of(obj))
            uid = obj["metadata"].get("uid") or ""
            if _uid(self._backend.cached(resource, sid)) == uid:
                continue
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._arrivals.setdefault((resource, obj["metadata"]["name"]), []).append((uid, future))
            waits.append(future)
        if not waits:
            return
        try:
            async with asyncio.timeout(CLAIM_SEEN_TIMEOUT):
                await asyncio.gather(*waits)
        except TimeoutError as e:
            missing = sum(not f.done() for f in waits)
            raise BackendError(
                f"claimed {len(waits)} objects but the watch has not shown {missing} of them "
                f"after {CLAIM_SEEN_TIMEOUT:g} s"
            ) from e
        finally:
            for future in waits:
                future.cancel()
            self._arrivals = {
                key: kept
                for key, waiters in self._arrivals.items()
                if (kept := [(u, f) for u, f in waiters if not f.done()])
            }

    def _seen(self, resource: str, obj: Obj) -> None:
        """A cache change: settle whoever waits for this object (any change, even its end)."""
        key = (resource, obj["metadata"]["name"])
        for uid, future in self._arrivals.get(key, ()):
            if uid == _uid(obj) and not future.done():
                future.set_result(None)

    # -- changed fields ---------------------------------------------------------------------

    async def update_recorded(
        self, session_id: str, *, name: str, waiting_timeout_seconds: int | None
    ) -> None:
        """Patch the session-name label and the changeable annotations of its cached objects.

        Only objects this instance owns are cached, so only those are patched.
        """
        client = self._backend.require_client()
        annotations = naming.recorded_annotations(
            name=name, waiting_timeout_seconds=waiting_timeout_seconds
        )
        body = {
            "metadata": {
                "labels": {naming.SESSION_NAME_LABEL: naming.label_value(name)},
                "annotations": annotations,
            }
        }
        for resource in (PVCS, PODS):
            obj = self._backend.cached(resource, session_id)
            if obj is None or podstate.is_terminating(obj):
                continue
            try:
                await client.patch(resource, self._backend.namespace, obj["metadata"]["name"], body)
            except APINotFound:
                continue  # gone since the cache saw it: nothing left to name

    # -- the expected workspace -----------------------------------------------------------------

    async def verified_workspace(self, spec: SessionSpec) -> Obj:
        """The claim whose volume is ``spec.expected_volume``; SessionFailed when it is not there.

        Raises ``WorkspaceLost`` when the claim is gone, is being deleted, or another claim of
        the same name took its place, and ``AlreadyExists`` when it is the session's claim
        but another instance's (or no instance's). A cache miss is confirmed with a GET.
        """
        sid, expected = spec.session_id, str(spec.expected_volume)
        name = pvc_name(sid)
        pvc = self._backend.cached(PVCS, sid) or await self._read(PVCS, name)
        if pvc is None:
            raise workspace_lost(name, expected, "it no longer exists (deleted outside raworc)")
        volume = f"pvc-{_uid(pvc)}"
        if volume != expected:
            why = f"another claim of that name (volume {volume}) took its place"
            raise workspace_lost(name, expected, why)
        owner = instance_of(pvc)
        if owner != self.instance:
            raise SessionFailed("AlreadyExists", not_ours(PVCS, name, owner))
        if podstate.is_terminating(pvc):
            requested = pvc["metadata"]["deletionTimestamp"]
            raise workspace_lost(name, expected, f"it is being deleted (requested at {requested})")
        return pvc

    async def _read(self, resource: str, name: str) -> Obj | None:
        try:
            return await self._backend.require_client().get(resource, self._backend.namespace, name)
        except APINotFound:
            return None


def found_session(sid: str, *, pod: Obj | None, pvc: Obj | None) -> FoundSession | None:
    """The session as its claim (else its pod) describes it; None when it says too little.

    Name and owner come from ``raworc.dev/session-name`` and ``raworc.dev/owner`` (without
    either there is nothing to rebuild); the logical namespace defaults to ``default`` and
    the creation time to the object's own ``creationTimestamp`` (objects made before these
    were recorded).
    """
    source = pvc if pvc is not None else pod
    if source is None:
        return None
    meta = source.get("metadata") or {}
    notes = meta.get("annotations") or {}
    name, owner = notes.get(naming.SESSION_NAME_ANNOTATION), notes.get(naming.OWNER_ANNOTATION)
    if name is None or owner is None:
        return None
    created = notes.get(naming.CREATED_AT_ANNOTATION) or meta.get("creationTimestamp")
    return FoundSession(
        session_id=sid,
        name=str(name),
        owner=str(owner),
        namespace=str(notes.get(naming.NAMESPACE_ANNOTATION) or "default"),
        profile=notes.get(naming.PROFILE_ANNOTATION) or None,
        created_at=naming.parse_annotation_time(created),
        parent_session_id=notes.get(naming.CLONED_FROM_ANNOTATION) or None,
        waiting_timeout_seconds=naming.parse_seconds(notes.get(naming.WAITING_TIMEOUT_ANNOTATION)),
        hub_server=_hub_server(notes),
        persistent_volume_id=f"pvc-{_uid(pvc)}" if _uid(pvc) else None,
        container_id=_uid(pod),
        has_compute=pod is not None and not podstate.is_terminating(pod),
    )


def _hub_server(notes: dict[str, Any]) -> HubServer | None:
    user = notes.get(naming.HUB_USER_ANNOTATION)
    if not isinstance(user, str) or not user:
        return None
    return HubServer(user, str(notes.get(naming.HUB_SERVER_ANNOTATION) or ""))


def workspace_lost(claim: str, volume: str, why: str) -> SessionFailed:
    """The failure of a resume whose workspace claim is not the one the record names."""
    return SessionFailed(
        "WorkspaceLost",
        f"cannot resume: workspace claim {claim} (volume {volume}) is gone: {why}; "
        "starting with a new empty workspace needs an explicit request (new_workspace)",
    )


def not_ours(resource: str, name: str, owner: str | None) -> str:
    """Why an existing object of a session's name is left alone, in words."""
    who = f"instance {owner}" if owner else "no instance (made by an earlier version, unclaimed)"
    return f"{resource} {name} exists and belongs to {who}: left untouched"


def _uid(obj: Obj | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("uid")
