"""Process mode: deleting a pod kills its processes; its IP is not reused while they live."""

from __future__ import annotations

import time

import pytest
from kubernetes_asyncio.client import CoreV1Api

from kubesim import KubeSim, KubeSimConfig
from kubesim.control.ipam import SIZE, IpPool

from .conftest import NS, events_for, eventually, running_pod
from .kubelet_support import gone, kubectl, pids_running, process_config, shell_pod


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return process_config(tls=True)


@pytest.mark.asyncio
async def test_a_force_delete_kills_the_process_group_and_holds_the_ip_until_it_is_gone(
    sim: KubeSim, core: CoreV1Api
) -> None:
    # A shell that ignores SIGTERM, with a child: only SIGKILL of the group ends both.
    script = "trap '' TERM; sleep 3600.4242 & sleep 3600.4343; wait"
    await core.create_namespaced_pod(NS, shell_pod("stubborn", script, restart="Always"))
    pod = await running_pod(core, "stubborn")
    old_ip = pod.status.pod_ip

    async def both_running() -> bool:
        return bool(pids_running("3600.4242") and pids_running("3600.4343"))

    await eventually(both_running, what="the pod's processes")
    await kubectl(sim, "delete", "pod", "stubborn", "-n", NS, "--force", "--grace-period=0")
    assert await gone(core, "stubborn")
    started = time.monotonic()

    async def killed() -> bool:
        return not pids_running("3600.4242") and not pids_running("3600.4343")

    await eventually(killed, timeout=3.0, what="the processes killed")
    assert time.monotonic() - started < 2.0  # at once, not after a grace period
    assert "Killing" in [e.reason for e in await events_for(core, "stubborn")]

    async def released() -> bool:
        return not sim.kubelet.ips.held(old_ip)

    await eventually(released, what="the IP released")
    await core.create_namespaced_pod(NS, shell_pod("next", "sleep 30", restart="Always"))
    assert (await running_pod(core, "next")).status.pod_ip != old_ip


@pytest.mark.asyncio
async def test_the_ip_of_a_force_deleted_pod_stays_held_while_its_process_lives(
    sim: KubeSim, core: CoreV1Api
) -> None:
    await core.create_namespaced_pod(NS, shell_pod("p", "sleep 3600.5151", restart="Always"))
    ip = (await running_pod(core, "p")).status.pod_ip
    await eventually(lambda: _true(pids_running("3600.5151")), what="the process")
    await core.delete_namespaced_pod("p", NS, grace_period_seconds=0)

    # At every look: once the IP is free again, no process of the pod may be left.
    async def released() -> bool:
        return not sim.kubelet.ips.held(ip)

    await eventually(released, what="the IP released")
    assert pids_running("3600.5151") == []


async def _true(value: object) -> bool:
    return bool(value)


@pytest.mark.asyncio
async def test_a_graceful_delete_sends_sigterm_and_the_pod_goes_once_the_process_exits(
    sim: KubeSim, core: CoreV1Api
) -> None:
    script = "trap 'echo got TERM; exit 0' TERM; sleep 3600.6161 & wait"
    await core.create_namespaced_pod(NS, shell_pod("polite", script, restart="Always"))
    await running_pod(core, "polite")
    await eventually(lambda: _true(pids_running("3600.6161")), what="the process")
    started = time.monotonic()
    deleted = await core.delete_namespaced_pod("polite", NS)  # grace 5 s from the pod
    assert deleted.metadata.deletion_grace_period_seconds == 5
    await eventually(lambda: gone(core, "polite"), timeout=4.0, what="pod gone")
    assert time.monotonic() - started < 4.0  # the process exited on SIGTERM, no SIGKILL wait
    await eventually(lambda: _true(not pids_running("3600.6161")), what="the child killed too")


def test_the_pool_never_hands_out_a_held_address_even_after_wrapping() -> None:
    pool = IpPool()
    first = pool.take()
    assert first == "127.10.0.1"
    others = [pool.take() for _ in range(SIZE - 1)]
    assert first not in others and len(set(others)) == SIZE - 1
    with pytest.raises(RuntimeError, match="every pod IP"):
        pool.take()
    pool.give(others[100])
    assert pool.take() == others[100]
    pool.give(first)
    assert pool.take() == first and pool.held(first)


@pytest.mark.asyncio
async def test_a_force_delete_during_a_long_grace_period_kills_at_once(
    sim: KubeSim, core: CoreV1Api
) -> None:
    script = "trap '' TERM; sleep 3600.7171; wait"
    await core.create_namespaced_pod(NS, shell_pod("slow", script, restart="Always"))
    await running_pod(core, "slow")
    await eventually(lambda: _true(pids_running("3600.7171")), what="the process")
    await core.delete_namespaced_pod("slow", NS, grace_period_seconds=60)
    assert (await core.read_namespaced_pod("slow", NS)).metadata.deletion_timestamp is not None
    await kubectl(sim, "delete", "pod", "slow", "-n", NS, "--force", "--grace-period=0")
    await eventually(
        lambda: _true(not pids_running("3600.7171")), timeout=3.0, what="the process killed"
    )
