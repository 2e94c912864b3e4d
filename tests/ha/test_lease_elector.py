"""Two LeaseElectors on kubesim's ``coordination.k8s.io/v1`` Leases: one leads, the other waits,
takes over once the holder is silent for the lease duration, or at once after a release."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from pathlib import Path

import pytest

from kubesim import KubeSim
from kubesim.kubeconfig import write_kubeconfig
from raworc_spawner.backends.kubernetes.client import KubeClient
from raworc_spawner.backends.kubernetes.lease import LeaseElector
from raworc_spawner.leadership import Leadership

from .conftest import NAMESPACE

LEASE_NAME = "raworc-leader-test"
RETRY = 0.1


def elector(
    client: KubeClient, identity: str, lease_seconds: float = 1, *, timeout: float = RETRY * 0.9
) -> LeaseElector:
    return LeaseElector(
        client, NAMESPACE, LEASE_NAME, identity, lease_seconds, attempt_timeout=timeout
    )


async def lease_spec(client: KubeClient) -> dict[str, object]:
    return dict((await client.get("leases", NAMESPACE, LEASE_NAME))["spec"])


async def poll_until_acquired(candidate: LeaseElector, *, within: float) -> float:
    """Try every RETRY seconds; the monotonic time of the first success."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await candidate.try_acquire_or_renew():
            return time.monotonic()
        await asyncio.sleep(RETRY)
    raise AssertionError(f"{candidate.identity} did not acquire the lease within {within} s")


@pytest.mark.asyncio
async def test_the_first_candidate_creates_the_lease_and_the_second_is_refused(
    kube_client: KubeClient,
) -> None:
    a, b = elector(kube_client, "replica-a"), elector(kube_client, "replica-b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.try_acquire_or_renew()  # a renewal
    spec = await lease_spec(kube_client)
    assert spec["holderIdentity"] == "replica-a"
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0
    assert str(spec["renewTime"]).endswith("Z") and len(str(spec["renewTime"])) == 27


@pytest.mark.asyncio
async def test_of_two_candidates_racing_for_a_new_lease_exactly_one_wins(
    kube_client: KubeClient,
) -> None:
    # A generous bound: on a loaded machine four racing attempts may take a while; the race,
    # not the speed, is under test.
    candidates = [elector(kube_client, f"replica-{i}", timeout=10) for i in range(4)]
    results = await asyncio.gather(*(c.try_acquire_or_renew() for c in candidates))
    assert sorted(results) == [False, False, False, True]
    winner = candidates[results.index(True)].identity
    assert (await lease_spec(kube_client))["holderIdentity"] == winner


@pytest.mark.asyncio
async def test_a_silent_holder_is_replaced_within_the_lease_duration_plus_two_retry_periods(
    kube_client: KubeClient,
) -> None:
    a, b = elector(kube_client, "replica-a"), elector(kube_client, "replica-b")
    assert await a.try_acquire_or_renew()
    acquired_first = (await lease_spec(kube_client))["acquireTime"]
    last_renewal = time.monotonic()
    assert await a.try_acquire_or_renew()  # a's last renewal; then it goes silent
    took_over = await poll_until_acquired(b, within=5)
    waited = took_over - last_renewal
    # b judges expiry from when *it* saw the last renewal: lease + up to two retry periods.
    assert 1.0 <= waited < 1.0 + 2 * RETRY + 0.3
    spec = await lease_spec(kube_client)
    assert spec["holderIdentity"] == "replica-b"
    assert spec["leaseTransitions"] == 1
    assert spec["acquireTime"] != acquired_first
    assert not await a.try_acquire_or_renew()  # the old holder learns it lost


@pytest.mark.asyncio
async def test_a_released_lease_is_taken_at_once_by_the_next_candidate(
    kube_client: KubeClient,
) -> None:
    a, b = elector(kube_client, "replica-a", 30), elector(kube_client, "replica-b", 30)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    spec = await lease_spec(kube_client)
    assert spec["holderIdentity"] in ("", None)
    assert spec["leaseDurationSeconds"] == 30
    assert await b.try_acquire_or_renew()
    assert (await lease_spec(kube_client))["holderIdentity"] == "replica-b"


@pytest.mark.asyncio
async def test_releasing_a_lease_held_by_another_leaves_it_alone(kube_client: KubeClient) -> None:
    a, b = elector(kube_client, "replica-a"), elector(kube_client, "replica-b")
    assert await a.try_acquire_or_renew()
    await b.release()
    assert (await lease_spec(kube_client))["holderIdentity"] == "replica-a"


@pytest.mark.asyncio
async def test_a_closed_leader_hands_its_lease_to_the_other_replica_within_a_retry_period(
    kube_client: KubeClient,
) -> None:
    log = logging.getLogger("tests.ha.lease")
    elected: list[str] = []

    def replica(identity: str) -> Leadership:
        async def on_elected() -> None:
            elected.append(identity)

        async def on_deposed() -> None:
            elected.append(f"-{identity}")

        return Leadership(
            elector(kube_client, identity, 5),
            on_elected=on_elected,
            on_deposed=on_deposed,
            lease_seconds=5,
            renew_deadline_seconds=1,
            retry_seconds=RETRY,
            log=log,
        )

    first, second = replica("replica-a"), replica("replica-b")
    first.start()
    try:
        await wait_until(lambda: first.is_leader, 5)
        second.start()
        await asyncio.sleep(RETRY * 5)
        assert not second.is_leader
        closed = time.monotonic()
        await first.close()
        await wait_until(lambda: second.is_leader, 5)
        assert time.monotonic() - closed < 2 * RETRY + 0.3  # not the 5 s lease
        assert elected == ["replica-a", "-replica-a", "replica-b"]
    finally:
        await first.close()
        await second.close()


async def wait_until(condition: object, seconds: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_kubectl_get_lease_shows_the_holder(
    kube_client: KubeClient, kubesim: KubeSim, tmp_path: Path
) -> None:
    assert await elector(kube_client, "replica-a").try_acquire_or_renew()
    config = write_kubeconfig(
        tmp_path / "kubeconfig", kubesim.url, kubesim.token, ca_pem=kubesim.ca_pem
    )
    result = await asyncio.to_thread(
        subprocess.run,
        ["kubectl", "--kubeconfig", str(config), "get", "lease", "-n", NAMESPACE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "HOLDER", "AGE"]
    assert row.split()[:2] == [LEASE_NAME, "replica-a"]
