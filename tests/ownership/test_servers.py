"""Whole servers (store, backend, manager, reconciler) sharing one kubesim namespace: each acts
on its own instance's objects only, re-adopts them when its store forgets them, never replaces a
lost workspace silently, and a backend switch neither runs a session twice nor hides its pod."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import KubeSim
from raworc_spawner.app import RaworcApp
from raworc_spawner.core import Core, CoreSettings
from raworc_spawner.errors import BackendMismatch
from raworc_spawner.ops import cleanup
from raworc_spawner.sessions.manager import SYSTEM
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.requests import parse_create
from raworc_spawner.sessions.spec import SpecOverrides
from tests.k8s_backend.conftest import backend_config
from tests.k8s_backend.lifecycle import eventually, stored_pod, stored_pvc
from tests.waiting import until_state

ALICE = Principal("alice")
NEW_WORKSPACE = SpecOverrides(new_workspace=True)


@contextlib.asynccontextmanager
async def server(
    sim: KubeSim, data: Path, *, kubernetes: bool = True, **settings: Any
) -> AsyncIterator[Core]:
    """A started core on ``data`` (its SQLite store), on kubesim or the local backend."""
    config = backend_config(sim, **settings)
    config.Reconciler.orphan_grace_seconds = 0
    core = Core(CoreSettings(data_dir=str(data), kubernetes_enabled=kubernetes), config=config)
    await core.start()
    try:
        yield core
    finally:
        await core.close()


def uid(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["metadata"]["uid"])


async def ready(core: Core, name: str, **fields: Any) -> str:
    session = await core.manager.create(ALICE, parse_create({"name": name, **fields}))
    await until_state(core.manager, session.id, "ready", timeout=10)
    return session.id


@pytest.mark.asyncio
async def test_a_second_server_with_its_own_store_never_touches_the_first_servers_sessions(
    kubesim: KubeSim, tmp_path: Path
) -> None:
    async with server(kubesim, tmp_path / "a") as a:
        ids = [await ready(a, "first"), await ready(a, "second")]
        before = {
            sid: (uid(stored_pod(kubesim, sid)), uid(stored_pvc(kubesim, sid))) for sid in ids
        }
        async with server(kubesim, tmp_path / "b") as b:
            assert b.instance_name != a.instance_name
            assert (await b.manager.list(SYSTEM)).items == []
            inventory = await b.manager.inventory()
            assert (inventory.compute, inventory.workspaces) == (frozenset(), frozenset())
            foreign = sorted((o.kind, o.session_id, o.instance) for o in await b.manager.foreign())
            assert foreign == sorted(
                (kind, sid, a.instance_name)
                for sid in ids
                for kind in ("persistentvolumeclaim", "pod")
            )
            await b.reconciler.reconcile()
        after = {sid: (uid(stored_pod(kubesim, sid)), uid(stored_pvc(kubesim, sid))) for sid in ids}
        assert after == before
        assert [(await a.manager.get(ALICE, sid)).state for sid in ids] == ["ready", "ready"]


@pytest.mark.asyncio
async def test_a_server_whose_store_was_wiped_re_adopts_its_sessions_with_their_workspaces(
    kubesim: KubeSim, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with server(kubesim, data) as first:
        hub = {"jupyterhub": {"user": "alice", "server_name": "gpu"}}
        running = await ready(first, "running", namespace="team-a", metadata=hub)
        sleeping = await ready(first, "sleeping")
        await first.manager.set_state(ALICE, sleeping, "idle")
        await first.manager.update(
            ALICE, sleeping, {"name": "renamed while asleep", "waiting_timeout_seconds": 600}
        )
        originals = {sid: await first.manager.get(ALICE, sid) for sid in (running, sleeping)}
    for leftover in data.glob("raworc.sqlite*"):
        leftover.unlink()
    async with server(kubesim, data) as again:
        adopted = await until_state(again.manager, running, "ready", timeout=10)
        idle = await again.manager.get(ALICE, sleeping)
        assert (idle.state, idle.name) == ("idle", "renamed while asleep")
        assert idle.waiting_timeout_seconds == 600  # culled on its own timeout, not the default
        assert adopted.metadata == hub  # a hub's server stays the hub's
        for session in (adopted, idle):
            original = originals[session.id]
            assert (session.name, session.owner, session.namespace, session.created_at) == (
                original.name,
                original.owner,
                original.namespace,
                original.created_at,
            )
            assert session.persistent_volume_id == original.persistent_volume_id
            events = await again.manager.events(ALICE, session.id)
            assert [(e.kind, e.reason) for e in events][:1] == [("adopted", "Adopted")]
        assert adopted.container_id == originals[running].container_id  # the same pod, kept
        resumed = await again.manager.set_state(ALICE, sleeping, "ready")
        resumed = await until_state(again.manager, sleeping, "ready", timeout=10)
        assert resumed.persistent_volume_id == originals[sleeping].persistent_volume_id


@pytest.mark.asyncio
async def test_a_claim_deleted_behind_a_sessions_back_gives_workspace_lost_on_resume(
    kubesim: KubeSim, tmp_path: Path
) -> None:
    async with server(kubesim, tmp_path / "data") as core:
        sid = await ready(core, "precious")
        await core.manager.set_state(ALICE, sid, "idle")
        volume = (await core.manager.get(ALICE, sid)).persistent_volume_id
        assert volume is not None
        client = core.backend.require_client()  # type: ignore[attr-defined]
        await client.delete("persistentvolumeclaims", "raworc-sessions", f"session-pvc-{sid}")
        await eventually(lambda: stored_pvc(kubesim, sid) is None, timeout=10)

        failed = await core.manager.set_state(ALICE, sid, "ready")
        assert (failed.state, failed.termination_reason) == ("error", "WorkspaceLost")
        assert f"session-pvc-{sid}" in (failed.error or "")
        assert volume in (failed.error or "")
        assert stored_pvc(kubesim, sid) is None  # no empty claim in its place
        assert stored_pod(kubesim, sid) is None

        renewed = await core.manager.set_state(ALICE, sid, "ready", overrides=NEW_WORKSPACE)
        renewed = await until_state(core.manager, sid, "ready", timeout=10)
        assert renewed.persistent_volume_id not in (None, volume)
        events = await core.manager.events(ALICE, sid)
        assert ("resuming", "NewWorkspace") in [(e.kind, e.reason) for e in events]


@pytest.mark.asyncio
async def test_a_backend_switch_neither_runs_a_session_twice_nor_hides_its_pod(
    kubesim: KubeSim, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with server(kubesim, data) as on_kubernetes:
        sid = await ready(on_kubernetes, "moved")
    pod_uid = uid(stored_pod(kubesim, sid))
    async with server(kubesim, data, kubernetes=False) as local:
        session = await local.manager.get(ALICE, sid)
        assert (session.state, session.backend) == ("ready", "kubernetes")
        with pytest.raises(BackendMismatch, match="cleanup --delete"):
            await local.manager.set_state(ALICE, sid, "ready")
        with pytest.raises(BackendMismatch):
            await local.manager.delete(ALICE, sid)
        with pytest.raises(BackendMismatch, match="cannot mark busy"):
            await local.manager.set_state(ALICE, sid, "busy")
        await local.reconciler.reconcile()
        assert (await local.manager.get(ALICE, sid)).state == "ready"  # not mistaken for lost
        assert uid(stored_pod(kubesim, sid)) == pod_uid

        app = RaworcApp(config=backend_config(kubesim))
        app.data_dir = str(data)
        listed = [f.line() for f in await cleanup(app, delete=False)]
        assert listed == [
            f"{sid}  compute still running on the kubernetes backend (session 'moved', ready) "
            "(run with --delete to stop it)"
        ]
        stopped = [f.line() for f in await cleanup(app, delete=True)]
        assert stopped == [
            f"{sid}  compute stopped on the kubernetes backend (session 'moved', ready); the "
            "session is idle, workspace kept"
        ]
        assert stored_pod(kubesim, sid) is None
        assert stored_pvc(kubesim, sid) is not None  # the workspace stays where it was

        with pytest.raises(BackendMismatch, match="new_workspace"):
            await local.manager.set_state(ALICE, sid, "ready")
        await local.manager.set_state(ALICE, sid, "ready", overrides=NEW_WORKSPACE)
        moved = await until_state(local.manager, sid, "ready", timeout=10)
        assert moved.backend == "local"
        assert stored_pod(kubesim, sid) is None
        await local.manager.delete(ALICE, sid)  # its process must not outlive the test
