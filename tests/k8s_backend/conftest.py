"""A session manager on the Kubernetes backend, talking to kubesim over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from traitlets.config import Config

from kubesim import KubeSim
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.store import SessionStore

ManagerFactory = Callable[..., Any]
BackendOf = Callable[[SessionManager], KubernetesBackend]


def backend_config(sim: KubeSim, **settings: Any) -> Config:
    """Config pointing the backend at kubesim, fast timings, plus ``settings`` overrides."""
    config = Config()
    config.KubernetesBackend.api_url = sim.url
    config.KubernetesBackend.api_token = sim.token
    config.KubernetesBackend.api_backoff_seconds = 0.01
    config.KubernetesBackend.api_backoff_max_seconds = 0.2
    config.KubernetesBackend.delete_grace_seconds = 1
    config.KubernetesBackend.unschedulable_grace_seconds = 0.5
    if sim.ca_file is not None:
        config.KubernetesBackend.ca_file = str(sim.ca_file)
    for key, value in settings.items():
        section, _, name = key.partition("__")
        config[section][name] = value
    return config


@pytest.fixture
def backends() -> dict[SessionManager, KubernetesBackend]:
    """The backend each manager of the test was built with."""
    return {}


@pytest.fixture
def backend_of(backends: dict[SessionManager, KubernetesBackend]) -> BackendOf:
    """The Kubernetes backend a manager built by ``make_manager`` drives."""
    return backends.__getitem__


@pytest_asyncio.fixture
async def make_manager(
    kubesim: KubeSim,
    tmp_path: Path,
    no_leaked_tasks: None,
    backends: dict[SessionManager, KubernetesBackend],
) -> AsyncIterator[ManagerFactory]:
    """Build (and afterwards close) managers on one store against the running kubesim."""
    opened: list[tuple[SessionManager, SessionStore]] = []

    async def factory(
        *, instance_name: str = "raworc", store_name: str = "", **settings: Any
    ) -> SessionManager:
        """A started manager; ``store_name`` gives it a store of its own (default: shared)."""
        store_dir = tmp_path / store_name if store_name else tmp_path
        store_dir.mkdir(exist_ok=True)
        store = SessionStore.sqlite_in(store_dir)
        await store.open()
        config = backend_config(kubesim, **settings)
        backend = KubernetesBackend(config=config, instance_name=instance_name)
        manager = SessionManager(store=store, backend=backend, config=config)
        backends[manager] = backend
        await manager.start()
        opened.append((manager, store))
        return manager

    yield factory
    for manager, store in opened:
        await manager.close()
        await store.close()


@pytest_asyncio.fixture
async def k8s_manager(make_manager: ManagerFactory) -> SessionManager:
    """One manager with default settings."""
    manager: SessionManager = await make_manager()
    return manager
