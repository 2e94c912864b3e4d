"""Bearer-token policy, access reviews, injected faults and request counters."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient, AuthorizationV1Api, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim, Rule

from .conftest import NS

SESSIONS_ONLY = [
    Rule(
        verbs=["get", "list", "watch", "create", "delete"],
        resources=["pods", "pods/log"],
        namespaces=[NS],
    )
]


def review(namespace: str, verb: str, resource: str) -> dict:
    return {
        "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource}}
    }


@pytest.mark.asyncio
async def test_requests_without_a_known_token_are_401(sim: KubeSim) -> None:
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with session.get(f"{sim.url}/api/v1/namespaces", headers=headers) as resp:
                assert resp.status == 401
                assert (await resp.json())["reason"] == "Unauthorized"


@pytest.mark.asyncio
async def test_a_token_may_do_only_what_its_policy_allows(sim: KubeSim) -> None:
    sim.add_token("session-token", "system:serviceaccount:raworc:spawner", SESSIONS_ONLY)
    async with ApiClient(sim.client_configuration("session-token")) as client:
        core = CoreV1Api(client)
        assert (await core.list_namespaced_pod(NS)).items == []
        with pytest.raises(ApiException) as caught:
            await core.list_namespaced_pod("default")
        body = json.loads(caught.value.body)
        assert caught.value.status == 403 and body["reason"] == "Forbidden"
        assert body["message"] == (
            'pods is forbidden: User "system:serviceaccount:raworc:spawner" cannot list '
            'resource "pods" in API group "" in the namespace "default"'
        )
        with pytest.raises(ApiException) as caught:
            await core.list_node()
        assert "at the cluster scope" in json.loads(caught.value.body)["message"]


@pytest.mark.asyncio
async def test_self_subject_access_review_answers_from_the_same_policy(sim: KubeSim) -> None:
    sim.add_token("session-token", "spawner", SESSIONS_ONLY)
    async with ApiClient(sim.client_configuration("session-token")) as client:
        auth = AuthorizationV1Api(client)
        allowed = await auth.create_self_subject_access_review(review(NS, "create", "pods"))
        denied = await auth.create_self_subject_access_review(review(NS, "create", "secrets"))
        elsewhere = await auth.create_self_subject_access_review(
            review("default", "create", "pods")
        )
    assert allowed.status.allowed is True
    assert denied.status.allowed is False and elsewhere.status.allowed is False


@pytest.mark.asyncio
async def test_injected_errors_reach_the_client_as_status_objects(
    sim: KubeSim, core: CoreV1Api
) -> None:
    sim.faults.fail("create", resource="pods", code=503, count=1)
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod(
            NS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
        )
    assert (
        caught.value.status == 503
        and json.loads(caught.value.body)["reason"] == "ServiceUnavailable"
    )
    await core.create_namespaced_pod(
        NS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    )
    assert sim.counters.total(verb="create", resource="pods", code=503) == 1
    assert sim.counters.total(verb="create", resource="pods", code=201) == 1


@pytest.mark.asyncio
async def test_429_carries_retry_after(sim: KubeSim, core: CoreV1Api) -> None:
    sim.faults.fail("list", code=429, retry_after=3)
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_pod(NS)
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "3"
    assert json.loads(caught.value.body)["details"]["retryAfterSeconds"] == 3
    sim.faults.clear()
    await core.list_namespaced_pod(NS)


@pytest.mark.asyncio
async def test_error_rates_fail_about_that_share_of_requests(sim: KubeSim, core: CoreV1Api) -> None:
    sim.faults.set_error_rate("get", 0.5, code=500)
    failures = 0
    for _ in range(200):
        try:
            await core.read_namespace(NS)
        except ApiException as e:
            assert e.status == 500
            failures += 1
    assert 70 < failures < 130
    assert sim.counters.total(verb="get", resource="namespaces", code=500) == failures


@pytest.mark.asyncio
async def test_latency_is_added_to_every_request(sim: KubeSim, core: CoreV1Api) -> None:
    sim.faults.set_latency(0.1, jitter=0.05)
    started = time.monotonic()
    await core.read_namespace(NS)
    assert 0.1 <= time.monotonic() - started < 0.5


@pytest.mark.asyncio
async def test_counters_are_readable_and_resettable_over_http(
    sim: KubeSim, core: CoreV1Api
) -> None:
    await core.list_namespaced_pod(NS)
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{sim.url}/_kubesim/counters") as resp:
            snapshot = await resp.json()
        assert {"verb": "list", "resource": "pods", "code": 200, "count": 1} in snapshot["requests"]
        async with session.delete(f"{sim.url}/_kubesim/counters") as resp:
            assert resp.status == 200
        assert sim.counters.total() == 0
        async with session.post(
            f"{sim.url}/_kubesim/faults", json={"errors": [{"verb": "get", "code": 500}]}
        ) as resp:
            assert resp.status == 200
    with pytest.raises(ApiException):
        await core.read_namespace(NS)


@pytest.mark.asyncio
async def test_control_endpoints_need_the_admin_token(sim: KubeSim) -> None:
    sim.add_token("reader", "reader", [Rule(verbs=["get"], resources=["*"])])
    headers = {"Authorization": "Bearer reader"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{sim.url}/_kubesim/counters") as resp,
    ):
        assert resp.status == 403
