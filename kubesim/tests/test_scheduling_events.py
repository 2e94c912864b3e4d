"""Scheduler and PV binder events for a pod and its claim, as a real cluster records them.

``WaitForFirstConsumer`` (kind's ``standard``, most CSI classes): the claim waits for a pod,
the scheduler picks a node and hands it to the provisioner, the pod is bound once the claim is,
and nothing is a warning. ``Immediate``: the claim is provisioned at once, and a pod tried
before it binds is told so (``FailedScheduling``), once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from kubesim import KubeSim, KubeSimConfig
from kubesim.config import StorageClassSpec

from .conftest import NS, events_for, eventually, pod_manifest, pvc_manifest, running_pod

PROVISIONER = "kubesim.io/hostpath"
PROVISIONER_SOURCE = re.compile(r"^kubesim\.io/hostpath_kubesim-provisioner_[0-9a-f-]{36}$")
EXTERNAL_PROVISIONING = (
    f"Waiting for a volume to be created either by the external provisioner '{PROVISIONER}' or "
    "manually by the system administrator. If volume creation is delayed, please verify that "
    "the provisioner is running and correctly registered."
)
UNBOUND_IMMEDIATE = (
    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
    "0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return KubeSimConfig(
        namespaces=["default", NS],
        storage_classes=[
            StorageClassSpec("standard", binding_mode="WaitForFirstConsumer", default=True),
            StorageClassSpec("immediate", binding_mode="Immediate"),
        ],
        seed=7,
    )


def in_order(events: list[Any]) -> list[Any]:
    return sorted(events, key=lambda e: int(e.metadata.resource_version))


def summary(events: list[Any]) -> list[tuple[str, str, str]]:
    """(type, reason, message) of each event, oldest first."""
    return [(e.type, e.reason, e.message) for e in in_order(events)]


async def scheduling_events(core: Any, pod: str) -> list[tuple[str, str, str]]:
    events = await events_for(core, pod)
    return [s for s in summary(events) if s[1] in ("FailedScheduling", "Scheduled")]


async def bound_claim(core: Any, name: str) -> Any:
    async def probe() -> Any:
        claim = await core.read_namespaced_persistent_volume_claim(name, NS)
        return claim if claim.status.phase == "Bound" else None

    return await eventually(probe, what=f"claim {name} Bound")


@pytest.mark.asyncio
async def test_a_session_pod_and_its_delayed_claim_schedule_without_any_warning(
    core: Any,
) -> None:
    pvc = await core.create_namespaced_persistent_volume_claim(NS, pvc_manifest("w"))
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    pod = await running_pod(core, "p")
    claim = await bound_claim(core, "w")

    assert await scheduling_events(core, "p") == [
        ("Normal", "Scheduled", "Successfully assigned raworc-sessions/p to kubesim-node-1")
    ]
    volume = f"pvc-{pvc.metadata.uid}"
    assert summary(await events_for(core, "w")) == [
        (
            "Normal",
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding",
        ),
        ("Normal", "ExternalProvisioning", EXTERNAL_PROVISIONING),
        (
            "Normal",
            "Provisioning",
            'External provisioner is provisioning volume for claim "raworc-sessions/w"',
        ),
        ("Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {volume}"),
    ]
    assert claim.metadata.annotations["volume.kubernetes.io/selected-node"] == pod.spec.node_name
    assert claim.spec.volume_name == volume


@pytest.mark.asyncio
async def test_claim_events_come_from_the_controller_and_from_the_provisioner(
    core: Any,
) -> None:
    await core.create_namespaced_persistent_volume_claim(NS, pvc_manifest("w"))
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    await bound_claim(core, "w")
    sources = {e.reason: e.source.component for e in await events_for(core, "w")}
    assert sources["WaitForFirstConsumer"] == "persistentvolume-controller"
    assert sources["ExternalProvisioning"] == "persistentvolume-controller"
    assert PROVISIONER_SOURCE.match(sources["Provisioning"])
    assert sources["ProvisioningSucceeded"] == sources["Provisioning"]


@pytest.mark.asyncio
async def test_a_pod_waits_unscheduled_and_silent_while_its_claim_is_provisioned(
    sim: KubeSim, core: Any
) -> None:
    sim.config.timings.pv_bind_delay = 0.6
    await core.create_namespaced_persistent_volume_claim(NS, pvc_manifest("w"))
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    await sim.wait_idle(0.3)

    pod = await core.read_namespaced_pod("p", NS)
    claim = await core.read_namespaced_persistent_volume_claim("w", NS)
    assert pod.spec.node_name is None and pod.status.phase == "Pending"
    assert pod.status.conditions is None
    assert claim.status.phase == "Pending"
    assert claim.metadata.annotations["volume.kubernetes.io/selected-node"] == "kubesim-node-1"
    assert await events_for(core, "p") == []
    await running_pod(core, "p")
    assert await scheduling_events(core, "p") == [
        ("Normal", "Scheduled", "Successfully assigned raworc-sessions/p to kubesim-node-1")
    ]


@pytest.mark.asyncio
async def test_a_pod_tried_before_its_immediate_claim_binds_is_told_once(
    sim: KubeSim, core: Any
) -> None:
    sim.config.timings.pv_bind_delay = 1.2  # longer than two periodic scheduler retries
    await core.create_namespaced_persistent_volume_claim(
        NS, pvc_manifest("w", storage_class="immediate")
    )
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    await running_pod(core, "p")

    events = in_order(await events_for(core, "p"))
    failed = [e for e in events if e.reason == "FailedScheduling"]
    assert [(e.type, e.message, e.count) for e in failed] == [("Warning", UNBOUND_IMMEDIATE, 1)]
    assert await scheduling_events(core, "p") == [
        ("Warning", "FailedScheduling", UNBOUND_IMMEDIATE),
        ("Normal", "Scheduled", "Successfully assigned raworc-sessions/p to kubesim-node-1"),
    ]
    assert [r for _, r, _ in summary(await events_for(core, "w"))] == [
        "ExternalProvisioning",
        "Provisioning",
        "ProvisioningSucceeded",
    ]


@pytest.mark.asyncio
async def test_a_pod_created_after_its_immediate_claim_bound_schedules_without_warning(
    core: Any,
) -> None:
    await core.create_namespaced_persistent_volume_claim(
        NS, pvc_manifest("w", storage_class="immediate")
    )
    await bound_claim(core, "w")
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    await running_pod(core, "p")
    assert await scheduling_events(core, "p") == [
        ("Normal", "Scheduled", "Successfully assigned raworc-sessions/p to kubesim-node-1")
    ]


@pytest.mark.asyncio
async def test_a_pod_created_before_its_claim_is_told_the_claim_is_missing(
    sim: KubeSim, core: Any
) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    await sim.wait_idle(0.1)
    await core.create_namespaced_persistent_volume_claim(NS, pvc_manifest("w"))
    await running_pod(core, "p")
    assert await scheduling_events(core, "p") == [
        (
            "Warning",
            "FailedScheduling",
            '0/1 nodes are available: persistentvolumeclaim "w" not found. preemption: 0/1 '
            "nodes are available: 1 Preemption is not helpful for scheduling.",
        ),
        ("Normal", "Scheduled", "Successfully assigned raworc-sessions/p to kubesim-node-1"),
    ]


@pytest.mark.asyncio
async def test_a_pod_blocked_by_its_claim_is_not_retried_until_the_claim_changes(
    sim: KubeSim, core: Any
) -> None:
    await core.create_namespaced_persistent_volume_claim(
        NS, pvc_manifest("w", storage_class="gold")
    )
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    await sim.wait_idle(1.2)  # more than two periodic retries of unschedulable pods
    (failed,) = await events_for(core, "p")
    assert (failed.reason, failed.message, failed.count) == (
        "FailedScheduling",
        UNBOUND_IMMEDIATE,
        1,
    )


@pytest.mark.asyncio
async def test_a_pod_that_fits_no_node_is_retried_and_its_warning_counted(
    sim: KubeSim, core: Any
) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("huge", cpu="64"))
    await sim.wait_idle(1.2)
    (failed,) = await events_for(core, "huge")
    assert failed.reason == "FailedScheduling"
    assert failed.message.startswith("0/1 nodes are available: 1 Insufficient cpu.")
    assert failed.count >= 2


def test_the_default_storage_class_waits_for_the_first_consumer() -> None:
    (default,) = [sc for sc in KubeSimConfig().storage_classes if sc.default]
    assert (default.name, default.binding_mode, default.provisioner) == (
        "standard",
        "WaitForFirstConsumer",
        PROVISIONER,
    )
