"""Deleting a session's pod or claim and waiting until that very object is gone.

Waits are by uid, answered by the watch caches: a new object that took the same name is not
mistaken for the old one still being there, nor the old one's deletion for the new one's. When
an object outlives the wait the error names it, the finalizers that hold it and when its
deletion was requested, e.g. ``persistentvolumeclaim session-pvc-… is still present after 120 s:
held by finalizers example.com/hold (deletion requested at 2025-01-01T00:00:00Z)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from raworc_spawner.backends.kubernetes.apierrors import APIConflict, APINotFound
from raworc_spawner.backends.kubernetes.naming import pod_name, pvc_name
from raworc_spawner.backends.kubernetes.tracked import GoneWaiter, TrackedSessions
from raworc_spawner.errors import BackendError

if TYPE_CHECKING:
    from raworc_spawner.backends.kubernetes.backend import KubernetesBackend

Obj = dict[str, Any]
PODS = "pods"
#: The singular the API and kubectl use for each resource.
NOUNS = {"pods": "pod", "persistentvolumeclaims": "persistentvolumeclaim"}


class Removal:
    """Deletes a session's objects through the backend's client and waits on its caches."""

    def __init__(self, backend: KubernetesBackend, tracked: TrackedSessions) -> None:
        self._backend = backend
        self._tracked = tracked

    async def delete_and_wait(self, resource: str, sid: str, *, obj: Obj | None = None) -> None:
        """Delete the session's ``resource`` (``obj``, else the cached one) and wait it out.

        Only that object is deleted (a uid precondition); whatever state it is in (backing
        off, crash-looping, pending) it is asked to go. A pod is given
        ``delete_grace_seconds`` (or its own grace period). ``obj`` not from the cache (the
        cache was behind) is waited for until its deletion is seen.
        """
        target = obj if obj is not None else self._backend.cached(resource, sid)
        if target is None:
            return
        uid = target["metadata"].get("uid")
        if resource == PODS:
            self._tracked.track(sid).retire(uid)
        grace = self._backend.delete_grace_seconds
        with contextlib.suppress(APINotFound, APIConflict):  # gone, or another with that name
            await self._backend.require_client().delete(
                resource,
                self._backend.namespace,
                _name(resource, sid),
                grace_period_seconds=grace if resource == PODS and grace >= 0 else None,
                uid=uid,
            )
        await self.wait_gone(resource, sid, uid=uid, seen=obj is None)

    async def wait_gone(
        self, resource: str, sid: str, *, uid: str | None, seen: bool = True
    ) -> None:
        """Wait until the object ``uid`` no longer exists (raises BackendError when it stays).

        ``seen``: the object is known to the cache, so its absence there means it is gone.
        """
        name = _name(resource, sid)
        cached = self._backend.cached(resource, sid)
        cached_uid = (cached or {}).get("metadata", {}).get("uid")
        if cached is not None and cached_uid != uid:
            return  # another object holds the name now
        if cached is None and seen:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._tracked.track(sid).gone.setdefault(name, [])
        waiter = GoneWaiter(uid, future)
        waiters.append(waiter)
        timeout = self._backend.gone_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError as e:
            raise BackendError(self.stuck(resource, sid, waited=timeout)) from e
        finally:
            waiters.remove(waiter)
            tracked = self._tracked.get(sid)
            if tracked is not None and not waiters:
                tracked.gone.pop(name, None)

    def stuck(self, resource: str, sid: str, *, waited: float) -> str:
        """Why the session's ``resource`` is still there, as the cache shows it."""
        head = f"{NOUNS.get(resource, resource)} {_name(resource, sid)} is still present"
        head += f" after {waited:g} s"
        obj = self._backend.cached(resource, sid)
        if obj is None:
            return f"{head}: its deletion was not seen yet (the watch may be behind)"
        meta = obj.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        requested = meta.get("deletionTimestamp")
        when = f"deletion requested at {requested}" if requested else "no deletion recorded yet"
        if finalizers:
            return f"{head}: held by finalizers {', '.join(finalizers)} ({when})"
        if resource == PODS and requested:
            grace = meta.get("deletionGracePeriodSeconds")
            return f"{head}: its containers have not stopped yet (grace period {grace} s; {when})"
        return f"{head}: nothing holds it ({when})"


def _name(resource: str, sid: str) -> str:
    return pod_name(sid) if resource == PODS else pvc_name(sid)
