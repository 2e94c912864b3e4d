"""Watch fan-out: one store listener feeding a queue per open watch.

A watch sees exactly the changes after the resourceVersion it starts from, filtered by namespace
and selectors; an object that stops (or starts) matching a selector is sent as DELETED (or ADDED),
as the API server's watch cache does.
"""

from __future__ import annotations

import asyncio
import json

from .errors import ApiError, bad_request
from .objects import Obj
from .resources import ResourceType
from .selectors import Selector
from .store import Change, Store

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def encode_event(kind: str, obj: Obj) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def error_event(error: ApiError) -> bytes:
    return encode_event("ERROR", error.status())


class Watcher:
    """One open watch: what it filters on and the lines waiting to be sent."""

    def __init__(self, rt: ResourceType, namespace: str | None, selector: Selector) -> None:
        self.rt = rt
        self.namespace = namespace
        self.selector = selector
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace", "") != self.namespace:
            return False
        return self.selector.empty or self.selector.matches(obj)

    def line_for(self, change: Change) -> bytes | None:
        """The watch line this watcher must see for ``change``, or None to skip it."""
        now_matches = change.type != "DELETED" and self._matches(change.obj)
        if self.selector.empty:
            return (
                change.encoded()
                if now_matches or (change.type == "DELETED" and self._matches(change.obj))
                else None
            )
        was = change.old is not None and self._matches(change.old)
        if change.type == "DELETED":
            return change.encoded() if was else None
        if now_matches and was:
            return change.encoded()
        if now_matches:
            return (
                encode_event("ADDED", change.obj) if change.type == "MODIFIED" else change.encoded()
            )
        return encode_event("DELETED", change.obj) if was else None

    def offer(self, change: Change) -> None:
        line = self.line_for(change)
        if line is not None:
            self.queue.put_nowait(line)

    def close(self) -> None:
        self.queue.put_nowait(None)


class WatchHub:
    """Every open watch, indexed by resource, fed from the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._watchers: dict[str, set[Watcher]] = {}
        self._unsubscribe = store.subscribe(self._on_change)

    @property
    def open_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    def open(
        self,
        rt: ResourceType,
        namespace: str | None,
        selector: Selector,
        resource_version: str,
        *,
        send_initial_end: bool = False,
    ) -> Watcher:
        """Start a watch; raises 410 (:class:`ApiError`) when the version is too old."""
        watcher = Watcher(rt, namespace, selector)
        if resource_version in ("", "0"):
            for obj in self.store.list(rt.key, namespace):
                if watcher._matches(obj):
                    watcher.queue.put_nowait(encode_event("ADDED", obj))
            if send_initial_end:
                watcher.queue.put_nowait(self.bookmark(rt, initial_end=True))
        else:
            for change in self.store.changes_since(_version(resource_version)):
                if change.resource == rt.key:
                    watcher.offer(change)
        self._watchers.setdefault(rt.key, set()).add(watcher)
        return watcher

    def bookmark(self, rt: ResourceType, *, initial_end: bool = False) -> bytes:
        metadata: Obj = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
        return encode_event(
            "BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}
        )

    def close(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.rt.key, set()).discard(watcher)

    def drop_all(self) -> int:
        """End every open watch (the connection closes cleanly); return how many."""
        count = 0
        for watchers in self._watchers.values():
            for watcher in list(watchers):
                watcher.close()
                count += 1
        return count

    def shutdown(self) -> None:
        self.drop_all()
        self._unsubscribe()

    def _on_change(self, change: Change) -> None:
        for watcher in self._watchers.get(change.resource, ()):
            watcher.offer(change)


def _version(text: str) -> int:
    try:
        return int(text)
    except ValueError as e:
        raise bad_request(f"invalid resource version: {text!r}") from e
