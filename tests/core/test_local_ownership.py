"""A local session's owner record rebuilds its store record; a lost workspace is never replaced
silently; another instance's sessions on the same data directory are never touched."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from raworc_spawner.backends.base import (
    ComputeState,
    ForeignKind,
    ForeignObject,
    FoundSession,
    SessionSpec,
)
from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.errors import SessionFailed

SID = "00000000-0000-4000-8000-000000000031"
CLONE = "00000000-0000-4000-8000-000000000032"
CREATED = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
SPEC = SessionSpec(
    session_id=SID, name="ownership", owner="alice", namespace="team-a", created_at=CREATED
)


def backend_in(data_dir: Path, instance_name: str = "raworc-a") -> LocalBackend:
    return LocalBackend(
        data_dir=str(data_dir),
        instance_name=instance_name,
        ready_after_seconds=0.05,
        stop_grace_seconds=2,
    )


@pytest_asyncio.fixture
async def backend(tmp_path: Path) -> AsyncIterator[LocalBackend]:
    """A started local backend of instance ``raworc-a``; its sessions deleted afterwards."""
    started = backend_in(tmp_path)
    await started.start(lambda event: None)
    try:
        yield started
    finally:
        for sid in (SID, CLONE):
            await started.delete(sid)
        await started.close()


async def run(backend: LocalBackend, spec: SessionSpec = SPEC) -> str:
    """Create the session, wait until it is ready; its volume id."""
    await backend.create(spec)
    placement = await backend.wait_ready(spec.session_id, timeout=10)
    assert placement.persistent_volume_id is not None
    return placement.persistent_volume_id


def resume_of(volume_id: str | None, spec: SessionSpec = SPEC) -> SessionSpec:
    """The spec a resume builds: no creation time or clone source, the record's volume."""
    return SessionSpec(
        session_id=spec.session_id,
        name=spec.name,
        owner=spec.owner,
        namespace=spec.namespace,
        expected_volume=volume_id,
    )


def record_file(data_dir: Path, sid: str = SID) -> Path:
    return data_dir / "sessions" / f"{sid}.json"


@pytest.mark.asyncio
async def test_describe_rebuilds_a_running_session_from_its_owner_record(
    backend: LocalBackend,
) -> None:
    await backend.create(SPEC)
    placement = await backend.wait_ready(SID, timeout=10)
    assert placement.container_id is not None

    found = await backend.describe([SID, "00000000-0000-4000-8000-00000000dead"])

    assert found == [
        FoundSession(
            session_id=SID,
            name="ownership",
            owner="alice",
            namespace="team-a",
            profile=None,
            created_at=CREATED,
            parent_session_id=None,
            persistent_volume_id=placement.persistent_volume_id,
            container_id=placement.container_id,
            has_compute=True,
        )
    ]


@pytest.mark.asyncio
async def test_a_paused_session_is_still_described_without_compute(
    backend: LocalBackend, tmp_path: Path
) -> None:
    volume = await run(backend)
    await backend.pause(SID)
    # A resume's spec has no creation time: the record keeps the first one.
    await backend.create(resume_of(volume))
    await backend.wait_ready(SID, timeout=10)
    await backend.pause(SID)

    [found] = await backend.describe([SID])

    assert record_file(tmp_path).exists()
    assert (found.name, found.owner, found.namespace) == ("ownership", "alice", "team-a")
    assert found.created_at == CREATED
    assert found.persistent_volume_id == volume
    assert (found.has_compute, found.container_id) == (False, None)


@pytest.mark.asyncio
async def test_the_owner_record_is_private_and_names_the_instance(
    backend: LocalBackend, tmp_path: Path
) -> None:
    volume = await run(backend)

    path = record_file(tmp_path)
    workspace = backend.workspace(SID).stat()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "instance": "raworc-a",
        "name": "ownership",
        "owner": "alice",
        "namespace": "team-a",
        "profile": None,
        "created_at": "2025-01-02T03:04:05.678000Z",
        "cloned_from": None,
        "volume_id": volume,
        "directory": f"{workspace.st_dev}:{workspace.st_ino}",
        "waiting_timeout_seconds": None,
        "hub_server": None,
    }


@pytest.mark.asyncio
async def test_a_clone_records_its_parent(backend: LocalBackend) -> None:
    await run(backend)
    clone = SessionSpec(session_id=CLONE, name="remix", owner="bob", clone_from=SID)
    await run(backend, clone)
    await backend.pause(CLONE)
    await backend.create(
        resume_of((await backend.status(CLONE)).workspace.persistent_volume_id, clone)
    )

    [found] = await backend.describe([CLONE])

    assert (found.name, found.owner, found.parent_session_id) == ("remix", "bob", SID)


@pytest.mark.asyncio
async def test_delete_removes_the_owner_record_with_the_workspace(
    backend: LocalBackend, tmp_path: Path
) -> None:
    await run(backend)

    await backend.delete(SID)

    assert not record_file(tmp_path).exists()
    assert not backend.workspace(SID).exists()
    assert await backend.describe([SID]) == []


async def assert_nothing_created(backend: LocalBackend) -> None:
    """No workspace directory and no process for SID."""
    assert not backend.workspace(SID).exists()
    assert backend.process_id(SID) is None
    assert backend.compute_state(SID) is ComputeState.ABSENT
    assert SID not in (await backend.inventory()).compute


@pytest.mark.asyncio
async def test_a_resume_after_the_workspace_directory_was_removed_fails_with_workspace_lost(
    backend: LocalBackend,
) -> None:
    volume = await run(backend)
    await backend.pause(SID)
    shutil.rmtree(backend.workspace(SID))

    with pytest.raises(SessionFailed) as failed:
        await backend.create(resume_of(volume))

    assert failed.value.reason == "WorkspaceLost"
    assert str(backend.workspace(SID)) in failed.value.detail
    assert f"(volume {volume})" in failed.value.detail
    assert "new_workspace" in failed.value.detail
    await assert_nothing_created(backend)


@pytest.mark.asyncio
async def test_a_workspace_holding_another_volume_fails_with_workspace_lost(
    backend: LocalBackend,
) -> None:
    volume = await run(backend)
    await backend.pause(SID)
    other = "pvc-00000000-0000-4000-8000-0000000000ff"

    with pytest.raises(SessionFailed) as failed:
        await backend.create(resume_of(other))

    assert failed.value.reason == "WorkspaceLost"
    assert f"(volume {other})" in failed.value.detail
    assert f"volume {volume}" in failed.value.detail
    assert backend.process_id(SID) is None
    assert backend.workspace(SID).is_dir()  # the workspace found is kept as it is


@pytest.mark.asyncio
async def test_a_workspace_directory_replaced_in_place_fails_with_workspace_lost(
    backend: LocalBackend, tmp_path: Path
) -> None:
    volume = await run(backend)
    (backend.workspace(SID) / "notes.txt").write_text("precious")
    await backend.pause(SID)
    backend.workspace(SID).rename(tmp_path / "moved-aside")
    backend.workspace(SID).mkdir()  # same name, same volume file: another directory

    with pytest.raises(SessionFailed) as failed:
        await backend.create(resume_of(volume))

    assert failed.value.reason == "WorkspaceLost"
    assert "another directory" in failed.value.detail
    assert f"(volume {volume})" in failed.value.detail
    assert backend.process_id(SID) is None
    assert list(backend.workspace(SID).iterdir()) == []  # left as found, nothing run in it

    accepted = await backend.create(resume_of(None))  # new_workspace: this directory will do
    assert accepted.persistent_volume_id not in (None, volume)  # a volume id of its own


@pytest.mark.asyncio
async def test_a_resume_that_finds_its_workspace_runs_in_it(backend: LocalBackend) -> None:
    volume = await run(backend)
    (backend.workspace(SID) / "notes.txt").write_text("kept")
    await backend.pause(SID)

    placement = await backend.create(resume_of(volume))
    ready = await backend.wait_ready(SID, timeout=10)

    assert placement.persistent_volume_id == ready.persistent_volume_id == volume
    assert backend.compute_state(SID) is ComputeState.RUNNING
    assert (backend.workspace(SID) / "notes.txt").read_text() == "kept"


@pytest.mark.asyncio
async def test_a_new_workspace_asked_for_after_a_loss_gets_a_new_volume_id(
    backend: LocalBackend,
) -> None:
    old = await run(backend)
    await backend.pause(SID)
    shutil.rmtree(backend.workspace(SID))

    new = await run(backend, resume_of(None))

    assert new.startswith("pvc-")
    assert new != old
    assert backend.workspace(SID).is_dir()


@pytest.mark.asyncio
async def test_the_volume_id_survives_a_crash_before_its_volume_file_was_written(
    backend: LocalBackend, tmp_path: Path
) -> None:
    volume = await run(backend)
    await backend.pause(SID)
    (tmp_path / "run" / f"{SID}.volume").unlink()

    assert await run(backend, resume_of(volume)) == volume


@pytest.mark.asyncio
async def test_a_workspace_without_owner_record_is_kept_but_not_described(
    backend: LocalBackend, tmp_path: Path
) -> None:
    volume = await run(backend)
    await backend.pause(SID)
    record_file(tmp_path).unlink()  # as an older version left it

    assert await backend.describe([SID]) == []
    assert SID in (await backend.inventory()).workspaces
    assert await backend.claim([SID]) == []
    assert await backend.foreign() == []

    await run(backend, resume_of(volume))  # its next create records its owner
    assert [found.session_id for found in await backend.describe([SID])] == [SID]


@pytest.mark.asyncio
async def test_another_instance_on_the_same_data_directory_never_touches_the_session(
    backend: LocalBackend, tmp_path: Path
) -> None:
    volume = await run(backend)
    other = backend_in(tmp_path, instance_name="raworc-b")
    await other.start(lambda event: None)
    try:
        pid = backend.process_id(SID)
        assert await other.describe([SID]) == []
        inventory = await other.inventory()
        assert SID not in inventory.workspaces
        assert SID not in inventory.compute
        assert await other.foreign() == [
            ForeignObject(ForeignKind.WORKSPACE, str(backend.workspace(SID)), SID, "raworc-a"),
            ForeignObject(ForeignKind.PROCESS, f"pid {pid}", SID, "raworc-a"),
        ]
        with pytest.raises(SessionFailed) as refused:
            await other.create(resume_of(volume))
        assert refused.value.reason == "AlreadyExists"
        assert "raworc-a" in refused.value.detail

        await other.delete(SID)

        assert backend.workspace(SID).is_dir()
        assert record_file(tmp_path).exists()
        assert backend.compute_state(SID) is ComputeState.RUNNING
        assert await backend.foreign() == []
    finally:
        await other.close()
