"""Compute use from the metrics API: one LIST per call, millicores per session."""

from __future__ import annotations

import logging

import pytest

from kubesim import KubeSim
from tests.k8s_backend.lifecycle import NS, session_spec, started_backend

LOGGER = "raworc_spawner.backends.kubernetes"


@pytest.mark.asyncio
async def test_usage_is_the_pods_cpu_in_millicores_from_one_list(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, _):
        busy, quiet, absent = session_spec("busy"), session_spec("quiet"), session_spec("absent")
        for spec in (busy, quiet):
            await backend.create(spec)
            await backend.wait_ready(spec.session_id, timeout=5)
        kubesim.usage.set_usage(NS, f"session-{busy.session_id}", cpu="750m", memory="64Mi")
        kubesim.usage.set_usage(NS, f"session-{quiet.session_id}", cpu="1500000n", memory="8Mi")
        kubesim.counters.reset()

        usage = await backend.usage([busy.session_id, quiet.session_id, absent.session_id])

        assert usage == {busy.session_id: 750.0, quiet.session_id: 1.5}
        assert kubesim.counters.total(verb="list") == 1
        assert kubesim.counters.total(verb="get") == 0
        assert await backend.usage([]) == {}


@pytest.mark.asyncio
async def test_usage_sums_the_containers_of_the_session_pod(kubesim: KubeSim) -> None:
    sidecar = {"name": "helper", "image": "busybox:1.36", "command": ["sleep", "3600"]}
    async with started_backend(kubesim, KubernetesSettings__sidecar_containers=[sidecar]) as (
        backend,
        _,
    ):
        spec = session_spec()
        await backend.create(spec)
        await backend.wait_ready(spec.session_id, timeout=5)
        pod = f"session-{spec.session_id}"
        kubesim.usage.set_usage(NS, pod, cpu="200m", memory="1Mi", container="session")
        kubesim.usage.set_usage(NS, pod, cpu="50m", memory="1Mi", container="helper")

        assert await backend.usage([spec.session_id]) == {spec.session_id: 250.0}


@pytest.mark.asyncio
async def test_a_missing_metrics_api_gives_no_usage_and_one_warning(
    kubesim: KubeSim, caplog: pytest.LogCaptureFixture
) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec = session_spec()
        await backend.create(spec)
        await backend.wait_ready(spec.session_id, timeout=5)
        kubesim.faults.fail("list", resource="pods", code=404, count=3)

        with caplog.at_level(logging.WARNING, logger=LOGGER):
            answers = [await backend.usage([spec.session_id]) for _ in range(3)]

        assert answers == [{}, {}, {}]
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [r.getMessage() for r in warnings] == [
            "the metrics API (metrics.k8s.io/v1beta1) is not served: session CPU use is "
            "unknown and does not count as activity until it is"
        ]
