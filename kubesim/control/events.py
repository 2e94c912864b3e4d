"""core/v1 Events from the simulated components, aggregated by count and bounded in number."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict

from ..errors import ApiError
from ..objects import Obj, timestamp
from ..registry import Registry

EventKey = tuple[str, str, str, str]  # involved uid, type, reason, message


class EventRecorder:
    """Writes Events the way components do: repeated ones bump ``count`` and ``lastTimestamp``."""

    def __init__(self, registry: Registry, *, limit: int) -> None:
        self.registry = registry
        self.limit = limit
        self._recent: OrderedDict[EventKey, tuple[str, str]] = OrderedDict()
        self._serial = itertools.count()

    def record(
        self,
        obj: Obj,
        event_type: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str = "",
        field_path: str = "",
    ) -> None:
        """Record an event about ``obj`` (Normal or Warning) from ``component``."""
        m = obj["metadata"]
        key = (m.get("uid", ""), event_type, reason, message)
        if key in self._recent and self._bump(*self._recent[key]):
            self._recent.move_to_end(key)
            return
        namespace = m.get("namespace") or "default"
        name = f"{m['name']}.{time.time_ns():x}{next(self._serial):x}"
        involved: Obj = {
            "kind": obj.get("kind"),
            "namespace": m.get("namespace", ""),
            "name": m["name"],
            "uid": m.get("uid", ""),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": m.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        stamp = timestamp()
        event: Obj = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        try:
            self.registry.create_internal("events", event)
        except ApiError:
            return  # the namespace is gone or terminating: the API server would refuse it too
        self._recent[key] = (namespace, name)
        self._trim()

    def _bump(self, namespace: str, name: str) -> bool:
        def bump(ev: Obj) -> None:
            ev["count"] = int(ev.get("count", 1)) + 1
            ev["lastTimestamp"] = timestamp()

        return self.registry.mutate("events", namespace, name, bump) is not None

    def _trim(self) -> None:
        while len(self._recent) > self.limit:
            _, (namespace, name) = self._recent.popitem(last=False)
            self.registry.store.remove("events", namespace, name)
