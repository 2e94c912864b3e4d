"""The object store: current objects, one global resourceVersion and a bounded change history.

Stored objects are never mutated in place: every write stores a new dict, so handlers and watch
events can share references safely. Listeners run synchronously inside each write, which keeps
"register a watcher, then read the history" free of races in a single event loop.
"""

from __future__ import annotations

import builtins
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import too_old
from .objects import Obj, meta

ObjKey = tuple[str, str]  # (namespace or "", name)


@dataclass
class Change:
    """One write: ADDED, MODIFIED or DELETED, with the object before and after."""

    type: str
    rv: int
    resource: str
    obj: Obj
    old: Obj | None = None
    _encoded: bytes | None = field(default=None, repr=False)

    def encoded(self) -> bytes:
        """The watch line for this change, serialised once for every watcher."""
        if self._encoded is None:
            line = json.dumps({"type": self.type, "object": self.obj}, separators=(",", ":"))
            self._encoded = line.encode() + b"\n"
        return self._encoded


Listener = Callable[[Change], None]


class Store:
    """Objects by resource key, with a monotonically increasing resourceVersion."""

    def __init__(self, *, history_size: int) -> None:
        self.rv = 1
        self._objects: dict[str, dict[ObjKey, Obj]] = {}
        self._history: deque[Change] = deque()
        self._history_size = history_size
        self.compacted_rv = 1
        """Changes with a resourceVersion above this are all still in the history."""
        self._listeners: list[Listener] = []

    # -- reading -----------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(resource, {}).get((namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """Objects of one resource, sorted by namespace then name (the order of etcd keys)."""
        bucket = self._objects.get(resource, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def count(self, resource: str) -> int:
        return len(self._objects.get(resource, {}))

    def changes_since(self, rv: int) -> builtins.list[Change]:
        """Changes after ``rv``; 410 Expired when some of them were compacted away."""
        if rv < self.compacted_rv:
            raise too_old(rv, self.compacted_rv + 1)
        if not self._history or self._history[-1].rv <= rv:
            return []
        out = []
        for change in reversed(self._history):
            if change.rv <= rv:
                break
            out.append(change)
        out.reverse()
        return out

    # -- writing -----------------------------------------------------------------------------
    def put(self, resource: str, obj: Obj, *, added: bool) -> Obj:
        """Store ``obj`` under a fresh resourceVersion and tell the listeners."""
        m = meta(obj)
        key = (m.get("namespace") or "", m["name"])
        bucket = self._objects.setdefault(resource, {})
        old = bucket.get(key)
        self.rv += 1
        m["resourceVersion"] = str(self.rv)
        bucket[key] = obj
        self._emit(
            Change("ADDED" if old is None or added else "MODIFIED", self.rv, resource, obj, old)
        )
        return obj

    def remove(self, resource: str, namespace: str, name: str) -> Obj | None:
        """Delete an object; the DELETED event carries it with a new resourceVersion."""
        bucket = self._objects.get(resource, {})
        old = bucket.pop((namespace, name), None)
        if old is None:
            return None
        self.rv += 1
        gone = dict(old)
        gone["metadata"] = dict(old["metadata"], resourceVersion=str(self.rv))
        self._emit(Change("DELETED", self.rv, resource, gone, old))
        return gone

    def compact(self) -> None:
        """Forget all history: resuming from any version handed out so far now gets 410.

        The resourceVersion moves on by one so that even the latest list is too old to resume
        from, as after an etcd compaction that followed further writes.
        """
        self.rv += 1
        self.compacted_rv = self.rv
        self._history.clear()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every change; returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, change: Change) -> None:
        self._history.append(change)
        while len(self._history) > self._history_size:
            self.compacted_rv = self._history.popleft().rv
        for listener in list(self._listeners):
            listener(change)
