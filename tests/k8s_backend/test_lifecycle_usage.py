"""Compute use from the metrics API: one LIST per call, millicores per session."""

from __future__ import annotations

import logging

import pytest

from kubesim import KubeSim
from tests.k8s_backend.lifecycle import NS, session_spec, started_backend


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


UNKNOWN = "session CPU use is unknown and does not count as activity until"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "warning"),
    [
        (404, f"the metrics API (metrics.k8s.io/v1beta1) is not served: {UNKNOWN} it is"),
        (
            503,
            "the metrics API (metrics.k8s.io/v1beta1) cannot be read "
            f"(the server is currently unable to handle the request): {UNKNOWN} it can",
        ),
    ],
)
async def test_a_missing_metrics_api_gives_no_usage_and_one_warning(
    kubesim: KubeSim, caplog: pytest.LogCaptureFixture, code: int, warning: str
) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec = session_spec()
        await backend.create(spec)
        await backend.wait_ready(spec.session_id, timeout=5)
        kubesim.usage.set_usage(NS, f"session-{spec.session_id}", cpu="40m", memory="1Mi")
        kubesim.faults.fail("list", resource="pods", code=code, count=3)
        kubesim.counters.reset()

        with caplog.at_level(logging.INFO):
            answers = [await backend.usage([spec.session_id]) for _ in range(4)]

        assert answers == [{}, {}, {}, {spec.session_id: 40.0}]
        assert kubesim.counters.total(verb="list") == 4  # one each, failures not retried
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings == [warning]
