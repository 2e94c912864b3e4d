"""The composition root: the store, backend, session manager and background loops of a process.

The raworc server (:mod:`raworc_spawner.app`) and a JupyterHub's spawners
(:mod:`raworc_spawner.hub.runtime`) build their core here, the same way; they differ only in
the :class:`CoreSettings` they pass. Components take their settings from the traitlets config
given as ``parent=`` or ``config=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets.utils.importstring import import_item

from raworc_spawner.backends.base import Backend
from raworc_spawner.sessions.culler import Culler
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.reconcile import Reconciler
from raworc_spawner.store import SessionStore

#: Backend classes by ``kubernetes_enabled``, imported when a core is built, so a process on
#: the local backend never loads the Kubernetes client stack.
BACKEND_CLASSES = {
    False: "raworc_spawner.backends.local.LocalBackend",
    True: "raworc_spawner.backends.kubernetes.backend.KubernetesBackend",
}


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """What identifies a core: where the records are and which backend runs sessions.

    ``db_url`` empty means SQLite in ``data_dir``. ``shared_store``: another process (a hub
    next to a raworc service) writes the same sessions, so nothing is cached and sessions made
    by a hub's spawner are left to the hub (``hub_service``). ``culler``: run the idle culler
    (a hub leaves culling to its own idle culler).
    """

    data_dir: str
    db_url: str = ""
    kubernetes_enabled: bool = False
    shared_store: bool = False
    hub_service: bool = False
    culler: bool = True
    lost_compute_policy: str | None = None

    @property
    def data_path(self) -> Path:
        """The data directory, absolute."""
        return Path(self.data_dir).expanduser().resolve()

    def make_store(self) -> SessionStore:
        """The store: ``db_url``, or SQLite in the data directory."""
        if self.db_url:
            return SessionStore(self.db_url)
        return SessionStore.sqlite_in(self.data_path)


def make_backend(settings: CoreSettings, **configurable: Any) -> Backend:
    """The configured backend (not started), configured from ``parent=``/``config=``."""
    backend_class: type[Any] = import_item(BACKEND_CLASSES[settings.kubernetes_enabled])
    extra = {} if settings.kubernetes_enabled else {"data_dir": str(settings.data_path)}
    backend: Backend = backend_class(**configurable, **extra)
    return backend


class Core:
    """One process's store, backend, manager, reconciler and (optionally) culler."""

    def __init__(self, settings: CoreSettings, **configurable: Any) -> None:
        self.settings = settings
        self.store = settings.make_store()
        self.backend = make_backend(settings, **configurable)
        manager_settings: dict[str, Any] = {}
        if settings.shared_store:
            manager_settings["cache_sessions"] = False
        if settings.hub_service:
            manager_settings["handle_hub_sessions"] = False
        if settings.lost_compute_policy:
            manager_settings["lost_compute_policy"] = settings.lost_compute_policy
        self.manager = SessionManager(
            store=self.store, backend=self.backend, **configurable, **manager_settings
        )
        self.reconciler = Reconciler(manager=self.manager, **configurable)
        self.culler = Culler(manager=self.manager, **configurable) if settings.culler else None

    async def start(self) -> None:
        """Open the store, start the backend and manager, reconcile once, start the loops."""
        self.settings.data_path.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        try:
            await self.manager.start()
            await self.reconciler.start()
            if self.culler is not None:
                await self.culler.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the loops and the manager, close the store; session compute keeps running."""
        if self.culler is not None:
            await self.culler.close()
        await self.reconciler.close()
        await self.manager.close()
        await self.store.close()
