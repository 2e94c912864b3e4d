"""RaworcSpawner: every JupyterHub user server is a raworc session.

``c.JupyterHub.spawner_class = "raworc"`` makes each (user, server name) one session: a
workspace that persists (a PVC, or a directory) and compute that comes and goes (a pod, or a
local process) running the hub's single-user server. The spawner is a thin adapter over the
session manager shared by the whole hub (see :mod:`raworc_spawner.hub.runtime`):

- ``start()`` creates the session, or resumes it (workspace kept), with the spawner's ``cmd``,
  ``args``, ``get_env()``, ``port`` and resources, waits for the session's ``ready`` event and
  returns ``http://<host>:<port>`` (the pod IP on Kubernetes); on ``error`` it raises with the
  session's reason, which the hub shows;
- ``poll()`` answers from the backend's cache (no API call): None while the compute runs or
  starts, an exit status otherwise (a terminating pod is not running);
- ``stop()`` scales the session to zero and keeps the workspace; ``delete_forever()`` deletes
  the session, its workspace and its record;
- ``progress()`` yields the session's events (the spawner's own steps, backend and Kubernetes
  events, and the failure reason) for the hub's spawn page;
- ``get_state()``/``load_state()`` keep the session id, so a restarted hub re-attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner
from jupyterhub.utils import random_port
from tornado import web
from traitlets import Bool, Unicode, default

from raworc_spawner.backends.base import ComputeState, HubServer
from raworc_spawner.errors import (
    BackendError,
    InvalidTransition,
    RaworcError,
    SessionNotFound,
    ValidationError,
)
from raworc_spawner.hub.options import check_user_options, options_from_form, render_profiles_form
from raworc_spawner.hub.progress import ProgressLog
from raworc_spawner.hub.runtime import HubRuntime, hub_core_settings, shared_runtime
from raworc_spawner.hub.waiting import SpawnFailed, wait_until_listening, wait_until_ready
from raworc_spawner.sessions.model import (
    ACTIVE_STATES,
    Principal,
    Session,
    SessionState,
    new_session_id,
)
from raworc_spawner.sessions.requests import CreateRequest, check_name
from raworc_spawner.sessions.spec import SpecOverrides, hub_metadata

#: Port the single-user server listens on inside a pod (KubeSpawner's default too).
POD_PORT = 8888
#: Seconds before the hub's ``start_timeout`` at which the spawner gives up with a reason.
START_TIMEOUT_MARGIN = 2.0


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def cpu_quantity(cores: float) -> str:
    """CPU cores as a Kubernetes quantity in millicores (``0.5`` → ``500m``)."""
    return f"{max(1, round(cores * 1000))}m"


async def _profiles_form(spawner: RaworcSpawner) -> str:
    runtime = await spawner.runtime()
    return render_profiles_form(runtime.manager.profiles())


def _options_from_form(form_data: Mapping[str, list[str]]) -> dict[str, Any]:
    return options_from_form(form_data)


async def _apply_user_options(spawner: RaworcSpawner, user_options: Mapping[str, Any]) -> None:
    spawner.profile = await spawner.checked_profile(user_options)


class RaworcSpawner(Spawner):
    """Runs each user server as a raworc session (local process or Kubernetes pod)."""

    port: int  # Spawner.port (a traitlets Integer); annotated for the type checker only

    data_dir = Unicode(
        help="""Directory of the session store (SQLite) and, on the local backend, of the
        workspaces, process state and session logs. Relative paths are resolved against the
        hub's working directory. Default: $RAWORC_DATA_DIR, else ``data`` (the raworc server's
        default, so a raworc service started in the same directory shares the store).""",
    ).tag(config=True)

    db_url = Unicode(
        help="""SQLAlchemy URL of the session store, e.g.
        ``postgresql+asyncpg://user:pass@host/db``. Empty (the default, unless $RAWORC_DB_URL
        is set) means SQLite at ``<data_dir>/raworc.sqlite``. Use the same value as the raworc
        service so both see the same sessions.""",
    ).tag(config=True)

    kubernetes_enabled = Bool(
        help="""Run user servers as Kubernetes pods with a PVC workspace (true) or as local
        processes with a workspace directory (false). Default: $KUBERNETES_ENABLED, else false.
        Pods and PVCs are configured by ``c.KubernetesSettings`` and ``c.KubernetesBackend``;
        local processes by ``c.LocalBackend``.""",
    ).tag(config=True)

    instance_name = Unicode(
        "",
        help="""The owner instance of this hub's sessions (label and annotation
        ``raworc.dev/instance`` on their pods and PVCs); the hub acts only on its own
        instance's objects. Empty (the default) derives it from the store's location and the
        Kubernetes namespace, as a raworc service on the same store and namespace does: give
        both the same value if you set one.""",
    ).tag(config=True)

    profile = Unicode(
        "",
        help="""The profile the next start uses, set from ``user_options["profile"]`` (the spawn
        form or the REST API). Empty means the backend's default profile. Profiles are
        ``c.KubernetesSettings.profiles``; the local backend has none. The profile is fixed
        when the server's session is created; later starts reuse it.""",
    )

    session_id = Unicode(
        None,
        allow_none=True,
        help="""The id of this server's session (kept in the hub's state across restarts).""",
    )

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return os.environ.get("RAWORC_DATA_DIR") or "data"

    @default("db_url")
    def _default_db_url(self) -> str:
        return os.environ.get("RAWORC_DB_URL", "")

    @default("kubernetes_enabled")
    def _default_kubernetes_enabled(self) -> bool:
        return _env_flag("KUBERNETES_ENABLED")

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # Locally, prefer the single-user server installed beside this Python: the session
        # process must find it whatever PATH the hub was started with. In a pod, the image's.
        local = Path(sys.executable).parent / "jupyterhub-singleuser"
        if not self.kubernetes_enabled and local.exists():
            return [str(local)]
        return ["jupyterhub-singleuser"]

    @default("ip")
    def _default_ip(self) -> str:
        return "0.0.0.0" if self.kubernetes_enabled else "127.0.0.1"

    @default("port")
    def _default_port(self) -> int:
        return POD_PORT if self.kubernetes_enabled else 0

    @default("options_form")
    def _default_options_form(self) -> Any:
        return _profiles_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return _options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return _apply_user_options

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._progress_log: ProgressLog | None = None
        self._picked_port = False

    # -- the shared runtime ---------------------------------------------------------------------

    async def runtime(self) -> HubRuntime:
        """The hub process's store, backend and session manager (started on first use)."""
        settings = hub_core_settings(
            data_dir=self.data_dir,
            db_url=self.db_url,
            kubernetes_enabled=self.kubernetes_enabled,
            instance_name=self.instance_name,
        )
        return await shared_runtime(settings, config=self.config)

    @property
    def principal(self) -> Principal:
        """Who the sessions of this server belong to: the hub user."""
        return Principal(self.user.name)

    @property
    def session_name(self) -> str:
        """The session's name: the user's, with the server's name for named servers."""
        return check_name(f"{self.user.name}/{self.name}" if self.name else self.user.name)

    # -- state ----------------------------------------------------------------------------------

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the session id after a hub restart."""
        super().load_state(state)
        self.session_id = state.get("session_id") or None
        self.profile = state.get("profile") or ""

    def get_state(self) -> dict[str, Any]:
        """The session id and the names of its resources."""
        state: dict[str, Any] = super().get_state()
        if self.session_id:
            state["session_id"] = self.session_id
            state.update(self._resource_names(self.session_id))
            if self.profile:
                state["profile"] = self.profile
        return state

    def clear_state(self) -> None:
        """Forget the server's token; keep the session id (the workspace outlives the server)."""
        super().clear_state()

    def _resource_names(self, session_id: str) -> dict[str, str]:
        if self.kubernetes_enabled:
            return {"pod_name": f"session-{session_id}", "pvc_name": f"session-pvc-{session_id}"}
        workspace = Path(self.data_dir).expanduser().resolve() / "workspaces" / session_id
        return {"workspace": str(workspace)}

    # -- options --------------------------------------------------------------------------------

    async def checked_profile(self, user_options: Mapping[str, Any]) -> str:
        """The profile ``user_options`` choose ("" for the default); HTTP 400 if invalid."""
        runtime = await self.runtime()
        try:
            return check_user_options(user_options, runtime.manager.profiles()) or ""
        except ValidationError as e:
            raise web.HTTPError(400, f"invalid server option {e.message}") from e

    # -- start ----------------------------------------------------------------------------------

    async def start(self) -> str:
        """Create or resume the session, wait until it is ready, return the server's URL."""
        runtime = await self.runtime()
        self.profile = await self.checked_profile(self.user_options or {})
        if not self.port or self._picked_port:
            # Not configured: a free port for each start (the last one may be taken by now).
            self.port = random_port()
            self._picked_port = True
        log = self._progress_log = self._fresh_progress_log()
        # Give up just before the hub does, so that the hub shows why.
        seconds = max(1.0, self.start_timeout - START_TIMEOUT_MARGIN)
        try:
            async with asyncio.timeout(seconds):
                return await self._launch(runtime, log)
        except TimeoutError:
            message = f"the server did not start within {seconds:g} s"
            log.add(f"Timed out: {message}")
            raise SpawnFailed(message) from None
        finally:
            log.close()

    def _fresh_progress_log(self) -> ProgressLog:
        log = self._progress_log
        return log if log is not None and not log.closed else ProgressLog()

    async def _launch(self, runtime: HubRuntime, log: ProgressLog) -> str:
        manager = runtime.manager
        existing = await self._existing_session(runtime)
        if existing is not None and existing.state in ACTIVE_STATES:
            # The hub starts a server it believes stopped: whatever still runs has a stale API
            # token, so replace it (before listening, so this pause is not taken for a stop).
            log.add(f"Replacing the stale compute of session {existing.id}", progress=2)
            existing = await manager.pause(self.principal, existing.id, reason="HubRestart")
        session_id = existing.id if existing else new_session_id()
        async with manager.follow(session_id) as events:
            if existing is None:
                log.add(f"Creating session {session_id} ({manager.backend_name})", progress=5)
                session = await self._create(runtime, session_id)
            else:
                log.add(f"Resuming session {session_id}; the workspace is kept", progress=5)
                session = await self._resume(runtime, existing)
            session = await wait_until_ready(session, events, log)
            url = await self._server_url(runtime, session)
            log.add(f"Waiting for the server to listen at {url}", progress=92)
            await wait_until_listening(url, events, log, timeout=self.http_timeout)
            return url

    async def _existing_session(self, runtime: HubRuntime) -> Session | None:
        if not self.session_id:
            return None
        try:
            return await runtime.manager.get(self.principal, self.session_id)
        except SessionNotFound:
            self.log.warning("session %s of %s is gone; creating a new one", self.session_id, self)
            self.session_id = None
            return None

    async def _create(self, runtime: HubRuntime, session_id: str) -> Session:
        request = CreateRequest(
            name=self.session_name,
            profile=self.profile or None,
            # The hub decides when servers stop (jupyterhub-idle-culler), not raworc's culler.
            waiting_timeout_seconds=0,
            metadata=hub_metadata(HubServer(self.user.name, self.name or "")),
        )
        self.session_id = session_id
        overrides = replace(self._spec_overrides(), session_id=session_id)
        try:
            return await runtime.manager.create(self.principal, request, overrides=overrides)
        except RaworcError as e:
            self.session_id = None
            raise SpawnFailed(f"cannot create the session: {e.message}") from e

    async def _resume(self, runtime: HubRuntime, session: Session) -> Session:
        try:
            return await runtime.manager.set_state(
                self.principal, session.id, SessionState.READY, overrides=self._spec_overrides()
            )
        except (InvalidTransition, BackendError) as e:
            raise SpawnFailed(f"cannot resume session {session.id}: {e.message}") from e

    def _spec_overrides(self) -> SpecOverrides:
        """The hub's part of the session spec: command, port, environment, resources."""
        return SpecOverrides(
            command=[*self.cmd, *self.get_args()],
            port=self.port,
            env={k: str(v) for k, v in self.get_env().items()},
            resources=self._resources(),
        )

    def _resources(self) -> dict[str, str]:
        """cpu/mem limits and guarantees as the session's Kubernetes quantities."""
        resources: dict[str, str] = {}
        if self.cpu_limit:
            resources["cpu_limit"] = cpu_quantity(self.cpu_limit)
        if self.cpu_guarantee:
            resources["cpu_request"] = cpu_quantity(self.cpu_guarantee)
        if self.mem_limit:
            resources["memory_limit"] = str(int(self.mem_limit))
        if self.mem_guarantee:
            resources["memory_request"] = str(int(self.mem_guarantee))
        return resources

    async def _server_url(self, runtime: HubRuntime, session: Session) -> str:
        if self.kubernetes_enabled:
            host = runtime.manager.address(session.id)  # the pod IP, from the watch cache
        else:
            # The server binds where JUPYTERHUB_SERVICE_URL says: this spawner's ip.
            host = self.ip if self.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
        port = self.port
        if not host:
            raise SpawnFailed(f"session {session.id} is ready but its address is unknown")
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    # -- poll, stop, delete ---------------------------------------------------------------------

    async def poll(self) -> int | None:
        """None while the session's compute runs (or the start is pending), else 0 or 1."""
        if self._start_pending:
            return None
        if not self.session_id:
            return 0
        runtime = await self.runtime()
        state = runtime.manager.compute_state(self.session_id)
        if state in (ComputeState.RUNNING, ComputeState.STARTING):
            return None
        return 1 if state == ComputeState.FAILED else 0

    async def stop(self, now: bool = False) -> None:
        """Scale the session to zero; the workspace is kept for the next start.

        ``now`` is not distinguished: the grace period is the backend's
        (``LocalBackend.stop_grace_seconds``, ``KubernetesBackend.delete_grace_seconds``).
        """
        self._progress_log = None
        if not self.session_id:
            return
        runtime = await self.runtime()
        try:
            await runtime.manager.pause(self.principal, self.session_id, reason="Stopped")
        except SessionNotFound:
            self.session_id = None
        except InvalidTransition as e:
            self.log.warning("not stopping session %s: %s", self.session_id, e.message)

    async def delete_forever(self) -> None:
        """Delete the session: compute, then workspace, then the record."""
        if not self.session_id:
            return
        runtime = await self.runtime()
        with contextlib.suppress(SessionNotFound):
            await runtime.manager.delete(self.principal, self.session_id)
        self.session_id = None
        self.profile = ""

    # -- progress -------------------------------------------------------------------------------

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The current start's steps: the spawner's, then the session's events, live."""
        if self._progress_log is None or (self._start_pending and self._progress_log.closed):
            self._progress_log = ProgressLog()
        async for step in self._progress_log.follow():
            yield step
