"""The spawner sides under test, each behind the same small interface.

- ``raworc-spawner``: :class:`RaworcSpawner` (the JupyterHub adapter) with minimal hub/user
  objects, on the Kubernetes backend;
- ``raworc-manager``: the :class:`SessionManager` the REST API uses, built by
  :class:`RaworcApp` exactly as ``raworc-spawner serve --kubernetes`` builds it;
- ``kubespawner``: KubeSpawner 7.1 with the same minimal hub/user objects, its own shared
  reflectors, a PVC per user (``storage_pvc_ensure``) and the same requests, limits and image.

Each side lives in its own process (see :mod:`benchmarks.side`), so module-level caches
(KubeSpawner's reflectors and clients, raworc's shared hub runtime) serve one side only.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol

from traitlets.config import Config

NAMESPACE = "raworc-sessions"
IMAGE = "python:3.11-slim"
BAD_IMAGE = "does-not-exist-notebook:1.0"
PORT = 8888
SIDES = ("raworc-spawner", "raworc-manager", "kubespawner")


@dataclass
class Spawned:
    """One finished spawn: which pod, when it returned (monotonic), how long it took."""

    user: str
    pod: str
    url: str
    seconds: float
    returned_at: float


class Side(Protocol):
    """What every side offers the scenarios."""

    name: str

    async def setup(self) -> None: ...
    async def spawn(self, user: str, *, bad_image: bool = False) -> Spawned: ...
    async def close(self) -> None: ...


def minimal_user(name: str) -> SimpleNamespace:
    """The attributes of a hub ``User`` a spawner reads."""
    return SimpleNamespace(name=name, id=abs(hash(name)) % 10**6, url=f"/user/{name}/")


def minimal_hub() -> SimpleNamespace:
    """The attributes of a hub ``Hub`` a spawner reads."""
    return SimpleNamespace(
        public_host="", url="http://127.0.0.1:8081/hub/", base_url="/hub/",
        api_url="http://127.0.0.1:8081/hub/api",
    )  # fmt: skip


def hub_spawner_kwargs(user: str, start_timeout: float) -> dict[str, Any]:
    """Constructor arguments every hub-side spawner gets (both implementations)."""
    return {
        "user": minimal_user(user),
        "hub": minimal_hub(),
        "api_token": f"token-{user}",
        "oauth_client_id": f"jupyterhub-user-{user}",
        "start_timeout": int(start_timeout),
        "cpu_guarantee": 0.1,
        "cpu_limit": 1.0,
        "mem_guarantee": "128M",
        "mem_limit": "1G",
    }


def raworc_config(api_url: str, token: str, data_dir: str) -> Config:
    """raworc's settings for kubesim: the API, the namespace, a bad-image profile."""
    c = Config()
    c.KubernetesBackend.api_url = api_url
    c.KubernetesBackend.api_token = token
    c.KubernetesBackend.verify_tls = False
    c.KubernetesSettings.namespace = NAMESPACE
    c.KubernetesSettings.image = IMAGE
    c.KubernetesSettings.profiles = {"bad": {"description": "broken image", "image": BAD_IMAGE}}
    c.RaworcSpawner.kubernetes_enabled = True
    c.RaworcSpawner.data_dir = data_dir
    c.RaworcApp.kubernetes_enabled = True
    c.RaworcApp.data_dir = data_dir
    c.RaworcApp.admin_token = "bench-admin"
    c.RaworcApp.env_file = ""
    c.RaworcApp.log_spec = "warn"
    return c


class RaworcSpawnerSide:
    """RaworcSpawner.start() per user; the hub runtime is shared as in a real hub."""

    name = "raworc-spawner"

    def __init__(self, api_url: str, token: str, *, start_timeout: float) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-raworc-")
        self.config = raworc_config(api_url, token, self._tmp.name)
        self.start_timeout = start_timeout

    def _spawner(self, user: str) -> Any:
        from raworc_spawner.spawner import RaworcSpawner

        return RaworcSpawner(config=self.config, **hub_spawner_kwargs(user, self.start_timeout))

    async def setup(self) -> None:
        await self._spawner("warm-up").runtime()  # caches filled before anything is measured

    async def spawn(self, user: str, *, bad_image: bool = False) -> Spawned:
        spawner = self._spawner(user)
        spawner.user_options = {"profile": "bad"} if bad_image else {}
        began = time.monotonic()
        url = await spawner.start()
        done = time.monotonic()
        return Spawned(user, f"session-{spawner.session_id}", url, done - began, done)

    def events_seen(self) -> int:
        from raworc_spawner.hub.runtime import current_runtime

        runtime = current_runtime()
        return runtime.backend.events.stats.events if runtime else -1  # type: ignore[attr-defined]

    async def close(self) -> None:
        from raworc_spawner.hub.runtime import close_shared_runtime

        await close_shared_runtime()
        self._tmp.cleanup()


class RaworcManagerSide:
    """SessionManager.create() and the session's ``ready`` event, as the REST API drives it."""

    name = "raworc-manager"

    def __init__(self, api_url: str, token: str, *, start_timeout: float) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-manager-")
        self.config = raworc_config(api_url, token, self._tmp.name)
        self.start_timeout = start_timeout
        self.app: Any = None

    async def setup(self) -> None:
        from raworc_spawner.app import RaworcApp

        self.app = RaworcApp(config=self.config)
        self.app.initialize(["--port=0", "--ip=127.0.0.1"])
        await self.app.start_services()

    async def spawn(self, user: str, *, bad_image: bool = False) -> Spawned:
        from raworc_spawner.sessions.model import Principal, new_session_id
        from raworc_spawner.sessions.requests import CreateRequest
        from raworc_spawner.sessions.spec import SpecOverrides

        manager, sid = self.app.manager, new_session_id()
        request = CreateRequest(
            name=user, waiting_timeout_seconds=0, profile="bad" if bad_image else None
        )
        began = time.monotonic()
        async with manager.follow(sid) as events:
            await manager.create(Principal(user), request, overrides=SpecOverrides(session_id=sid))
            async for event in events:
                if event.kind == "ready":
                    break
                if event.kind == "failed":
                    raise RuntimeError(f"{event.reason}: {event.message}")
        done = time.monotonic()
        pod = f"session-{sid}"
        return Spawned(user, pod, manager.address(sid) or "", done - began, done)

    def events_seen(self) -> int:
        return int(self.app.core.backend.events.stats.events)  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self.app is not None:
            await self.app.stop_services()
        self._tmp.cleanup()


class KubeSpawnerSide:
    """KubeSpawner 7.1, one instance per user, sharing its class-level reflectors."""

    name = "kubespawner"

    def __init__(
        self, api_url: str, token: str, *, start_timeout: float, bad_image_timeout: float = 10.0
    ) -> None:
        self.start_timeout = start_timeout
        self.bad_image_timeout = bad_image_timeout

    def _spawner(self, user: str, *, bad_image: bool = False) -> Any:
        from kubespawner import KubeSpawner

        timeout = self.bad_image_timeout if bad_image else self.start_timeout
        return KubeSpawner(
            _mock=True,
            namespace=NAMESPACE,
            image=BAD_IMAGE if bad_image else IMAGE,
            cmd=["jupyterhub-singleuser"],
            storage_pvc_ensure=True,
            storage_capacity="1Gi",
            volumes=[{"name": "workspace", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
            volume_mounts=[{"name": "workspace", "mountPath": "/workspace"}],
            **hub_spawner_kwargs(user, timeout),
        )

    async def setup(self) -> None:
        spawner = self._spawner("warm-up")
        await spawner._start_watching_pods()
        await spawner._start_watching_events()

    async def spawn(self, user: str, *, bad_image: bool = False) -> Spawned:
        spawner = self._spawner(user, bad_image=bad_image)
        began = time.monotonic()
        url = await spawner.start()
        done = time.monotonic()
        return Spawned(user, spawner.pod_name, url, done - began, done)

    def events_seen(self) -> int:
        from kubespawner import KubeSpawner

        reflector = KubeSpawner.reflectors.get(("events", NAMESPACE))
        return len(reflector.resources) if reflector else -1

    async def close(self) -> None:
        from kubespawner import KubeSpawner

        await KubeSpawner._stop_all_reflectors()


def make_side(
    name: str, api_url: str, token: str, *, start_timeout: float, bad_image_timeout: float
) -> Side:
    """The side called ``name`` (one of :data:`SIDES`).

    ``bad_image_timeout`` is KubeSpawner's ``start_timeout`` for the bad-image spawn: it has no
    fail-fast on image errors, so that is when its spawn ends. raworc's sides fail by themselves.
    """
    classes: dict[str, Any] = {
        "raworc-spawner": RaworcSpawnerSide,
        "raworc-manager": RaworcManagerSide,
        "kubespawner": KubeSpawnerSide,
    }
    kwargs: dict[str, Any] = {"start_timeout": start_timeout}
    if name == "kubespawner":
        kwargs["bad_image_timeout"] = bad_image_timeout
    side: Side = classes[name](api_url, token, **kwargs)
    return side
