"""The composition root: the store, backend, session manager and background loops of a process.

The raworc server (:mod:`raworc_spawner.app`) and a JupyterHub's spawners
(:mod:`raworc_spawner.hub.runtime`) build their core here, the same way; they differ only in
the :class:`CoreSettings` they pass. Components take their settings from the traitlets config
given as ``parent=`` or ``config=``.

Background loops (the reconciler and the culler) run on one process per instance and role:
alone on a SQLite store (one process), and on the elected leader of the replicas sharing a
PostgreSQL store (a ``coordination.k8s.io/v1`` Lease on the Kubernetes backend, an advisory
lock otherwise; see :mod:`raworc_spawner.leadership`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from traitlets.utils.importstring import import_item

from raworc_spawner.backends.base import Backend
from raworc_spawner.errors import InvalidConfig
from raworc_spawner.leadership import Elector, LeaderElection, Leadership
from raworc_spawner.sessions.culler import Culler
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.reconcile import Reconciler
from raworc_spawner.store import SessionStore

log = logging.getLogger("raworc_spawner.core")

#: Backend classes by ``kubernetes_enabled``, imported when a core is built, so a process on
#: the local backend never loads the Kubernetes client stack.
BACKEND_CLASSES = {
    False: "raworc_spawner.backends.local.LocalBackend",
    True: "raworc_spawner.backends.kubernetes.backend.KubernetesBackend",
}
#: Longest instance name: it is a Kubernetes label value (63) less room for ``-hub``.
INSTANCE_NAME_MAX = 59


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """What identifies a core: where the records are and which backend runs sessions.

    ``db_url`` empty means SQLite in ``data_dir``. ``shared_store``: another process (a hub
    next to a raworc service) writes the same sessions, so nothing is cached and sessions made
    by a hub's spawner are left to the hub (``hub_service``). ``culler``: run the idle culler
    (a hub leaves culling to its own idle culler). ``instance_name``: the owner instance the
    backend's objects carry (empty: derived, see :func:`derive_instance_name`). ``role``:
    ``server`` or ``hub``; each role elects its own leader.
    """

    data_dir: str
    db_url: str = ""
    kubernetes_enabled: bool = False
    shared_store: bool = False
    hub_service: bool = False
    culler: bool = True
    lost_compute_policy: str | None = None
    instance_name: str = ""
    role: str = "server"

    @property
    def data_path(self) -> Path:
        """The data directory, absolute."""
        return Path(self.data_dir).expanduser().resolve()

    def make_store(self) -> SessionStore:
        """The store: ``db_url``, or SQLite in the data directory."""
        if self.db_url:
            return SessionStore(self.db_url)
        return SessionStore.sqlite_in(self.data_path)


def check_instance_name(name: str) -> str:
    """``name`` if it can be an instance name (a label value, at most 59 characters).

    Raises :class:`InvalidConfig` naming ``RaworcApp.instance_name`` otherwise.
    """
    from raworc_spawner.backends.kubernetes.naming import is_label_value

    if not name or len(name) > INSTANCE_NAME_MAX or not is_label_value(name):
        raise InvalidConfig(
            "RaworcApp.instance_name",
            name,
            f"must be 1 to {INSTANCE_NAME_MAX} characters: letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (a Kubernetes label value)",
        )
    return name


def derive_instance_name(store_url: str, namespace: str) -> str:
    """``raworc-`` and 10 hex digits of a hash of where the store is and of the namespace.

    The store is named without its user and password (rotating a password keeps the name);
    a SQLite store by its absolute path. The same store and namespace give the same name
    after a restart or a reset of the store; another store (another environment, a second
    server with its own data directory) gives another.

    >>> derive_instance_name("sqlite+aiosqlite:////srv/raworc.sqlite", "raworc-sessions")
    'raworc-...'
    """
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        where = f"sqlite:{Path(url.database or '').resolve()}"
    else:
        where = url.set(username=None, password=None).render_as_string(hide_password=False)
    digest = hashlib.sha256(f"{where}|{namespace}".encode()).hexdigest()[:10]
    return f"raworc-{digest}"


def make_backend(
    settings: CoreSettings, *, instance_name: str = "", **configurable: Any
) -> Backend:
    """The configured backend (not started), configured from ``parent=``/``config=``."""
    backend_class: type[Any] = import_item(BACKEND_CLASSES[settings.kubernetes_enabled])
    extra: dict[str, Any] = (
        {} if settings.kubernetes_enabled else {"data_dir": str(settings.data_path)}
    )
    if instance_name:
        extra["instance_name"] = instance_name
    backend: Backend = backend_class(**configurable, **extra)
    return backend


def instance_name_of(settings: CoreSettings, store_url: str, **configurable: Any) -> str:
    """The configured instance name, checked, or the one derived from store and namespace.

    The namespace is ``KubernetesSettings.namespace`` whichever backend runs, so that a switch
    of ``KUBERNETES_ENABLED`` keeps the instance (and its sessions recognisably its own).
    """
    if settings.instance_name:
        return check_instance_name(settings.instance_name)
    from raworc_spawner.backends.kubernetes.settings import KubernetesSettings

    namespace = str(KubernetesSettings(**configurable).namespace)
    return derive_instance_name(store_url, namespace)


def replica_identity() -> str:
    """This process's name in elections: host name, process id and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Core:
    """One process's store, backend, manager, reconciler and (optionally) culler."""

    def __init__(self, settings: CoreSettings, **configurable: Any) -> None:
        self.settings = settings
        self.store = settings.make_store()
        self.instance_name = instance_name_of(settings, self.store.url, **configurable)
        self.backend = make_backend(settings, instance_name=self.instance_name, **configurable)
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
        self.manager.leader = lambda: self.is_leader
        self.reconciler = Reconciler(manager=self.manager, **configurable)
        self.culler = Culler(manager=self.manager, **configurable) if settings.culler else None
        self.election = LeaderElection(**configurable)
        self.election.check()
        self.leadership: Leadership | None = None
        self._elected = asyncio.Event()
        self._starting: asyncio.Task[None] | None = None

    @property
    def lock_name(self) -> str:
        """The name of the leader's lock (Lease or advisory lock) of this instance and role."""
        suffix = "" if self.settings.role == "server" else f"-{self.settings.role}"
        return self.election.name_for(f"{self.instance_name}{suffix}")

    @property
    def is_leader(self) -> bool:
        """Whether this process runs the background loops now."""
        return self.leadership is None or self.leadership.is_leader

    async def start(self) -> None:
        """Open the store, start the backend and manager, then the loops (on the leader).

        A single process (SQLite store) reconciles at once, as a start-up pass. Replicas
        campaign; the one elected reconciles and runs the culler. Start-up waits for the first
        attempt (at most two retry periods) and, when it won, for the start-up pass (at most
        ``Reconciler.startup_wait_seconds``); a follower goes on at once.
        """
        self.settings.data_path.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        try:
            await self.manager.start()
            if not self.store.shared:
                await self._run_loops(startup=True)
                return
            self.leadership = Leadership(
                self._elector(),
                on_elected=self._on_elected,
                on_deposed=self._stop_loops,
                lease_seconds=self.election.lease_duration_seconds,
                renew_deadline_seconds=self.election.renew_deadline_seconds,
                retry_seconds=self.election.retry_period_seconds,
                log=log,
            )
            self.leadership.start()
            await self._first_election(self.leadership)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the loops (handing leadership over) and the manager, close the store.

        Session compute keeps running.
        """
        if self.leadership is not None:
            await self.leadership.close()
            self.leadership = None
        else:
            await self._stop_loops()
        await self.manager.close()
        await self.store.close()

    async def _first_election(self, leadership: Leadership) -> None:
        """Wait for the first attempt; an elected replica waits for its start-up pass too."""
        retry = self.election.retry_period_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(leadership.attempted.wait(), 2 * retry)
        if leadership.is_leader:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._elected.wait(), self.reconciler.startup_wait_seconds)
        elif leadership.failing or not leadership.attempted.is_set():
            log.error(
                "leader election with %s is failing: background loops (reconciler, culler) run "
                "on no replica until it works; see the warning above and `raworc-spawner doctor`",
                leadership.elector.describe(),
            )
        else:
            log.info(
                "not the leader (yet): background loops run on the holder of %s, or here once "
                "it is taken over",
                leadership.elector.describe(),
            )

    def _elector(self) -> Elector:
        """A Lease in the session namespace on Kubernetes, else a lock in the store."""
        identity = replica_identity()
        lease = self.election.lease_duration_seconds
        timeout = self.election.renew_deadline_seconds
        if self.settings.kubernetes_enabled:
            from raworc_spawner.backends.kubernetes.lease import LeaseElector

            client = self.backend.require_client()  # type: ignore[attr-defined]
            namespace = str(self.backend.namespace)  # type: ignore[attr-defined]
            return LeaseElector(
                client, namespace, self.lock_name, identity, lease, attempt_timeout=timeout
            )
        return self.store.elector(
            name=self.lock_name, identity=identity, lease_seconds=lease, attempt_timeout=timeout
        )

    async def _on_elected(self) -> None:
        # In the background: leadership callbacks must return at once (renewals wait for them),
        # and a first reconciliation may take longer than the renew deadline.
        self._starting = asyncio.create_task(self._lead(), name="leader-loops")

    async def _lead(self) -> None:
        # Other replicas may have creates in flight: no start-up shortcuts (see Reconciler).
        await self._run_loops(startup=False)
        self._elected.set()

    async def _run_loops(self, *, startup: bool) -> None:
        await self.reconciler.start(startup=startup)
        if self.culler is not None:
            await self.culler.start()

    async def _stop_loops(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        self._elected.clear()
        if self.culler is not None:
            await self.culler.close()
        await self.reconciler.close()
