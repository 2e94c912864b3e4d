"""pytest fixtures for kubesim.

Register them with ``pytest_plugins = ["kubesim.pytest_plugin"]``.

``kubesim`` is a running :class:`KubeSim` with fast timings (function scope); ``kubesim_config``
can be overridden in a conftest to change nodes, timings, tokens or TLS; ``kube_api`` is a
``kubernetes_asyncio`` ApiClient already pointed at it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from . import KubeSim, KubeSimConfig


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    """The configuration the ``kubesim`` fixture starts from (override to change it)."""
    return KubeSimConfig(namespaces=["default", "kube-system", "raworc-sessions"], seed=1234)


@pytest_asyncio.fixture
async def kubesim(kubesim_config: KubeSimConfig) -> AsyncIterator[KubeSim]:
    """A running kubesim on an ephemeral port, stopped after the test."""
    async with KubeSim(kubesim_config) as sim:
        yield sim


@pytest_asyncio.fixture
async def kube_api(kubesim: KubeSim) -> AsyncIterator[object]:
    """A ``kubernetes_asyncio.client.ApiClient`` for ``kubesim`` with the admin token."""
    from kubernetes_asyncio.client import ApiClient

    async with ApiClient(kubesim.client_configuration()) as api:
        yield api
