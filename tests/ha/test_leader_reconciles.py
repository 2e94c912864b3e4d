"""A leader among replicas (local backend, PostgreSQL store, advisory lock) reconciles without
mistaking another replica's work for lost compute, and without leaving a cut create waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from traitlets.config import Config

from raworc_spawner.core import Core, CoreSettings
from raworc_spawner.sessions.model import EventKind, Session, SessionEvent, SessionState
from raworc_spawner.store import SessionStore
from tests.waiting import until_state

GRACE = 1.0


@contextlib.asynccontextmanager
async def replica(db_url: str, data: Path) -> AsyncIterator[Core]:
    """A started core on the local backend and ``db_url``, with quick election and grace."""
    config = Config()
    config.LeaderElection.lease_duration_seconds = 1.0
    config.LeaderElection.renew_deadline_seconds = 0.8
    config.LeaderElection.retry_period_seconds = 0.2
    config.Reconciler.orphan_grace_seconds = GRACE
    config.Reconciler.interval_seconds = 300
    settings = CoreSettings(data_dir=str(data), db_url=db_url, instance_name="raworc-ha-test")
    core = Core(settings, config=config)
    await core.start()
    try:
        yield core
    finally:
        await core.close()


@pytest.mark.asyncio
async def test_a_create_cut_before_its_compute_is_settled_within_the_grace_not_an_interval(
    pg_url: str, tmp_path: Path
) -> None:
    # A replica recorded the session and died before creating anything.
    store = SessionStore(pg_url)
    await store.open()
    cut = Session(id="6d1f1f39-86c5-4a35-9d5e-7a1c0b1c0d01", name="cut", owner="alice")
    created = SessionEvent(cut.id, 0, EventKind.CREATED, "created", state=SessionState.INIT)
    await store.insert_and_record(cut, created)
    await store.close()

    async with replica(pg_url, tmp_path / "leader") as leader:
        # Elected after holding the lock for a lease; then seen missing, then lost after GRACE.
        settled = await until_state(leader.manager, cut.id, "idle", timeout=15)
    assert settled.termination_reason == "ComputeLost"


@pytest.mark.asyncio
async def test_a_create_cut_by_another_replicas_death_is_settled_by_the_running_leader(
    pg_url: str, tmp_path: Path
) -> None:
    async with replica(pg_url, tmp_path / "leader") as leader:
        await until_leading(leader)
        # Another replica recorded a session and died before creating anything.
        cut = Session(id="0b6f3c1e-1d2a-4c59-8b1a-3f1e2d4c5b6a", name="orphaned", owner="bob")
        created = SessionEvent(cut.id, 0, EventKind.CREATED, "created", state=SessionState.INIT)
        await leader.store.insert_and_record(cut, created)

        settled = await until_state(leader.manager, cut.id, "idle", timeout=4 * GRACE + 5)
    assert settled.termination_reason == "ComputeLost"


async def until_leading(core: Core, timeout: float = 10.0) -> None:
    """Wait (at most ``timeout`` s) until ``core`` runs the background loops."""
    async with asyncio.timeout(timeout):
        while not core.is_leader:
            await asyncio.sleep(0.05)
