"""A dead pod is never reused: a create (or resume) replaces compute that cannot become ready."""

from __future__ import annotations

import asyncio

import pytest

from kubesim import KubeSim
from raworc_spawner.backends.base import BackendEventKind, ComputeState
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.requests import parse_create
from tests.k8s_backend.conftest import ManagerFactory
from tests.k8s_backend.lifecycle import (
    change_pod_status,
    eventually,
    evicted,
    exited,
    session_spec,
    started_backend,
    stored_pod,
)
from tests.k8s_backend.test_sessions_on_kubernetes import wait_state

ALICE = Principal("alice")
Kind = BackendEventKind


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "why"),
    [
        (evicted, "phase Failed, reason Evicted"),
        (exited(0, "Completed"), "phase Succeeded"),
        (exited(2, "Error"), "phase Failed"),
    ],
)
async def test_a_create_replaces_a_finished_pod_and_says_why(
    kubesim: KubeSim, change: object, why: str
) -> None:
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        first = await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        await change_pod_status(kubesim, sid, change)  # type: ignore[arg-type]
        await eventually(lambda: backend.compute_state(sid) is ComputeState.FAILED)

        second = await backend.create(spec)

        assert second.container_id != first.container_id
        assert stored_pod(kubesim, sid)["metadata"]["uid"] == second.container_id
        replaced = [e for e in recorder.of(sid) if e.reason == "PodReplaced"]
        assert [(e.kind, e.message) for e in replaced] == [
            (Kind.WARNING, f"replacing pod session-{sid} ({why})")
        ]
        ready = await backend.wait_ready(sid, timeout=5)
        assert ready.container_id == second.container_id
        assert backend.compute_state(sid) is ComputeState.RUNNING


@pytest.mark.asyncio
async def test_a_create_replaces_a_pod_rendered_from_settings_that_changed(
    kubesim: KubeSim,
) -> None:
    spec = session_spec()
    sid = spec.session_id
    async with started_backend(kubesim) as (backend, _):
        first = await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
    changed = {"KubernetesSettings__memory_limit": "2Gi"}
    async with started_backend(kubesim, **changed) as (backend, recorder):
        second = await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        assert second.container_id != first.container_id
        replaced = [e for e in recorder.of(sid) if e.reason == "PodReplaced"]
        assert [(e.kind, e.message) for e in replaced] == [
            (Kind.PROGRESS, f"replacing pod session-{sid} (rendered from settings that changed)")
        ]
        resources = stored_pod(kubesim, sid)["spec"]["containers"][0]["resources"]
        assert resources["limits"] == {"cpu": "1000m", "memory": "2Gi"}


@pytest.mark.asyncio
async def test_a_create_keeps_a_healthy_pod_rendered_from_the_same_settings(
    kubesim: KubeSim,
) -> None:
    spec = session_spec()
    sid = spec.session_id
    async with started_backend(kubesim) as (backend, _):
        first = await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
    async with started_backend(kubesim) as (backend, recorder):
        again = await backend.create(spec)
        assert again.container_id == first.container_id
        assert [e for e in recorder.of(sid) if e.reason == "PodReplaced"] == []


@pytest.mark.asyncio
async def test_a_pod_kept_by_a_second_create_still_reports_its_exit(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        first = await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        again = await backend.create(spec)
        assert again.container_id == first.container_id

        await change_pod_status(kubesim, sid, exited(3, "Error"))

        event = await recorder.wait_for(lambda e: e.kind is Kind.EXITED, timeout=1)
        assert (event.exit_code, event.reason) == (3, "Error")


@pytest.mark.asyncio
async def test_after_an_image_error_a_fixed_image_and_a_restart_give_a_pod_with_the_new_image(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    broken = await make_manager(
        KubernetesSettings__image="registry.example/does-not-exist:1",
        SessionManager__keep_failed_compute=True,
    )
    session = await broken.create(ALICE, parse_create({"name": "image-fixed-later"}))
    failed = await wait_state(broken, session.id, "error")
    assert failed.termination_reason in ("ErrImagePull", "ImagePullBackOff")
    kept = stored_pod(kubesim, session.id)
    assert kept is not None  # kept for debugging, as configured
    await broken.close()

    fixed = await make_manager(KubernetesSettings__image="python:3.12-slim")
    await fixed.set_state(ALICE, session.id, "ready")
    ready = await wait_state(fixed, session.id, "ready")

    now_pod = stored_pod(kubesim, session.id)
    assert now_pod["spec"]["containers"][0]["image"] == "python:3.12-slim"
    assert ready.container_id == now_pod["metadata"]["uid"] != kept["metadata"]["uid"]


@pytest.mark.asyncio
async def test_a_resume_after_an_eviction_starts_a_new_pod(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    manager = await make_manager()
    session = await manager.create(ALICE, parse_create({"name": "evicted-then-resumed"}))
    await wait_state(manager, session.id, "ready")
    old_uid = stored_pod(kubesim, session.id)["metadata"]["uid"]
    await change_pod_status(kubesim, session.id, evicted)
    left = await wait_state(manager, session.id, "idle", timeout=3)
    assert left.termination_reason == "ComputeLost"

    await manager.set_state(ALICE, session.id, "ready")
    ready = await wait_state(manager, session.id, "ready")
    await asyncio.sleep(0.2)  # it stays ready: the new pod is not the evicted one
    assert (await manager.get(ALICE, session.id)).state == "ready"
    assert ready.container_id == stored_pod(kubesim, session.id)["metadata"]["uid"] != old_uid
