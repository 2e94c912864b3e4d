"""One store, backend and session manager per hub process, shared by every RaworcSpawner.

JupyterHub makes a spawner object per user server; they all drive the same sessions, so they
share one :class:`HubRuntime`, created and started on first use and configured from the same
config sections the raworc server reads (``c.LocalBackend``, ``c.KubernetesSettings``,
``c.KubernetesBackend``, ``c.SessionManager``, ``c.Reconciler``).

The backend class is imported by name when the runtime starts, so a hub on the local backend
never loads the Kubernetes client stack.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets.config import Config
from traitlets.utils.importstring import import_item

from raworc_spawner.backends.base import Backend
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.reconcile import Reconciler
from raworc_spawner.store import SessionStore

#: Backend classes by ``kubernetes_enabled``.
BACKEND_CLASSES = {
    False: "raworc_spawner.backends.local.LocalBackend",
    True: "raworc_spawner.backends.kubernetes.backend.KubernetesBackend",
}


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """What identifies a runtime: where the records are and which backend runs sessions."""

    data_dir: str
    db_url: str
    kubernetes_enabled: bool

    @property
    def data_path(self) -> Path:
        """The data directory, absolute."""
        return Path(self.data_dir).expanduser().resolve()

    def make_store(self) -> SessionStore:
        """The store: ``db_url``, or SQLite in the data directory (as the raworc server)."""
        if self.db_url:
            return SessionStore(self.db_url)
        return SessionStore.sqlite_in(self.data_path)


class HubRuntime:
    """The store, backend, manager and reconciler the spawners of one hub share."""

    def __init__(self, settings: RuntimeSettings, *, config: Config) -> None:
        self.settings = settings
        self.store = settings.make_store()
        backend_class: type[Any] = import_item(BACKEND_CLASSES[settings.kubernetes_enabled])
        extra = {} if settings.kubernetes_enabled else {"data_dir": str(settings.data_path)}
        self.backend: Backend = backend_class(config=config, **extra)
        # A hub server's command, port and environment live in the hub, not in the record, so
        # the manager cannot restart lost compute by itself: lost compute always becomes idle,
        # poll() reports the server stopped, and the next start resumes it with the hub's spec.
        # A raworc service next to the hub may change these sessions too: read them fresh.
        self.manager = SessionManager(
            config=config,
            store=self.store,
            backend=self.backend,
            lost_compute_policy="idle",
            cache_sessions=False,
        )
        self.reconciler = Reconciler(config=config, manager=self.manager)
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Open the store, start the backend (warming its caches) and reconcile once."""
        self.loop = asyncio.get_running_loop()
        self.settings.data_path.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        try:
            await self.manager.start()
            await self.reconciler.start()
        except BaseException:
            await self.manager.close()
            await self.store.close()
            raise

    async def close(self) -> None:
        """Stop background work and close the store; session compute keeps running."""
        await self.reconciler.close()
        await self.manager.close()
        await self.store.close()


_shared: HubRuntime | None = None
_starting: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None


async def shared_runtime(settings: RuntimeSettings, *, config: Config) -> HubRuntime:
    """The process's runtime, created and started by the first caller.

    Later callers get the same runtime; a caller whose settings differ from the running
    runtime's gets a :class:`RuntimeError` (one hub, one store and one backend).
    """
    global _shared, _starting
    loop = asyncio.get_running_loop()
    if _shared is not None and _shared.loop is not loop:
        _shared = None  # made in an event loop that is gone (tests run one loop per test)
    if _starting is None or _starting[0] is not loop:
        _starting = (loop, asyncio.Lock())
    async with _starting[1]:
        if _shared is None:
            runtime = HubRuntime(settings, config=config)
            await runtime.start()
            _shared = runtime
    if _shared.settings != settings:
        raise RuntimeError(
            f"this hub already runs sessions with {_shared.settings}; "
            f"a spawner configured with {settings} cannot share it"
        )
    return _shared


def current_runtime() -> HubRuntime | None:
    """The started runtime, if any (for synchronous callers such as the options form)."""
    return _shared


async def close_shared_runtime() -> None:
    """Close the process's runtime (tests, and hubs that want a clean shutdown)."""
    global _shared, _starting
    runtime, _shared, _starting = _shared, None, None
    if runtime is not None:
        await runtime.close()
