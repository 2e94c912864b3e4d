"""Fixtures for the high-availability tests: a Kubernetes client on kubesim, PostgreSQL databases.

PostgreSQL tests need ``RAWORC_TEST_POSTGRES_URL`` (``source scripts/postgres-for-tests``); without
it they skip visibly (and fail under ``CI=true``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kubesim import KubeSim, KubeSimConfig
from raworc_spawner.backends.kubernetes.client import ConnectionOptions, KubeClient, RetryPolicy
from tests.conftest import require
from tests.postgres import empty_schema
from tests.store.conftest import postgres_url

__all__ = ["postgres_url"]

NAMESPACE = "raworc-sessions"


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    """TLS on, so that kubectl sends its token."""
    return KubeSimConfig(namespaces=["default", NAMESPACE], seed=1234, tls=True)


@pytest_asyncio.fixture
async def kube_client(kubesim: KubeSim) -> AsyncIterator[KubeClient]:
    """The project's Kubernetes client on kubesim, with quick retries."""
    options = ConnectionOptions(
        api_url=kubesim.url, token=kubesim.token, ca_file=str(kubesim.ca_file or "")
    )
    client = await KubeClient.connect(
        options, retry=RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=0.05)
    )
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def pg_url(postgres_url: str | None) -> str:
    """The test database's URL with an empty schema (skips without PostgreSQL)."""
    require(
        postgres_url is not None,
        "PostgreSQL tests need RAWORC_TEST_POSTGRES_URL (source scripts/postgres-for-tests)",
    )
    assert postgres_url is not None
    return await empty_schema(postgres_url)
