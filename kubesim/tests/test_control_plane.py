"""The simulated scheduler, PV binder, kubelet and garbage collector, seen through the API."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import CoreV1Api

from kubesim import KubeSim, KubeSimConfig, NodeSpec

from .conftest import NS, events_for, eventually, pod_manifest, pvc_manifest, running_pod


def reasons(events: list[Any]) -> list[str]:
    return [e.reason for e in sorted(events, key=lambda e: e.metadata.resource_version)]


@pytest.mark.asyncio
async def test_a_pod_runs_with_ip_conditions_and_container_status(core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p"))
    pod = await running_pod(core, "p")
    assert pod.spec.node_name == "kubesim-node-1"
    assert pod.status.pod_ip.startswith("127.10.") and pod.status.host_ip == "127.0.1.1"
    assert pod.status.start_time is not None
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions == {
        "PodScheduled": "True",
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    (status,) = pod.status.container_statuses
    assert status.ready and status.started and status.container_id.startswith("containerd://")
    assert status.state.running.started_at is not None
    assert reasons(await events_for(core, "p")) == [
        "Scheduled",
        "Pulling",
        "Pulled",
        "Created",
        "Started",
    ]
    event = (await events_for(core, "p"))[0]
    assert event.involved_object.kind == "Pod" and event.involved_object.uid == pod.metadata.uid
    assert (
        event.source.component == "default-scheduler"
        and event.type == "Normal"
        and event.count == 1
    )


@pytest.mark.asyncio
async def test_a_claim_binds_to_a_provisioned_volume_named_after_its_uid(core: CoreV1Api) -> None:
    manifest = pvc_manifest("w", storage_class="immediate")
    pvc = await core.create_namespaced_persistent_volume_claim(NS, manifest)
    assert pvc.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert pvc.spec.storage_class_name == "immediate" and pvc.status.phase == "Pending"

    async def bound() -> Any:
        claim = await core.read_namespaced_persistent_volume_claim("w", NS)
        return claim if claim.status.phase == "Bound" else None

    claim = await eventually(bound, what="claim Bound")
    assert claim.spec.volume_name == f"pvc-{pvc.metadata.uid}"
    assert claim.status.capacity == {"storage": "1Gi"} and claim.status.access_modes == [
        "ReadWriteOnce"
    ]
    volume = await core.read_persistent_volume(claim.spec.volume_name)
    assert volume.status.phase == "Bound" and volume.spec.claim_ref.uid == pvc.metadata.uid
    assert reasons(await events_for(core, "w")) == [
        "ExternalProvisioning",
        "Provisioning",
        "ProvisioningSucceeded",
    ]


@pytest.mark.asyncio
async def test_an_unknown_storage_class_leaves_the_claim_pending_with_a_warning(
    core: CoreV1Api,
) -> None:
    await core.create_namespaced_persistent_volume_claim(
        NS, pvc_manifest("w", storage_class="gold")
    )
    events = await eventually(lambda: events_for(core, "w"), what="ProvisioningFailed")
    assert events[0].reason == "ProvisioningFailed" and events[0].type == "Warning"
    assert events[0].message == 'storageclass.storage.k8s.io "gold" not found'
    assert (await core.read_namespaced_persistent_volume_claim("w", NS)).status.phase == "Pending"


@pytest.mark.asyncio
async def test_wait_for_first_consumer_binds_only_once_a_pod_uses_the_claim(
    sim: KubeSim, core: CoreV1Api
) -> None:
    await core.create_namespaced_persistent_volume_claim(
        NS, pvc_manifest("w", storage_class="wait-for-consumer")
    )
    await sim.wait_idle(0.2)
    claim = await core.read_namespaced_persistent_volume_claim("w", NS)
    assert claim.status.phase == "Pending"
    assert reasons(await events_for(core, "w")) == ["WaitForFirstConsumer"]
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    pod = await running_pod(core, "p")
    claim = await core.read_namespaced_persistent_volume_claim("w", NS)
    assert claim.status.phase == "Bound"
    assert claim.metadata.annotations["volume.kubernetes.io/selected-node"] == pod.spec.node_name


@pytest.mark.asyncio
async def test_a_pod_waits_for_its_claim_and_reports_why(sim: KubeSim, core: CoreV1Api) -> None:
    sim.config.timings.pv_bind_delay = 0.3
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    events = await eventually(lambda: events_for(core, "p"), what="FailedScheduling")
    assert events[0].reason == "FailedScheduling"
    assert events[0].message.startswith(
        '0/1 nodes are available: persistentvolumeclaim "w" not found.'
    )
    await core.create_namespaced_persistent_volume_claim(NS, pvc_manifest("w"))
    await running_pod(core, "p")


@pytest.mark.asyncio
async def test_a_pod_that_fits_nowhere_gets_failed_scheduling(core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("huge", cpu="64"))
    events = await eventually(lambda: events_for(core, "huge"), what="FailedScheduling")
    assert events[0].type == "Warning" and events[0].reason == "FailedScheduling"
    assert events[0].message.startswith("0/1 nodes are available: 1 Insufficient cpu.")
    pod = await core.read_namespaced_pod("huge", NS)
    scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")


@pytest.mark.parametrize(
    "kubesim_config", [KubeSimConfig(namespaces=[NS], nodes=[NodeSpec("small", cpu="1")])]
)
@pytest.mark.asyncio
async def test_node_capacity_limits_how_many_pods_run(core: CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        await core.create_namespaced_pod(NS, pod_manifest(name, cpu="400m"))
    await running_pod(core, "b")
    await eventually(lambda: events_for(core, "c"), what="c unschedulable")
    assert (await core.read_namespaced_pod("c", NS)).status.phase == "Pending"
    await core.delete_namespaced_pod("a", NS, grace_period_seconds=0)
    await running_pod(core, "c")


@pytest.mark.asyncio
async def test_a_failing_image_goes_from_err_image_pull_to_image_pull_back_off(
    core: CoreV1Api,
) -> None:
    await core.create_namespaced_pod(
        NS, pod_manifest("p", image="registry.example/does-not-exist:1")
    )

    async def waiting_reason(wanted: str) -> Any:
        pod = await core.read_namespaced_pod("p", NS)
        statuses = pod.status.container_statuses or []
        return (
            pod
            if statuses and statuses[0].state.waiting and statuses[0].state.waiting.reason == wanted
            else None
        )

    await eventually(lambda: waiting_reason("ErrImagePull"), what="ErrImagePull")
    pod = await eventually(lambda: waiting_reason("ImagePullBackOff"), what="ImagePullBackOff")
    assert pod.status.phase == "Pending"
    messages = [e.message for e in await events_for(core, "p")]
    assert "Error: ErrImagePull" in messages and "Error: ImagePullBackOff" in messages


@pytest.mark.asyncio
async def test_an_injected_oom_kill_restarts_the_container(sim: KubeSim, core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p"))
    await running_pod(core, "p")
    sim.kubelet.inject(NS, "p", "OOMKilled")
    pod = await core.read_namespaced_pod("p", NS)
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)

    async def restarted() -> Any:
        pod = await core.read_namespaced_pod("p", NS)
        return pod if pod.status.container_statuses[0].restart_count == 1 else None

    pod = await eventually(restarted, what="restart")
    status = pod.status.container_statuses[0]
    assert status.state.running is not None and status.last_state.terminated.reason == "OOMKilled"


@pytest.mark.asyncio
async def test_a_crash_loop_is_reported_as_crash_loop_back_off(core: CoreV1Api) -> None:
    manifest = pod_manifest("p")
    manifest["metadata"]["annotations"] = {"kubesim.io/inject": "CrashLoopBackOff"}
    await core.create_namespaced_pod(NS, manifest)

    async def backing_off() -> Any:
        pod = await core.read_namespaced_pod("p", NS)
        statuses = pod.status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return pod if waiting and waiting.reason == "CrashLoopBackOff" else None

    pod = await eventually(backing_off, what="CrashLoopBackOff")
    status = pod.status.container_statuses[0]
    assert status.restart_count >= 1 and status.last_state.terminated.reason == "Error"
    assert "BackOff" in reasons(await events_for(core, "p"))


@pytest.mark.asyncio
async def test_graceful_deletion_goes_through_terminating(sim: KubeSim, core: CoreV1Api) -> None:
    sim.config.timings.termination_delay = 0.3
    await core.create_namespaced_pod(NS, pod_manifest("p"))
    await running_pod(core, "p")
    deleted = await core.delete_namespaced_pod("p", NS)
    assert (
        deleted.metadata.deletion_timestamp is not None
        and deleted.metadata.deletion_grace_period_seconds == 30
    )
    assert (await core.read_namespaced_pod("p", NS)).metadata.deletion_timestamp is not None

    async def gone() -> bool:
        return not (await core.list_namespaced_pod(NS)).items

    await eventually(gone, what="pod gone")
    assert "Killing" in reasons(await events_for(core, "p"))


@pytest.mark.asyncio
async def test_grace_period_zero_deletes_at_once(core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p"))
    await running_pod(core, "p")
    deleted = await core.delete_namespaced_pod("p", NS, grace_period_seconds=0)
    assert deleted.metadata.name == "p"
    assert (await core.list_namespaced_pod(NS)).items == []


@pytest.mark.asyncio
async def test_a_claim_in_use_stays_terminating_until_its_pod_is_gone(
    sim: KubeSim, core: CoreV1Api
) -> None:
    await core.create_namespaced_persistent_volume_claim(NS, pvc_manifest("w"))
    await core.create_namespaced_pod(NS, pod_manifest("p", claim="w"))
    pod = await running_pod(core, "p")
    claim = await core.read_namespaced_persistent_volume_claim("w", NS)
    await core.delete_namespaced_persistent_volume_claim("w", NS)
    await sim.wait_idle(0.1)
    terminating = await core.read_namespaced_persistent_volume_claim("w", NS)
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    await core.delete_namespaced_pod("p", NS)

    async def claim_gone() -> bool:
        return not (await core.list_namespaced_persistent_volume_claim(NS)).items

    await eventually(claim_gone, what="claim gone")
    assert pod.metadata.uid
    volumes = (await core.list_persistent_volume()).items
    assert claim.spec.volume_name not in [v.metadata.name for v in volumes]  # reclaim policy Delete


@pytest.mark.asyncio
async def test_deleting_a_namespace_removes_its_contents_then_itself(core: CoreV1Api) -> None:
    await core.create_namespace({"metadata": {"name": "scratch"}})
    await core.create_namespaced_pod("scratch", pod_manifest("p"))
    await running_pod(core, "p", "scratch")
    response = await core.delete_namespace("scratch", _preload_content=False)
    body = await response.json()
    assert body["kind"] == "Namespace" and body["status"]["phase"] == "Terminating"

    async def gone() -> bool:
        return "scratch" not in [n.metadata.name for n in (await core.list_namespace()).items]

    await eventually(gone, what="namespace gone")


@pytest.mark.asyncio
async def test_logs_support_tail_lines_and_follow(sim: KubeSim, core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p"))
    await running_pod(core, "p")
    for i in range(3):
        sim.logs.append((NS, "p", "session"), f"line {i}")
    text = await core.read_namespaced_pod_log("p", NS, tail_lines=2)
    assert text == "line 1\nline 2\n"
    response = await core.read_namespaced_pod_log("p", NS, follow=True, _preload_content=False)
    assert (
        (await response.content.readline())
        .decode()
        .startswith("kubesim: container session started")
    )
    for _ in range(3):
        await response.content.readline()
    sim.logs.append((NS, "p", "session"), "late line")
    assert await asyncio.wait_for(response.content.readline(), 5) == b"late line\n"
    response.release()


@pytest.mark.parametrize("kubesim_config", [KubeSimConfig(namespaces=[NS], event_limit=5)])
@pytest.mark.asyncio
async def test_event_retention_is_bounded(core: CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        await core.create_namespaced_pod(NS, pod_manifest(name))
    for name in ("a", "b", "c"):
        await running_pod(core, name)
    assert len((await core.list_namespaced_event(NS)).items) == 5


@pytest.mark.parametrize("kubesim_config", [KubeSimConfig(namespaces=[NS], run_processes=True)])
@pytest.mark.asyncio
async def test_process_mode_runs_the_container_command_on_the_pod_ip(
    sim: KubeSim, core: CoreV1Api
) -> None:
    manifest = pod_manifest("web")
    container = manifest["spec"]["containers"][0]
    container["command"] = [
        sys.executable,
        "-u",
        "-m",
        "http.server",
        "18765",
        "--bind",
        "$(MY_IP)",
    ]
    container["env"] = [{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    await core.create_namespaced_pod(NS, manifest)
    pod = await running_pod(core, "web")

    async def fetch() -> str | None:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://{pod.status.pod_ip}:18765/") as resp,
            ):
                return await resp.text()
        except aiohttp.ClientConnectionError:
            return None

    assert "Directory listing" in await eventually(
        fetch, what="the process to answer on the pod IP"
    )
    log = await core.read_namespaced_pod_log("web", NS)
    assert f"Serving HTTP on {pod.status.pod_ip} port 18765" in log
    await core.delete_namespaced_pod("web", NS, grace_period_seconds=1)
    await eventually(lambda: _no_pods(core), what="pod gone")


async def _no_pods(core: CoreV1Api) -> bool:
    return not (await core.list_namespaced_pod(NS)).items
