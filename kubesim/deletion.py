"""DELETE and DELETECOLLECTION: grace periods, finalizers, propagation and preconditions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import bad_request, conflict
from .objects import Obj, clone, now, timestamp
from .registry import ListOptions, Registry, Written
from .resources import ResourceType

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class DeleteOptions:
    """``metav1.DeleteOptions``, from the request body or the query string."""

    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False

    @classmethod
    def from_body(cls, body: Any, query: dict[str, str]) -> DeleteOptions:
        data = body if isinstance(body, dict) else {}
        pre = data.get("preconditions") or {}
        grace = data.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        policy = data.get("propagationPolicy") or query.get("propagationPolicy")
        if policy not in (None, "Foreground", "Background", "Orphan"):
            raise bad_request(f'DeleteOptions.propagationPolicy: Unsupported value: "{policy}"')
        orphan = data.get("orphanDependents", None)
        dry = data.get("dryRun") or query.get("dryRun")
        return cls(
            grace_period_seconds=None if grace is None else int(grace),
            propagation_policy=policy,
            orphan_dependents=orphan if isinstance(orphan, bool) else None,
            uid=pre.get("uid"),
            resource_version=pre.get("resourceVersion"),
            dry_run=bool(dry),
        )

    @property
    def policy(self) -> str:
        if self.propagation_policy:
            return self.propagation_policy
        return "Orphan" if self.orphan_dependents else "Background"


def status_success(rt: ResourceType, obj: Obj) -> Obj:
    details: Obj = {
        "name": obj["metadata"]["name"],
        "kind": rt.plural,
        "uid": obj["metadata"]["uid"],
    }
    if rt.group:
        details["group"] = rt.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _pod_grace(obj: Obj, opts: DeleteOptions) -> int:
    """The grace period a pod gets: 0 when never scheduled or already finished."""
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    if not spec.get("nodeName") or status.get("phase") in TERMINAL_PHASES:
        return 0
    if opts.grace_period_seconds is not None:
        return max(opts.grace_period_seconds, 0)
    return int(spec.get("terminationGracePeriodSeconds", 30))


class Deleter:
    """Deletes through a :class:`Registry`, leaving objects Terminating when they must wait."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.store = registry.store

    def delete(self, rt: ResourceType, namespace: str, name: str, opts: DeleteOptions) -> Written:
        ns = namespace if rt.namespaced else ""
        obj = self.registry.get(rt, ns, name)
        self._check_preconditions(rt, obj, opts)
        if opts.dry_run:
            return Written(obj)
        if rt.key == "namespaces":
            return Written(self._terminate_namespace(obj))
        grace = _pod_grace(obj, opts) if rt.key == "pods" else 0
        if obj["metadata"].get("deletionTimestamp"):
            return Written(self._again(rt, obj, grace))
        finalizers = list(obj["metadata"].get("finalizers") or [])
        extra = {"Foreground": [FOREGROUND], "Orphan": [ORPHAN]}.get(opts.policy, [])
        if finalizers or extra or grace:
            return Written(self._mark(rt, obj, grace, extra))
        gone = self.store.remove(rt.key, ns, name) or obj
        return Written(gone if rt.return_deleted else status_success(rt, gone))

    def _check_preconditions(self, rt: ResourceType, obj: Obj, opts: DeleteOptions) -> None:
        m = obj["metadata"]
        if opts.uid and opts.uid != m["uid"]:
            raise conflict(
                rt,
                m["name"],
                f"Precondition failed: UID in precondition: {opts.uid}, "
                f"UID in object meta: {m['uid']}",
            )
        if opts.resource_version and opts.resource_version != m["resourceVersion"]:
            raise conflict(
                rt,
                m["name"],
                f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
                f"ResourceVersion in object meta: {m['resourceVersion']}",
            )

    def _mark(self, rt: ResourceType, obj: Obj, grace: int, extra: list[str]) -> Obj:
        new = clone(obj)
        m = new["metadata"]
        m["deletionTimestamp"] = timestamp(now() + dt.timedelta(seconds=grace))
        m["deletionGracePeriodSeconds"] = grace
        finalizers = m.setdefault("finalizers", [])
        finalizers.extend(f for f in extra if f not in finalizers)
        if not finalizers:
            m.pop("finalizers")
        return self.store.put(rt.key, new, added=False)

    def _again(self, rt: ResourceType, obj: Obj, grace: int) -> Obj:
        """A second DELETE may shorten a pod's grace period, down to immediate removal."""
        m = obj["metadata"]
        current = m.get("deletionGracePeriodSeconds", 0)
        if rt.key != "pods" or grace >= current:
            return obj
        if grace == 0 and not m.get("finalizers"):
            return self.store.remove(rt.key, m.get("namespace", ""), m["name"]) or obj
        new = clone(obj)
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        new["metadata"]["deletionTimestamp"] = timestamp(now() + dt.timedelta(seconds=grace))
        return self.store.put(rt.key, new, added=False)

    def _terminate_namespace(self, ns: Obj) -> Obj:
        if ns["metadata"].get("deletionTimestamp"):
            return ns
        new = clone(ns)
        new["metadata"]["deletionTimestamp"] = timestamp()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["status"] = {"phase": "Terminating"}
        return self.store.put("namespaces", new, added=False)

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, list_opts: ListOptions, opts: DeleteOptions
    ) -> Obj:
        """Delete every object the selectors match; answer with the list of what was deleted."""
        listed = self.registry.list(rt, namespace, list_opts)
        deleted = []
        for obj in listed["items"]:
            m = obj["metadata"]
            written = self.delete(rt, m.get("namespace", ""), m["name"], opts)
            deleted.append(written.obj if written.obj.get("kind") != "Status" else obj)
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": deleted,
        }
