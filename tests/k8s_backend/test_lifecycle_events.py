"""Kubernetes Events are believed only about the session's current objects, never decide
anything destructive alone, and count as one row however often they are updated."""

from __future__ import annotations

import asyncio

import pytest

from kubesim import KubeSim
from raworc_spawner.backends.base import BackendEvent, BackendEventKind, ComputeState
from tests.k8s_backend.lifecycle import (
    bump_event,
    event_about,
    now,
    session_spec,
    started_backend,
    stored_pod,
    stored_pvc,
    write_event,
)

Kind = BackendEventKind
FORGED_UID = "00000000-0000-4000-8000-000000000000"


def about(recorder_events: list[BackendEvent], text: str) -> list[BackendEvent]:
    return [e for e in recorder_events if text in e.message]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("uid", "when"),
    [(FORGED_UID, None), (None, "2001-01-01T00:00:00Z")],
    ids=["another-uid", "older-than-the-pod"],
)
async def test_a_warning_about_another_object_with_the_pods_name_is_ignored(
    kubesim: KubeSim, uid: str | None, when: str | None
) -> None:
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        pod = stored_pod(kubesim, sid)
        forged = event_about(
            pod, reason="FailedMount", message="forged: volume is gone", uid=uid, when=when
        )
        await write_event(kubesim, forged)
        marker = event_about(pod, reason="Started", message="marker", type="Normal")
        await write_event(kubesim, marker)  # written after: once it is seen, so was the other
        await recorder.wait_for(lambda e: e.message.endswith("marker"))

        assert about(recorder.events, "forged") == []
        status = await backend.status(sid)
        assert status.compute.state is ComputeState.RUNNING
        assert [e.message for e in status.events if "forged" in (e.message or "")] == []
        assert backend.compute_state(sid) is ComputeState.RUNNING
        await backend.pause(sid)  # nothing was decided about the healthy pod meanwhile


@pytest.mark.asyncio
async def test_a_provisioning_failure_event_alone_does_not_fail_a_start(
    kubesim: KubeSim,
) -> None:
    kubesim.config.timings.pv_bind_delay = 0.5
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await asyncio.sleep(0.1)
        claim = stored_pvc(kubesim, sid)
        event = event_about(claim, reason="ProvisioningFailed", message="forged: disk on fire")
        await write_event(kubesim, event)
        await recorder.wait_for(lambda e: "disk on fire" in e.message)

        placement = await backend.wait_ready(sid, timeout=5)  # the storage class exists

        assert placement.container_id == stored_pod(kubesim, sid)["metadata"]["uid"]


@pytest.mark.asyncio
async def test_events_of_a_previous_pod_are_neither_status_nor_progress_of_the_new_one(
    kubesim: KubeSim,
) -> None:
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        old_pod = stored_pod(kubesim, sid)
        await backend.pause(sid)
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        new_pod = stored_pod(kubesim, sid)
        assert new_pod["metadata"]["uid"] != old_pod["metadata"]["uid"]
        seen = len(recorder.events)

        late = event_about(old_pod, reason="BackOff", message="late news of the old pod")
        await write_event(kubesim, late)
        marker = event_about(new_pod, reason="Started", message="marker", type="Normal")
        await write_event(kubesim, marker)
        await recorder.wait_for(lambda e: e.message.endswith("marker"))

        assert about(recorder.events[seen:], "late news") == []
        status = await backend.status(sid)
        objects = {e.object for e in status.events}
        assert objects == {f"Pod/session-{sid}", f"PersistentVolumeClaim/session-pvc-{sid}"}
        steps = [e.reason for e in status.events if e.reason in ("Scheduled", "Killing")]
        assert steps == ["Scheduled"]  # the new pod's start only, not the old one's or its end
        assert [e for e in status.events if e.message == "late news of the old pod"] == []


@pytest.mark.asyncio
async def test_an_event_updated_in_place_is_one_row_with_its_count(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, recorder):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        event = await write_event(
            kubesim,
            event_about(stored_pod(kubesim, sid), reason="Unhealthy", message="probe failed"),
        )
        for _ in range(3):
            event = await bump_event(kubesim, event)
        await eventually_status_count(backend, sid, "Unhealthy", 4)

        rows = [e for e in (await backend.status(sid)).events if e.reason == "Unhealthy"]
        assert [(r.type, r.message, r.count) for r in rows] == [("Warning", "probe failed", 4)]
        emitted = [e for e in recorder.of(sid) if e.reason == "Unhealthy"]
        assert [(e.kind, e.message) for e in emitted] == [
            (Kind.WARNING, f"Pod/session-{sid}: probe failed")
        ]


async def eventually_status_count(backend: object, sid: str, reason: str, count: int) -> None:
    async with asyncio.timeout(5):
        while True:
            events = (await backend.status(sid)).events  # type: ignore[attr-defined]
            if any(e.reason == reason and e.count == count for e in events):
                return
            await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_a_claim_bound_after_its_pod_shows_no_scheduling_warning(kubesim: KubeSim) -> None:
    """An Immediate class: the scheduler sees the pod before the claim binds, and says so."""
    async with started_backend(kubesim, KubernetesSettings__storage_class="immediate") as (
        backend,
        recorder,
    ):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        await asyncio.sleep(0.1)

        scheduling = [e for e in recorder.of(sid) if e.reason == "FailedScheduling"]
        assert scheduling, "kubesim's scheduler tried the pod before its claim was bound"
        assert {e.kind for e in scheduling} == {Kind.PROGRESS}
        assert recorder.of(sid, Kind.WARNING) == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("reason", "message", "fresh", "kind"),
    [
        ("FailedMount", "MountVolume.SetUp failed: not attached yet", True, Kind.PROGRESS),
        ("FailedAttachVolume", "AttachVolume.Attach failed: in progress", True, Kind.PROGRESS),
        ("FailedMount", "MountVolume.SetUp failed: not attached yet", False, Kind.WARNING),
        (
            "FailedScheduling",
            "0/1 nodes are available: waiting for first consumer to be created before binding.",
            False,
            Kind.PROGRESS,
        ),
        (
            "FailedScheduling",
            '0/1 nodes are available: persistentvolumeclaim "session-pvc-x" not found. '
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
            False,
            Kind.PROGRESS,
        ),
        ("FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.", True, Kind.WARNING),
        ("BackOff", "Back-off restarting failed container", True, Kind.WARNING),
    ],
)
async def test_expected_transient_warnings_are_progress(
    kubesim: KubeSim, reason: str, message: str, fresh: bool, kind: Kind
) -> None:
    grace = 60.0 if fresh else 0.0
    async with started_backend(kubesim, KubernetesBackend__expected_warning_seconds=grace) as (
        backend,
        recorder,
    ):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        await write_event(
            kubesim,
            event_about(stored_pod(kubesim, sid), reason=reason, message=message, when=now()),
        )
        event = await recorder.wait_for(lambda e: e.message.endswith(message))
        assert (event.kind, event.reason) == (kind, reason)
