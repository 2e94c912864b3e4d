"""Two replicas of one instance (two backends on one kubesim namespace) watch the same pods: one
that paused a session still hears of the pod another replica's resume made."""

from __future__ import annotations

import pytest

from kubesim import KubeSim
from raworc_spawner.backends.base import BackendEventKind
from tests.k8s_backend.lifecycle import session_spec, started_backend

PODS = "pods"


@pytest.mark.asyncio
async def test_a_pod_made_by_another_replica_after_this_one_paused_is_watched_again(
    kubesim: KubeSim,
) -> None:
    spec = session_spec("shared")
    sid = spec.session_id
    async with started_backend(kubesim) as (a, seen_by_a), started_backend(kubesim) as (b, _):
        await a.create(spec)
        await a.wait_ready(sid, timeout=10)
        await a.pause(sid)  # replica A stops the session
        await b.create(spec)  # replica B resumes it: a new pod
        await b.wait_ready(sid, timeout=10)
        await a.wait_ready(sid, timeout=10)  # A's cache sees it running too

        client = b.require_client()
        await client.delete(PODS, b.namespace, f"session-{sid}")  # deleted by hand

        lost = await seen_by_a.wait_for(
            lambda e: e.session_id == sid and e.kind is BackendEventKind.LOST, timeout=10
        )
        assert lost.reason == "PodDeleted"
        await b.delete(sid)
