"""Garbage collection: owner references, PVC/PV protection and namespace termination."""

from __future__ import annotations

import contextlib

from ..deletion import FOREGROUND, ORPHAN, DeleteOptions
from ..errors import ApiError
from ..objects import Obj
from ..resources import CATALOG
from ..rules import PV_PROTECTION, PVC_PROTECTION
from ..store import Change
from .base import Context

Ref = tuple[str, str, str]  # resource key, namespace, name
TERMINAL = ("Succeeded", "Failed")


def _ref(change_resource: str, obj: Obj) -> Ref:
    return change_resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _without(finalizer: str) -> object:
    def drop(obj: Obj) -> None:
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != finalizer
        ]

    return drop


class GarbageCollector:
    """Deletes dependents of deleted owners and releases protection finalizers when safe."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.dependents: dict[str, set[Ref]] = {}
        self.owners: dict[str, Ref] = {}

    def start(self) -> None:
        self.ctx.store.subscribe(self.on_change)

    def on_change(self, change: Change) -> None:
        self._index(change)
        m = change.obj["metadata"]
        if change.type == "DELETED":
            self._owner_gone(m.get("uid", ""))
            self._dependent_gone(change.old or change.obj)
        elif m.get("deletionTimestamp"):
            self._later(self._finalize, change.resource, m.get("namespace", ""), m["name"])
        if change.resource == "pods" and (change.type == "DELETED" or _is_terminal(change.obj)):
            self._later(self._recheck_claims, m["namespace"])
        if change.resource == "persistentvolumeclaims" and change.type == "DELETED":
            self._later(self._recheck_volumes)
        if change.type == "DELETED" and m.get("namespace"):
            self._later(self._finalize, "namespaces", "", m["namespace"])

    def _later(self, fn: object, *args: object) -> None:
        self.ctx.timers.later(0, fn, *args)  # type: ignore[arg-type]

    def _index(self, change: Change) -> None:
        m = change.obj["metadata"]
        uid = m.get("uid", "")
        ref = _ref(change.resource, change.obj)
        if change.type == "DELETED":
            self.owners.pop(uid, None)
        else:
            self.owners[uid] = ref
        for owner in (change.old or {}).get("metadata", {}).get("ownerReferences") or []:
            self.dependents.get(owner.get("uid", ""), set()).discard(ref)
        if change.type != "DELETED":
            for owner in m.get("ownerReferences") or []:
                self.dependents.setdefault(owner.get("uid", ""), set()).add(ref)

    def _delete(self, ref: Ref) -> None:
        with contextlib.suppress(ApiError):  # already gone
            self.ctx.deleter.delete(CATALOG.by_key(ref[0]), ref[1], ref[2], DeleteOptions())

    def _owner_gone(self, uid: str) -> None:
        for ref in list(self.dependents.get(uid, ())):
            obj = self.ctx.store.get(*ref)
            owners = (obj or {}).get("metadata", {}).get("ownerReferences") or []
            if obj is not None and all(o.get("uid") not in self.owners for o in owners):
                self._later(self._delete, ref)

    def _dependent_gone(self, obj: Obj) -> None:
        for owner in obj["metadata"].get("ownerReferences") or []:
            if (ref := self.owners.get(owner.get("uid", ""))) is not None:
                self._later(self._finalize, *ref)

    # -- finalizers ------------------------------------------------------------------------
    def _finalize(self, key: str, namespace: str, name: str) -> None:
        obj = self.ctx.store.get(key, namespace, name)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        finalizers = obj["metadata"].get("finalizers") or []
        if key == "namespaces":
            self._finalize_namespace(obj)
        if FOREGROUND in finalizers:
            self._foreground(key, obj)
        if ORPHAN in finalizers:
            self._orphan(key, obj)
        if PVC_PROTECTION in finalizers and not self._claim_in_use(obj):
            self.ctx.registry.mutate(key, namespace, name, _without(PVC_PROTECTION))  # type: ignore[arg-type]
        if PV_PROTECTION in finalizers and not self._volume_in_use(obj):
            self.ctx.registry.mutate(key, namespace, name, _without(PV_PROTECTION))  # type: ignore[arg-type]

    def _foreground(self, key: str, obj: Obj) -> None:
        m = obj["metadata"]
        remaining = [
            ref for ref in self.dependents.get(m["uid"], ()) if self.ctx.store.get(*ref) is not None
        ]
        for ref in remaining:
            self._delete(ref)
        if not remaining:
            self.ctx.registry.mutate(key, m.get("namespace", ""), m["name"], _without(FOREGROUND))  # type: ignore[arg-type]

    def _orphan(self, key: str, obj: Obj) -> None:
        m = obj["metadata"]
        for ref in list(self.dependents.get(m["uid"], ())):

            def unown(dep: Obj, uid: str = m["uid"]) -> None:
                dep["metadata"]["ownerReferences"] = [
                    o for o in dep["metadata"].get("ownerReferences") or [] if o.get("uid") != uid
                ]
                if not dep["metadata"]["ownerReferences"]:
                    del dep["metadata"]["ownerReferences"]

            self.ctx.registry.mutate(*ref, unown)
        self.ctx.registry.mutate(key, m.get("namespace", ""), m["name"], _without(ORPHAN))  # type: ignore[arg-type]

    def _claim_in_use(self, pvc: Obj) -> bool:
        m = pvc["metadata"]
        for pod in self.ctx.store.list("pods", m["namespace"]):
            if _is_terminal(pod):
                continue
            for vol in (pod.get("spec") or {}).get("volumes") or []:
                if (vol.get("persistentVolumeClaim") or {}).get("claimName") == m["name"]:
                    return True
        return False

    def _volume_in_use(self, pv: Obj) -> bool:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        claim = self.ctx.store.get(
            "persistentvolumeclaims", ref.get("namespace", ""), ref.get("name", "")
        )
        return claim is not None and claim["metadata"]["uid"] == ref.get("uid")

    def _recheck_claims(self, namespace: str) -> None:
        for pvc in self.ctx.store.list("persistentvolumeclaims", namespace):
            if pvc["metadata"].get("deletionTimestamp"):
                self._finalize("persistentvolumeclaims", namespace, pvc["metadata"]["name"])

    def _recheck_volumes(self) -> None:
        for pv in self.ctx.store.list("persistentvolumes"):
            if pv["metadata"].get("deletionTimestamp"):
                self._finalize("persistentvolumes", "", pv["metadata"]["name"])

    # -- namespaces ----------------------------------------------------------------------------
    def _finalize_namespace(self, ns: Obj) -> None:
        """Delete everything in a Terminating namespace; remove it once it is empty."""
        name = ns["metadata"]["name"]
        left = 0
        for rt in CATALOG.resources:
            if not rt.namespaced or not rt.stored:
                continue
            for obj in self.ctx.store.list(rt.key, name):
                left += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete((rt.key, name, obj["metadata"]["name"]))
        if left == 0 and self.ctx.store.get("namespaces", "", name) is not None:
            self.ctx.store.remove("namespaces", "", name)


def _is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL
