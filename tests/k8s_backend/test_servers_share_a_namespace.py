"""Servers on one Kubernetes namespace: separate instances never touch each other's sessions, and
a server whose store was wiped finds its own sessions again, with their workspaces.

Each "server" is a session manager with its own store, a Kubernetes backend of its instance and
a start-up reconciliation, as ``raworc-spawner serve`` runs them.
"""

from __future__ import annotations

import contextlib

import pytest
from kubernetes_asyncio.client import ApiClient, CoreV1Api

from kubesim import KubeSim
from raworc_spawner.errors import SessionFailed, SessionNotFound
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal, SessionState
from raworc_spawner.sessions.reconcile import Reconciler
from raworc_spawner.sessions.requests import parse_create
from raworc_spawner.sessions.spec import SpecOverrides
from tests.k8s_backend.conftest import BackendOf, ManagerFactory
from tests.k8s_backend.lifecycle import NS, settles_to
from tests.k8s_backend.test_sessions_on_kubernetes import pod, pvc, wait_state

ALICE = Principal("alice")


async def reconcile_at_startup(manager: SessionManager) -> dict[str, list[str]]:
    """One start-up reconciliation pass of ``manager``; what it did, by action."""
    reconciler = Reconciler(manager=manager, interval_seconds=0)
    try:
        return await reconciler.reconcile(startup=True)
    finally:
        await reconciler.close()


@pytest.mark.asyncio
async def test_a_second_server_with_an_empty_store_leaves_the_first_ones_sessions_alone(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    first = await make_manager(instance_name="raworc-first", store_name="first")
    running = await first.create(ALICE, parse_create({"name": "running"}))
    paused = await first.create(ALICE, parse_create({"name": "paused"}))
    running = await wait_state(first, running.id, "ready")
    await wait_state(first, paused.id, "ready")
    paused = await first.set_state(ALICE, paused.id, SessionState.IDLE)
    second = await make_manager(instance_name="raworc-second", store_name="second")

    actions = await reconcile_at_startup(second)

    assert actions == {}

    for sid in (running.id, paused.id):
        with pytest.raises(SessionNotFound):
            await second.get(ALICE, sid)
    claim = pvc(kubesim, paused.id)
    assert claim is not None and "deletionTimestamp" not in claim["metadata"]
    assert f"pvc-{claim['metadata']['uid']}" == paused.persistent_volume_id
    alive = pod(kubesim, running.id)
    assert alive is not None and "deletionTimestamp" not in alive["metadata"]
    assert alive["metadata"]["uid"] == running.container_id
    assert (await first.get(ALICE, running.id)).state == "ready"
    assert {o.session_id for o in await second.foreign()} == {running.id, paused.id}


@pytest.mark.asyncio
async def test_a_server_with_a_wiped_store_re_adopts_its_sessions_with_their_workspaces(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    before = await make_manager(instance_name="raworc-a", store_name="before")
    session = await before.create(
        ALICE, parse_create({"name": "Résumé: training", "namespace": "research"})
    )
    session = await wait_state(before, session.id, "ready")
    after = await make_manager(instance_name="raworc-a", store_name="wiped")

    actions = await reconcile_at_startup(after)

    adopted = await after.get(ALICE, session.id)
    assert actions == {"adopted": [session.id]}
    assert (adopted.name, adopted.owner, adopted.namespace) == (
        "Résumé: training",
        "alice",
        "research",
    )
    assert adopted.created_at == session.created_at
    assert adopted.persistent_volume_id == session.persistent_volume_id
    claim = pvc(kubesim, session.id)
    assert claim is not None and "deletionTimestamp" not in claim["metadata"]
    assert f"pvc-{claim['metadata']['uid']}" == session.persistent_volume_id


@pytest.mark.asyncio
async def test_a_claim_deleted_behind_a_paused_sessions_back_is_workspace_lost_on_resume(
    kubesim: KubeSim, make_manager: ManagerFactory, backend_of: BackendOf
) -> None:
    manager = await make_manager()
    session = await manager.create(ALICE, parse_create({"name": "lost"}))
    session = await wait_state(manager, session.id, "ready")
    await manager.set_state(ALICE, session.id, SessionState.IDLE)
    async with ApiClient(kubesim.client_configuration()) as api:
        await CoreV1Api(api).delete_namespaced_persistent_volume_claim(
            f"session-pvc-{session.id}", NS
        )
    backend = backend_of(manager)
    await settles_to(lambda: backend.cached("persistentvolumeclaims", session.id), None)

    with contextlib.suppress(SessionFailed):
        await manager.set_state(ALICE, session.id, SessionState.READY)

    failed = await wait_state(manager, session.id, "error")
    assert failed.termination_reason == "WorkspaceLost"
    assert f"session-pvc-{session.id}" in (failed.error or "")
    assert str(session.persistent_volume_id) in (failed.error or "")
    assert pod(kubesim, session.id) is None and pvc(kubesim, session.id) is None
    fresh = await manager.set_state(
        ALICE, session.id, SessionState.READY, overrides=SpecOverrides(new_workspace=True)
    )
    fresh = await wait_state(manager, fresh.id, "ready")
    assert fresh.persistent_volume_id not in (None, session.persistent_volume_id)
