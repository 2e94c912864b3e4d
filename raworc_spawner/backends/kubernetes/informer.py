"""A shared watch cache (informer) for one resource kind in one namespace.

LIST once, then WATCH from the last ``resourceVersion`` with bookmarks, resuming after every
disconnect or server-side timeout without listing again. Only ``410 Gone`` (the version fell out
of the server's window) causes a re-LIST, after which the cache is diffed so listeners still see
every change as ADDED/MODIFIED/DELETED. Reconnects back off exponentially (doubling, with
jitter, :class:`~raworc_spawner.loops.Backoff`); a watch that delivered events resets it.

Waiters never ask the API server anything: they read the cache or listen for changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from raworc_spawner.backends.kubernetes.apierrors import APIError, APIGone, APIUnreachable
from raworc_spawner.backends.kubernetes.client import KubeClient
from raworc_spawner.loops import Backoff

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Listener = Callable[[str, Obj], None]


@dataclass
class InformerStats:
    """What an informer has done, for metrics and tests."""

    lists: int = 0
    watches: int = 0
    relists_after_gone: int = 0
    reconnects: int = 0
    events: int = 0
    dropped: int = 0


class Informer:
    """Caches the objects of one kind (or only streams them, with ``cache=False``).

    ``keep`` decides which objects are cached and dispatched (others are dropped at once, so an
    event flood about unrelated objects costs no memory). With ``cache=False`` the initial LIST
    asks for one item only, to learn the current ``resourceVersion``: history is not replayed.
    The cache is empty until :meth:`start` is given a client and has listed.
    """

    def __init__(
        self,
        resource: str,
        namespace: str,
        *,
        label_selector: str = "",
        keep: Callable[[Obj], bool] = lambda obj: True,
        cache: bool = True,
        watch_timeout_seconds: int = 300,
        backoff_max_seconds: float = 10.0,
    ) -> None:
        self.client: KubeClient | None = None
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.keep = keep
        self.cache = cache
        self.watch_timeout_seconds = watch_timeout_seconds
        self._backoff = Backoff(initial=0.1, maximum=backoff_max_seconds, jitter=0.2)
        self.objects: dict[str, Obj] = {}
        self.resource_version = ""
        self.stats = InformerStats()
        self._listeners: list[Listener] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event_type, obj)`` for every change (after the cache is updated)."""
        self._listeners.append(listener)

    def get(self, name: str) -> Obj | None:
        """The cached object called ``name``, if any."""
        return self.objects.get(name)

    async def start(self, client: KubeClient) -> None:
        """LIST through ``client``, start watching in the background; return once filled."""
        self.client = client
        await self._list()
        self._task = asyncio.create_task(self._run(), name=f"informer-{self.resource}")

    async def close(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def synced(self) -> bool:
        """Whether the initial LIST has completed."""
        return self._synced.is_set()

    def _client(self) -> KubeClient:
        if self.client is None:
            raise RuntimeError(f"informer {self.resource}: start() it with a client first")
        return self.client

    async def _list(self) -> None:
        self.stats.lists += 1
        client = self._client()
        if self.cache:
            items, version = await client.list_all(
                self.resource, self.namespace, label_selector=self.label_selector
            )
        else:
            page = await client.list_page(
                self.resource, self.namespace, label_selector=self.label_selector, limit=1
            )
            items, version = [], str(page["metadata"].get("resourceVersion", ""))
        self._replace(items)
        self.resource_version = version
        self._synced.set()

    def _replace(self, items: list[Obj]) -> None:
        """Install a fresh LIST, dispatching the differences from the old cache."""
        fresh = {obj["metadata"]["name"]: obj for obj in items if self.keep(obj)}
        old = self.objects
        self.objects = fresh
        for name, obj in old.items():
            if name not in fresh:
                self._dispatch("DELETED", obj)
        for name, obj in fresh.items():
            previous = old.get(name)
            if previous is None:
                self._dispatch("ADDED", obj)
            elif _version(previous) != _version(obj):
                self._dispatch("MODIFIED", obj)

    async def _run(self) -> None:
        while True:
            seen = self.stats.events
            try:
                if not self.resource_version:
                    self.stats.relists_after_gone += 1
                    await self._list()
                await self._watch_once()
                self._backoff.reset()
            except APIGone:
                log.info("%s watch expired (410); listing again", self.resource)
                self.resource_version = ""
                self._backoff.reset()
            except (APIError, APIUnreachable) as e:
                self.stats.reconnects += 1
                if self.stats.events > seen:  # it was connected: this is a fresh failure
                    self._backoff.reset()
                delay = self._backoff.next()
                log.warning("%s watch failed (%s); reconnecting in %.2fs", self.resource, e, delay)
                await asyncio.sleep(delay)

    async def _watch_once(self) -> None:
        self.stats.watches += 1
        events = self._client().watch(
            self.resource,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            timeout_seconds=self.watch_timeout_seconds,
        )
        async for event in events:
            obj = event.get("object") or {}
            version = _version(obj)
            if version:
                self.resource_version = version
            kind = event.get("type")
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self._apply(kind, obj)

    def _apply(self, kind: str, obj: Obj) -> None:
        self.stats.events += 1
        if not self.keep(obj):
            self.stats.dropped += 1
            return
        name = obj["metadata"]["name"]
        if not self.cache:
            self._dispatch(kind, obj)
            return
        if kind == "DELETED":
            if self.objects.pop(name, None) is not None:
                self._dispatch(kind, obj)
            return
        previous = self.objects.get(name)
        self.objects[name] = obj
        self._dispatch("ADDED" if previous is None else "MODIFIED", obj)

    def _dispatch(self, kind: str, obj: Obj) -> None:
        for listener in self._listeners:
            try:
                listener(kind, obj)
            except Exception:
                log.exception("informer listener failed on %s %s", kind, self.resource)


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
