"""The pytest plugin's fixtures, discovery documents and the metrics API through real clients."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi, VersionApi

from kubesim import KubeSim

from .conftest import NS, pod_manifest, running_pod


@pytest.mark.asyncio
async def test_the_plugin_fixtures_give_a_running_server_and_a_client(
    kubesim: KubeSim, kube_api: ApiClient
) -> None:
    namespaces = await CoreV1Api(kube_api).list_namespace()
    assert NS in [n.metadata.name for n in namespaces.items]
    version = await VersionApi(kube_api).get_code()
    assert (version.major, version.minor, version.git_version) == ("1", "32", "v1.32.0")


async def get_json(sim: KubeSim, path: str, accept: str = "application/json") -> tuple[str, dict]:
    headers = {"Authorization": f"Bearer {sim.token}", "Accept": accept}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{sim.url}{path}") as resp,
    ):
        assert resp.status == 200
        return resp.headers["Content-Type"], await resp.json(content_type=None)


@pytest.mark.asyncio
async def test_legacy_discovery_lists_groups_and_resources(sim: KubeSim) -> None:
    _, groups = await get_json(sim, "/apis")
    names = [g["name"] for g in groups["groups"]]
    assert names == [
        "networking.k8s.io",
        "storage.k8s.io",
        "apps",
        "batch",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "authorization.k8s.io",
        "metrics.k8s.io",
    ]
    _, core = await get_json(sim, "/api/v1")
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert (
        pods["namespaced"]
        and pods["kind"] == "Pod"
        and "watch" in pods["verbs"]
        and pods["shortNames"] == ["po"]
    )
    assert {"pods/log", "pods/status", "persistentvolumeclaims/status"} <= {
        r["name"] for r in core["resources"]
    }


@pytest.mark.asyncio
async def test_aggregated_discovery_is_served_when_asked_for(sim: KubeSim) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    content_type, doc = await get_json(sim, "/apis", accept)
    assert content_type == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert doc["kind"] == "APIGroupDiscoveryList"
    storage = next(i for i in doc["items"] if i["metadata"]["name"] == "storage.k8s.io")
    assert storage["versions"][0]["resources"][0]["scope"] == "Cluster"


@pytest.mark.asyncio
async def test_openapi_v3_advertises_server_side_field_validation(sim: KubeSim) -> None:
    _, root = await get_json(sim, "/openapi/v3")
    _, doc = await get_json(sim, root["paths"]["api/v1"]["serverRelativeURL"])
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


@pytest.mark.asyncio
async def test_metrics_api_reports_usage_of_running_pods(
    sim: KubeSim, api: ApiClient, core: CoreV1Api
) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p"))
    await running_pod(core, "p")
    sim.usage.set_usage(NS, "p", cpu="250m", memory="64Mi")
    metrics = CustomObjectsApi(api)
    pods = await metrics.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", NS, "pods")
    (item,) = pods["items"]
    assert item["containers"] == [
        {"name": "session", "usage": {"cpu": "250000000n", "memory": "65536Ki"}}
    ]
    nodes = await metrics.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    assert nodes["items"][0]["metadata"]["name"] == "kubesim-node-1"
