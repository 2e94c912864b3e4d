"""``coordination.k8s.io/v1`` Leases: optimistic concurrency, validation, tables, discovery, RBAC.

Leader election keeps a Lease and renews it with updates that carry the resourceVersion it
read; of two updates from the same version only the first may win. Driven through
kubernetes_asyncio's ``CoordinationV1Api`` and through the real kubectl.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import (
    ApiClient,
    CoordinationV1Api,
    CoreV1Api,
    RbacAuthorizationV1Api,
    RbacV1Subject,
    V1Lease,
    V1LeaseSpec,
    V1ObjectMeta,
    V1PolicyRule,
    V1Role,
    V1RoleBinding,
    V1RoleRef,
    V1ServiceAccount,
)
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim

from . import test_kubectl
from .conftest import NS
from .test_kubectl import Kubectl

cluster = test_kubectl.cluster
kubectl = test_kubectl.kubectl
GROUP = "coordination.k8s.io"
RENEWED = dt.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
CONFLICT = (
    'Operation cannot be fulfilled on leases.coordination.k8s.io "leader": the object has been '
    "modified; please apply your changes to the latest version and try again"
)


def lease(name: str = "leader", holder: str = "replica-a", **spec: Any) -> V1Lease:
    fields: dict[str, Any] = {
        "holder_identity": holder,
        "lease_duration_seconds": 15,
        "acquire_time": RENEWED,
        "renew_time": RENEWED,
        "lease_transitions": 0,
    }
    return V1Lease(metadata=V1ObjectMeta(name=name), spec=V1LeaseSpec(**{**fields, **spec}))


@pytest.fixture
def leases(api: ApiClient) -> CoordinationV1Api:
    return CoordinationV1Api(api)


async def failure(call: Any) -> tuple[int, dict[str, Any]]:
    """The status and Status body of a call that must fail."""
    with pytest.raises(ApiException) as raised:
        await call
    return raised.value.status, json.loads(raised.value.body or "{}")


async def get_json(sim: KubeSim, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{sim.url}{path}") as resp,
    ):
        assert resp.status == 200
        return dict(await resp.json())


@pytest.mark.asyncio
async def test_a_lease_is_created_and_read_back_and_a_second_create_is_409(
    leases: CoordinationV1Api,
) -> None:
    created = await leases.create_namespaced_lease(NS, lease())
    assert created.metadata.resource_version
    read = await leases.read_namespaced_lease("leader", NS)
    assert (read.spec.holder_identity, read.spec.lease_duration_seconds) == ("replica-a", 15)
    assert read.spec.renew_time == RENEWED
    listed = await leases.list_namespaced_lease(NS)
    assert [item.metadata.name for item in listed.items] == ["leader"]
    status, body = await failure(leases.create_namespaced_lease(NS, lease()))
    assert (status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'leases.coordination.k8s.io "leader" already exists'
    assert body["details"] == {"name": "leader", "group": GROUP, "kind": "leases"}


@pytest.mark.asyncio
async def test_of_two_updates_from_the_same_version_the_second_is_a_409_conflict(
    leases: CoordinationV1Api,
) -> None:
    await leases.create_namespaced_lease(NS, lease())
    seen = await leases.read_namespaced_lease("leader", NS)
    seen.spec.holder_identity = "replica-b"
    won = await leases.replace_namespaced_lease("leader", NS, seen)
    assert int(won.metadata.resource_version) > int(seen.metadata.resource_version)
    seen.spec.holder_identity = "replica-c"
    status, body = await failure(leases.replace_namespaced_lease("leader", NS, seen))
    assert (status, body["reason"], body["message"]) == (409, "Conflict", CONFLICT)
    assert body["details"] == {"name": "leader", "group": GROUP, "kind": "leases"}
    current = await leases.read_namespaced_lease("leader", NS)
    assert current.spec.holder_identity == "replica-b"
    assert current.metadata.resource_version == won.metadata.resource_version


@pytest.mark.asyncio
async def test_a_lease_is_patched_and_deleted(leases: CoordinationV1Api) -> None:
    await leases.create_namespaced_lease(NS, lease())
    patched = await leases.patch_namespaced_lease(
        "leader", NS, {"spec": {"holderIdentity": "replica-b", "leaseTransitions": 1}}
    )
    assert (patched.spec.holder_identity, patched.spec.lease_transitions) == ("replica-b", 1)
    await leases.delete_namespaced_lease("leader", NS)
    status, body = await failure(leases.read_namespaced_lease("leader", NS))
    assert (status, body["message"]) == (404, 'leases.coordination.k8s.io "leader" not found')


@pytest.mark.asyncio
async def test_a_watch_from_a_version_sees_the_lease_added_then_renewed(
    sim: KubeSim, leases: CoordinationV1Api
) -> None:
    start = (await leases.list_namespaced_lease(NS)).metadata.resource_version
    created = await leases.create_namespaced_lease(NS, lease())
    created.spec.renew_time = RENEWED + dt.timedelta(seconds=5)
    await leases.replace_namespaced_lease("leader", NS, created)
    path = f"/apis/{GROUP}/v1/namespaces/{NS}/leases?watch=true&resourceVersion={start}"
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{sim.url}{path}&timeoutSeconds=1") as resp,
    ):
        events = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert [(e["type"], e["object"]["spec"]["renewTime"]) for e in events] == [
        ("ADDED", "2024-05-01T10:00:00.123456Z"),
        ("MODIFIED", "2024-05-01T10:00:05.123456Z"),
    ]


@pytest.mark.asyncio
async def test_times_are_stored_as_micro_times_in_utc(
    sim: KubeSim, leases: CoordinationV1Api
) -> None:
    await leases.create_namespaced_lease(NS, lease())
    raw = await get_json(sim, f"/apis/{GROUP}/v1/namespaces/{NS}/leases/leader")
    assert raw["spec"]["acquireTime"] == "2024-05-01T10:00:00.123456Z"
    assert raw["spec"]["renewTime"] == "2024-05-01T10:00:00.123456Z"


@pytest.mark.asyncio
async def test_invalid_leases_are_refused_as_the_api_server_refuses_them(
    leases: CoordinationV1Api,
) -> None:
    status, body = await failure(
        leases.create_namespaced_lease(NS, lease("bad", lease_transitions=-1))
    )
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'Lease "bad" is invalid: spec.leaseTransitions: Invalid value: -1: '
        "must be greater than or equal to 0"
    )
    zero = lease("zero")
    zero.spec.lease_duration_seconds = 0
    status, body = await failure(leases.create_namespaced_lease(NS, zero))
    assert status == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0: must be greater than 0",
            "field": "spec.leaseDurationSeconds",
        }
    ]
    wrong_type = {"metadata": {"name": "typed"}, "spec": {"leaseDurationSeconds": "long"}}
    status, body = await failure(
        leases.create_namespaced_lease(NS, wrong_type)  # type: ignore[arg-type]  # malformed
    )
    assert status == 400
    assert body["message"].startswith('Lease in version "v1" cannot be handled as a Lease')


@pytest.mark.asyncio
async def test_discovery_lists_leases_in_the_coordination_group(sim: KubeSim) -> None:
    listed = await get_json(sim, f"/apis/{GROUP}/v1")
    assert listed["groupVersion"] == f"{GROUP}/v1"
    assert listed["resources"] == [
        {
            "name": "leases",
            "singularName": "lease",
            "namespaced": True,
            "kind": "Lease",
            "verbs": [
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
        }
    ]
    groups = await get_json(sim, "/apis")
    assert GROUP in [g["name"] for g in groups["groups"]]


@pytest.mark.asyncio
async def test_rbac_grants_leases_to_a_service_account_verb_by_verb(
    sim: KubeSim, api: ApiClient, core: CoreV1Api, leases: CoordinationV1Api
) -> None:
    await core.create_namespaced_service_account(
        NS, V1ServiceAccount(metadata=V1ObjectMeta(name="elector"))
    )
    rbac = RbacAuthorizationV1Api(api)
    rule = V1PolicyRule(api_groups=[GROUP], resources=["leases"], verbs=["get", "update"])
    await rbac.create_namespaced_role(
        NS, V1Role(metadata=V1ObjectMeta(name="elector"), rules=[rule])
    )
    await rbac.create_namespaced_role_binding(
        NS,
        V1RoleBinding(
            metadata=V1ObjectMeta(name="elector"),
            role_ref=V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="elector"),
            subjects=[RbacV1Subject(kind="ServiceAccount", name="elector", namespace=NS)],
        ),
    )
    await leases.create_namespaced_lease(NS, lease())
    config = sim.client_configuration()
    config.api_key = {"BearerToken": f"Bearer {sim.issue_token(NS, 'elector')}"}
    async with ApiClient(config) as as_elector:
        mine = CoordinationV1Api(as_elector)
        held = await mine.read_namespaced_lease("leader", NS)
        held.spec.holder_identity = "elector"
        assert (await mine.replace_namespaced_lease("leader", NS, held)).spec.holder_identity == (
            "elector"
        )
        status, body = await failure(mine.delete_namespaced_lease("leader", NS))
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"].endswith(
        f'"leader" is forbidden: User "system:serviceaccount:{NS}:elector" cannot delete '
        f'resource "leases" in API group "{GROUP}" in the namespace "{NS}"'
    )


# -- kubectl -------------------------------------------------------------------------------------
LEASE_YAML = f"""
apiVersion: {GROUP}/v1
kind: Lease
metadata:
  name: raworc-leader
  namespace: {NS}
spec:
  holderIdentity: replica-a
  leaseDurationSeconds: 15
"""


def test_kubectl_get_lease_prints_holder_and_age(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=LEASE_YAML)
    kubectl(
        "create",
        "-f",
        "-",
        stdin=LEASE_YAML.replace("raworc-leader", "vacant").replace(
            "  holderIdentity: replica-a\n", ""
        ),
    )
    table = kubectl("get", "lease", "-n", NS).stdout.splitlines()
    assert table[0].split() == ["NAME", "HOLDER", "AGE"]
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert rows["raworc-leader"][0] == "replica-a"
    assert rows["vacant"][0].endswith("s")  # no holder: the cell is empty, AGE comes next
    assert len(rows["vacant"]) == 1


def test_kubectl_replace_from_a_stale_copy_is_a_conflict(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("apply", "-f", "-", stdin=LEASE_YAML.replace("raworc-leader", "stale"))
    seen = json.loads(kubectl("get", "lease", "stale", "-n", NS, "-o", "json").stdout)
    for holder in ("replica-b", "replica-c"):
        seen["spec"]["holderIdentity"] = holder
        (tmp_path / f"{holder}.json").write_text(json.dumps(seen))
    first = kubectl("replace", "-f", str(tmp_path / "replica-b.json"))
    assert first.stdout.strip() == f"lease.{GROUP}/stale replaced"
    second = kubectl("replace", "-f", str(tmp_path / "replica-c.json"), ok=False)
    assert second.returncode == 1
    assert (
        "Error from server (Conflict): error when replacing "
        f'"{tmp_path / "replica-c.json"}": ' + CONFLICT.replace('"leader"', '"stale"')
    ) in second.stderr
    table = kubectl("get", "lease", "stale", "-n", NS).stdout.splitlines()
    assert table[1].split()[:2] == ["stale", "replica-b"]
