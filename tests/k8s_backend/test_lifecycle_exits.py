"""A pod whose server exited leaves ready at once: the watch event is enough."""

from __future__ import annotations

import time

import pytest

from kubesim import KubeSim
from raworc_spawner.backends.base import BackendEvent, BackendEventKind, ComputeState
from tests.k8s_backend.lifecycle import (
    NS,
    change_pod_status,
    evicted,
    exited,
    session_spec,
    started_backend,
)

Kind = BackendEventKind


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "reason", "log", "expected"),
    [
        (0, "Completed", "", "container session exited with code 0: Completed"),
        (3, "Error", "", "container session exited with code 3: Error"),
        (137, "OOMKilled", "", "container session exited with code 137: OOMKilled"),
        (
            3,
            "Error",
            "loading model\nTraceback (most recent call last):\nValueError: boom\n",
            "container session exited with code 3: "
            "loading model\nTraceback (most recent call last):\nValueError: boom",
        ),
    ],
)
async def test_an_exit_while_running_is_reported_within_a_second_with_code_and_reason(
    kubesim: KubeSim, code: int, reason: str, log: str, expected: str
) -> None:
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)

        began = time.monotonic()
        await change_pod_status(kubesim, sid, exited(code, reason, log))
        event = await recorder.wait_for(lambda e: e.kind is Kind.EXITED, timeout=1)

        assert time.monotonic() - began < 1
        assert event == BackendEvent(sid, Kind.EXITED, expected, reason=reason, exit_code=code)
        assert backend.compute_state(sid) is ComputeState.FAILED
        assert backend.address(sid) is None
        compute = (await backend.status(sid)).compute
        assert (compute.state, compute.reason, compute.message) == ("failed", reason, expected)
        assert len(recorder.of(sid, Kind.EXITED)) == 1


@pytest.mark.asyncio
async def test_an_evicted_running_pod_is_lost_not_exited(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)

        await change_pod_status(kubesim, sid, evicted)
        event = await recorder.wait_for(lambda e: e.kind in (Kind.LOST, Kind.EXITED), timeout=1)

        assert event == BackendEvent(
            sid,
            Kind.LOST,
            f"pod session-{sid} was evicted: "
            "The node was low on resource: memory. Threshold quantity: 100Mi.",
            reason="Evicted",
        )
        assert backend.compute_state(sid) is ComputeState.FAILED


@pytest.mark.asyncio
async def test_a_crash_under_restart_policy_on_failure_is_an_exit_though_the_kubelet_restarts(
    kubesim: KubeSim,
) -> None:
    async with started_backend(kubesim, KubernetesSettings__restart_policy="OnFailure") as (
        backend,
        recorder,
    ):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)

        kubesim.kubelet.inject(NS, f"session-{sid}", "CrashLoopBackOff")
        event = await recorder.wait_for(lambda e: e.kind is Kind.EXITED, timeout=1)

        assert event == BackendEvent(
            sid, Kind.EXITED, "container session exited with code 1: Error", "Error", 1
        )
        assert backend.compute_state(sid) is ComputeState.FAILED
        kubesim.kubelet.clear_fault(NS, f"session-{sid}")


@pytest.mark.asyncio
async def test_session_pods_end_when_their_server_exits(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, _):
        pod = backend.renderer.render_pod(session_spec())
        assert pod["spec"]["restartPolicy"] == "Never"
        container = pod["spec"]["containers"][0]
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
