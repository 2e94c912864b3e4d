"""RBAC in kubesim: ServiceAccount tokens from the TokenRequest API, authorized by Roles,
ClusterRoles and their bindings, with access reviews answering from the same evaluation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from kubernetes_asyncio.client import (
    ApiClient,
    AuthorizationV1Api,
    CoreV1Api,
    RbacAuthorizationV1Api,
)
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim, Rule

from .conftest import NS, pod_manifest

GROUP = "rbac.authorization.k8s.io"
SA = "raworc-controller"
SA_USER = f"system:serviceaccount:{NS}:{SA}"


def role(name: str, *rules: dict[str, Any], cluster: bool = False) -> dict:
    kind = "ClusterRole" if cluster else "Role"
    metadata: dict[str, Any] = {"name": name}
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": metadata, "rules": list(rules)}


def rule(verbs: list[str], resources: list[str], group: str = "", **extra: Any) -> dict:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs, **extra}


def binding(
    name: str, role_kind: str, role_name: str, subjects: list[dict], *, cluster: bool = False
) -> dict:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRoleBinding" if cluster else "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role_name},
        "subjects": subjects,
    }


def service_account(name: str = SA, namespace: str = NS) -> dict:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


@pytest_asyncio.fixture
async def rbac(api: ApiClient) -> RbacAuthorizationV1Api:
    return RbacAuthorizationV1Api(api)


@pytest_asyncio.fixture
async def sa_token(sim: KubeSim, core: CoreV1Api) -> str:
    """A token for the raworc-controller ServiceAccount, from the TokenRequest API."""
    await core.create_namespaced_service_account(NS, {"metadata": {"name": SA}})
    answer = await core.create_namespaced_service_account_token(
        SA, NS, {"spec": {"expirationSeconds": 3600}}
    )
    return str(answer.status.token)


@pytest_asyncio.fixture
async def as_sa(sim: KubeSim, sa_token: str) -> AsyncIterator[ApiClient]:
    async with ApiClient(sim.client_configuration(sa_token)) as client:
        yield client


async def can_i(
    client: ApiClient, verb: str, resource: str, namespace: str = NS, **more: str
) -> Any:
    attrs = {"verb": verb, "resource": resource, "namespace": namespace, **more}
    review = {"spec": {"resourceAttributes": attrs}}
    return (await AuthorizationV1Api(client).create_self_subject_access_review(review)).status


async def status_of(call: Any) -> int:
    try:
        await call
    except ApiException as e:
        return int(e.status)
    return 200


@pytest.mark.asyncio
async def test_a_token_request_returns_a_token_that_authenticates_as_the_service_account(
    as_sa: ApiClient,
) -> None:
    with pytest.raises(ApiException) as caught:
        await CoreV1Api(as_sa).list_namespaced_pod(NS)
    body = json.loads(caught.value.body)
    assert caught.value.status == 403
    assert body["message"] == (
        f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" '
        f'in the namespace "{NS}"'
    )


@pytest.mark.asyncio
async def test_a_role_bound_to_the_service_account_grants_its_verbs_in_its_namespace_only(
    rbac: RbacAuthorizationV1Api, as_sa: ApiClient
) -> None:
    await rbac.create_namespaced_role(NS, role("pods", rule(["get", "list", "create"], ["pods"])))
    await rbac.create_namespaced_role_binding(
        NS, binding("pods", "Role", "pods", [service_account()])
    )
    core = CoreV1Api(as_sa)
    assert (await core.list_namespaced_pod(NS)).items == []
    await core.create_namespaced_pod(NS, pod_manifest("p1"))
    assert await status_of(core.delete_namespaced_pod("p1", NS)) == 403
    assert await status_of(core.list_namespaced_pod("default")) == 403
    assert await status_of(core.list_namespaced_persistent_volume_claim(NS)) == 403


@pytest.mark.asyncio
async def test_a_role_without_watch_denies_watches_but_allows_lists(
    sim: KubeSim, rbac: RbacAuthorizationV1Api, sa_token: str
) -> None:
    await rbac.create_namespaced_role(NS, role("r", rule(["list"], ["pods"])))
    await rbac.create_namespaced_role_binding(NS, binding("r", "Role", "r", [service_account()]))
    headers = {"Authorization": f"Bearer {sa_token}"}
    url = f"{sim.url}/api/v1/namespaces/{NS}/pods"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(url) as listed:
            assert listed.status == 200
        async with session.get(url, params={"watch": "true", "timeoutSeconds": "1"}) as watched:
            assert watched.status == 403
            assert "cannot watch resource" in (await watched.json())["message"]


@pytest.mark.asyncio
async def test_subresources_need_their_own_rule_or_a_star_slash_rule(
    rbac: RbacAuthorizationV1Api, as_sa: ApiClient
) -> None:
    await rbac.create_namespaced_role(NS, role("pods", rule(["get"], ["pods"])))
    await rbac.create_namespaced_role_binding(
        NS, binding("pods", "Role", "pods", [service_account()])
    )
    assert not (await can_i(as_sa, "get", "pods", subresource="log")).allowed
    await rbac.create_namespaced_role(NS, role("logs", rule(["get"], ["*/log"])))
    await rbac.create_namespaced_role_binding(
        NS, binding("logs", "Role", "logs", [service_account()])
    )
    assert (await can_i(as_sa, "get", "pods", subresource="log")).allowed
    assert not (await can_i(as_sa, "get", "pods", subresource="status")).allowed


@pytest.mark.asyncio
async def test_resource_names_limit_a_rule_to_the_named_objects(
    rbac: RbacAuthorizationV1Api, as_sa: ApiClient
) -> None:
    await rbac.create_namespaced_role(
        NS, role("one", rule(["get", "delete"], ["pods"], resourceNames=["session-a"]))
    )
    await rbac.create_namespaced_role_binding(
        NS, binding("one", "Role", "one", [service_account()])
    )
    assert (await can_i(as_sa, "delete", "pods", name="session-a")).allowed
    assert not (await can_i(as_sa, "delete", "pods", name="session-b")).allowed
    assert not (await can_i(as_sa, "get", "pods")).allowed  # a list-like request has no name


@pytest.mark.asyncio
async def test_a_cluster_role_counts_in_a_role_bindings_namespace_or_everywhere_when_bound_so(
    rbac: RbacAuthorizationV1Api, as_sa: ApiClient
) -> None:
    reader = role("reader", rule(["list"], ["pods", "nodes"]), cluster=True)
    await rbac.create_cluster_role(reader)
    await rbac.create_namespaced_role_binding(
        NS, binding("reader", "ClusterRole", "reader", [service_account()])
    )
    core = CoreV1Api(as_sa)
    await core.list_namespaced_pod(NS)
    assert await status_of(core.list_namespaced_pod("default")) == 403
    assert await status_of(core.list_node()) == 403
    await rbac.create_cluster_role_binding(
        binding("reader", "ClusterRole", "reader", [service_account()], cluster=True)
    )
    await core.list_namespaced_pod("default")
    await core.list_node()


@pytest.mark.asyncio
async def test_groups_of_service_accounts_can_be_bound(
    rbac: RbacAuthorizationV1Api, as_sa: ApiClient
) -> None:
    await rbac.create_namespaced_role(NS, role("r", rule(["list"], ["configmaps"])))
    group = {"kind": "Group", "name": f"system:serviceaccounts:{NS}", "apiGroup": GROUP}
    await rbac.create_namespaced_role_binding(NS, binding("r", "Role", "r", [group]))
    await CoreV1Api(as_sa).list_namespaced_config_map(NS)


@pytest.mark.asyncio
async def test_any_authenticated_user_may_review_its_access_and_the_reason_names_the_binding(
    rbac: RbacAuthorizationV1Api, as_sa: ApiClient
) -> None:
    denied = await can_i(as_sa, "create", "pods")
    assert denied.allowed is False
    await rbac.create_namespaced_role(NS, role("maker", rule(["create"], ["pods"])))
    await rbac.create_namespaced_role_binding(
        NS, binding("makers", "Role", "maker", [service_account()])
    )
    allowed = await can_i(as_sa, "create", "pods")
    assert allowed.allowed is True
    assert allowed.reason == (
        f'RBAC: allowed by RoleBinding "makers/{NS}" of Role "maker" to ServiceAccount "{SA}/{NS}"'
    )


@pytest.mark.asyncio
async def test_an_aggregated_cluster_role_carries_the_rules_of_the_roles_it_selects(
    rbac: RbacAuthorizationV1Api, as_sa: ApiClient
) -> None:
    part = role("part", rule(["list"], ["secrets"]), cluster=True)
    part["metadata"]["labels"] = {"example.com/aggregate-to-ops": "true"}
    await rbac.create_cluster_role(part)
    ops = role("ops", cluster=True)
    ops["aggregationRule"] = {
        "clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-ops": "true"}}]
    }
    await rbac.create_cluster_role(ops)
    await rbac.create_namespaced_role_binding(
        NS, binding("ops", "ClusterRole", "ops", [service_account()])
    )
    assert (await can_i(as_sa, "list", "secrets")).allowed


@pytest.mark.asyncio
async def test_a_token_stops_working_when_its_service_account_is_deleted(
    core: CoreV1Api, as_sa: ApiClient
) -> None:
    assert (await can_i(as_sa, "create", "pods")).allowed is False  # authenticated
    await core.delete_namespaced_service_account(SA, NS)
    assert await status_of(can_i(as_sa, "create", "pods")) == 401


@pytest.mark.asyncio
async def test_token_requests_for_unknown_accounts_or_too_short_lives_are_refused(
    core: CoreV1Api, sa_token: str
) -> None:
    missing = core.create_namespaced_service_account_token("nobody", NS, {"spec": {}})
    assert await status_of(missing) == 404
    short = core.create_namespaced_service_account_token(
        SA, NS, {"spec": {"expirationSeconds": 60}}
    )
    assert await status_of(short) == 422


@pytest.mark.asyncio
async def test_a_bindings_role_reference_cannot_change(rbac: RbacAuthorizationV1Api) -> None:
    await rbac.create_namespaced_role_binding(NS, binding("b", "Role", "a", [service_account()]))
    patch = {"roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "other"}}
    assert await status_of(rbac.patch_namespaced_role_binding("b", NS, patch)) == 422
    bad_kind = binding("c", "Role", "a", [service_account()], cluster=True)
    assert await status_of(rbac.create_cluster_role_binding(bad_kind)) == 422


@pytest.mark.asyncio
async def test_token_policies_and_rbac_both_grant_to_a_registered_token(
    sim: KubeSim, rbac: RbacAuthorizationV1Api
) -> None:
    sim.add_token("static", "alice", [Rule(verbs=["list"], resources=["pods"], namespaces=[NS])])
    user = {"kind": "User", "name": "alice", "apiGroup": GROUP}
    await rbac.create_namespaced_role(NS, role("cm", rule(["list"], ["configmaps"])))
    await rbac.create_namespaced_role_binding(NS, binding("cm", "Role", "cm", [user]))
    async with ApiClient(sim.client_configuration("static")) as client:
        core = CoreV1Api(client)
        await core.list_namespaced_pod(NS)
        await core.list_namespaced_config_map(NS)
        assert await status_of(core.list_namespaced_secret(NS)) == 403


@pytest.mark.asyncio
async def test_the_admin_token_may_do_everything_and_the_bootstrap_policy_exists(
    rbac: RbacAuthorizationV1Api,
) -> None:
    names = {r.metadata.name for r in (await rbac.list_cluster_role_binding()).items}
    assert {"cluster-admin", "system:basic-user"} <= names
    await rbac.delete_cluster_role_binding("system:basic-user")
    await rbac.list_namespaced_role(NS)
