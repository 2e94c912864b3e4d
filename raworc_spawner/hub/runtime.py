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

from traitlets.config import Config

from raworc_spawner.backends.base import Backend
from raworc_spawner.core import Core, CoreSettings
from raworc_spawner.sessions.manager import SessionManager

#: What a hub's spawners configure of the core (the rest of CoreSettings is fixed for a hub).
RuntimeSettings = CoreSettings


def hub_core_settings(
    *, data_dir: str, db_url: str, kubernetes_enabled: bool, instance_name: str = ""
) -> CoreSettings:
    """The core settings of a hub process.

    A hub server's command, port and environment live in the hub, not in the record, so the
    manager cannot restart lost compute by itself: lost compute always becomes idle, poll()
    reports the server stopped, and the next start resumes it with the hub's spec. A raworc
    service next to the hub may change these sessions too, so they are read fresh (no cache);
    the hub's own idle culler decides when servers stop.
    """
    return CoreSettings(
        data_dir=data_dir,
        db_url=db_url,
        kubernetes_enabled=kubernetes_enabled,
        shared_store=True,
        culler=False,
        lost_compute_policy="idle",
        instance_name=instance_name,
        role="hub",
    )


class HubRuntime:
    """The core the spawners of one hub process share, and the event loop it runs in."""

    def __init__(self, settings: CoreSettings, *, config: Config) -> None:
        self.settings = settings
        self.core = Core(settings, config=config)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def manager(self) -> SessionManager:
        """The session manager every spawner of this hub drives."""
        return self.core.manager

    @property
    def backend(self) -> Backend:
        """The backend sessions run on (for diagnostics and benchmarks)."""
        return self.core.backend

    async def start(self) -> None:
        """Open the store, start the backend (warming its caches) and reconcile once."""
        self.loop = asyncio.get_running_loop()
        await self.core.start()

    async def close(self) -> None:
        """Stop background work and close the store; session compute keeps running."""
        await self.core.close()


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
