"""A start says what it waits on, and a pause removes compute whatever state it is stuck in."""

from __future__ import annotations

import pytest

from kubesim import KubeSim
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.requests import parse_create
from tests.k8s_backend.conftest import ManagerFactory
from tests.k8s_backend.lifecycle import (
    NS,
    eventually,
    session_spec,
    settles_to,
    started_backend,
    stored_pod,
)
from tests.k8s_backend.test_sessions_on_kubernetes import wait_state

ALICE = Principal("alice")


@pytest.mark.asyncio
async def test_a_slow_pull_is_what_a_start_waits_on(kubesim: KubeSim) -> None:
    kubesim.config.timings.image_pull_delay = 30
    async with started_backend(kubesim) as (backend, _):
        spec = session_spec()
        sid = spec.session_id
        assert backend.waiting_on(sid) is None  # unknown session
        await backend.create(spec)
        await settles_to(lambda: backend.waiting_on(sid), "pulling image python:3.11-slim")
        await backend.pause(sid)  # mid-pull
        assert stored_pod(kubesim, sid) is None


@pytest.mark.asyncio
async def test_an_unbound_claim_is_what_a_start_waits_on(kubesim: KubeSim) -> None:
    kubesim.config.timings.pv_bind_delay = 30
    async with started_backend(kubesim) as (backend, _):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        expected = f"claim session-pvc-{sid} to bind (storage class standard)"
        await settles_to(lambda: backend.waiting_on(sid), expected)


@pytest.mark.asyncio
async def test_a_full_cluster_is_what_a_start_waits_on(kubesim: KubeSim) -> None:
    async with started_backend(
        kubesim,
        KubernetesSettings__cpu_request="500",
        KubernetesSettings__cpu_limit="500",
        KubernetesBackend__unschedulable_grace_seconds=30,
    ) as (backend, _):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        expected = "a node: 0/1 nodes are available: 1 Insufficient cpu."
        await eventually(lambda: (backend.waiting_on(sid) or "").startswith(expected))


@pytest.mark.asyncio
async def test_a_slow_container_start_is_what_a_start_waits_on(kubesim: KubeSim) -> None:
    kubesim.config.timings.container_start_delay = 30
    async with started_backend(kubesim) as (backend, _):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await settles_to(lambda: backend.waiting_on(sid), "container session to start")


@pytest.mark.asyncio
async def test_a_ready_session_waits_on_nothing(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec = session_spec()
        await backend.create(spec)
        await backend.wait_ready(spec.session_id, timeout=5)
        assert backend.waiting_on(spec.session_id) is None


@pytest.mark.asyncio
async def test_a_timed_out_start_says_it_was_still_pulling_and_leaves_no_pod(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    kubesim.config.timings.image_pull_delay = 30
    manager = await make_manager(SessionManager__ready_timeout_seconds=0.5)
    session = await manager.create(ALICE, parse_create({"name": "slow-pull"}))
    failed = await wait_state(manager, session.id, "error")
    assert failed.termination_reason == "Timeout"
    assert failed.error is not None and "pulling image python:3.11-slim" in failed.error
    await eventually(lambda: stored_pod(kubesim, session.id) is None)


@pytest.mark.asyncio
@pytest.mark.parametrize("stuck", ["ImagePullBackOff", "CrashLoopBackOff"])
async def test_a_pause_removes_a_pod_that_is_backing_off(kubesim: KubeSim, stuck: str) -> None:
    settings = {"KubernetesSettings__restart_policy": "OnFailure"}
    if stuck == "ImagePullBackOff":
        settings["KubernetesSettings__image"] = "registry.example/does-not-exist:1"
    async with started_backend(kubesim, **settings) as (backend, _):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        if stuck == "CrashLoopBackOff":
            await backend.wait_ready(sid, timeout=5)
            kubesim.kubelet.inject(NS, f"session-{sid}", "CrashLoopBackOff")

        def waiting_reason() -> bool:
            pod = stored_pod(kubesim, sid) or {}
            statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
            return (statuses[0].get("state") or {}).get("waiting", {}).get("reason") == stuck

        await eventually(waiting_reason)
        await backend.pause(sid)
        assert stored_pod(kubesim, sid) is None
