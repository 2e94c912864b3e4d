"""The real kubernetes_asyncio client against kubesim: CRUD, selectors, paging and errors."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client import CoreV1Api, NetworkingV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim

from .conftest import NS, pod_manifest, pvc_manifest


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


@pytest.mark.asyncio
async def test_create_get_and_list_return_server_populated_metadata(core: CoreV1Api) -> None:
    created = await core.create_namespaced_config_map(
        NS, {"metadata": {"name": "settings"}, "data": {"a": "1"}}
    )
    fetched = await core.read_namespaced_config_map("settings", NS)
    listed = await core.list_namespaced_config_map(NS)
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert fetched.metadata.resource_version == created.metadata.resource_version
    assert [c.metadata.name for c in listed.items] == ["settings"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)


@pytest.mark.asyncio
async def test_resource_versions_increase_globally_across_kinds(core: CoreV1Api) -> None:
    first = await core.create_namespaced_config_map(NS, {"metadata": {"name": "one"}})
    second = await core.create_namespaced_secret(
        NS, {"metadata": {"name": "two"}, "stringData": {"k": "v"}}
    )
    third = await core.patch_namespaced_config_map("one", NS, {"data": {"x": "y"}})
    rvs = [int(o.metadata.resource_version) for o in (first, second, third)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert second.data == {"k": "dg=="}


@pytest.mark.asyncio
async def test_generate_name_gets_a_random_suffix(core: CoreV1Api) -> None:
    created = await core.create_namespaced_config_map(NS, {"metadata": {"generateName": "cfg-"}})
    assert created.metadata.name.startswith("cfg-") and len(created.metadata.name) == 9


@pytest.mark.asyncio
async def test_creating_twice_is_409_already_exists(core: CoreV1Api) -> None:
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "dup"}})
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_config_map(NS, {"metadata": {"name": "dup"}})
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert (
        body["reason"] == "AlreadyExists" and body["message"] == 'configmaps "dup" already exists'
    )
    assert body["details"] == {"name": "dup", "kind": "configmaps"}


@pytest.mark.asyncio
async def test_missing_object_and_namespace_are_404_not_found(core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_pod("nope", NS)
    assert (
        caught.value.status == 404 and status_of(caught.value)["message"] == 'pods "nope" not found'
    )
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert status_of(caught.value)["message"] == 'namespaces "no-such-ns" not found'


@pytest.mark.asyncio
async def test_update_with_a_stale_resource_version_is_409_conflict(core: CoreV1Api) -> None:
    created = await core.create_namespaced_config_map(
        NS, {"metadata": {"name": "cm"}, "data": {"v": "1"}}
    )
    created.data = {"v": "2"}
    updated = await core.replace_namespaced_config_map("cm", NS, created)
    assert updated.data == {"v": "2"}
    created.data = {"v": "3"}  # still carries the first resourceVersion
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_config_map("cm", NS, created)
    body = status_of(caught.value)
    assert caught.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]


@pytest.mark.asyncio
async def test_merge_json_and_strategic_patches_apply_as_the_api_server_does(
    core: CoreV1Api,
) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p"))
    merged = await core.patch_namespaced_pod(
        "p",
        NS,
        {"metadata": {"labels": {"extra": "yes", "component": None}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"app": "raworc", "extra": "yes"}
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"note": "hi"}}]
    patched = await core.patch_namespaced_pod(
        "p", NS, ops, _content_type="application/json-patch+json"
    )
    assert patched.metadata.annotations == {"note": "hi"}
    strategic = {"spec": {"containers": [{"name": "session", "image": "python:3.12-slim"}]}}
    image = await core.patch_namespaced_pod(
        "p", NS, strategic, _content_type="application/strategic-merge-patch+json"
    )
    assert [c.image for c in image.spec.containers] == ["python:3.12-slim"]
    assert image.spec.containers[0].command == ["sleep", "infinity"]  # merged by name, not replaced


@pytest.mark.asyncio
async def test_invalid_pod_is_422_with_a_cause_per_problem(core: CoreV1Api) -> None:
    bad = pod_manifest("Bad_Name", cpu="lots")
    bad["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    bad["spec"]["restartPolicy"] = "Occasionally"
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod(NS, bad)
    body = status_of(caught.value)
    assert caught.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith(
        'Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name"'
    )
    fields = {c["field"]: c["reason"] for c in body["details"]["causes"]}
    assert fields == {
        "metadata.name": "FieldValueInvalid",
        "spec.containers[0].resources.requests[cpu]": "FieldValueInvalid",
        "spec.containers[0].imagePullPolicy": "FieldValueNotSupported",
        "spec.restartPolicy": "FieldValueNotSupported",
    }


@pytest.mark.asyncio
async def test_schema_violations_are_rejected_per_field_validation(
    core: CoreV1Api, api: object
) -> None:
    unknown = pod_manifest("p")
    unknown["spec"]["containers"][0]["bogus"] = 1
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod(NS, unknown, field_validation="Strict")
    assert caught.value.status == 400
    assert 'unknown field "spec.containers[0].bogus"' in status_of(caught.value)["message"]
    created = await core.create_namespaced_pod(NS, unknown)  # default Warn: dropped with a warning
    assert created.metadata.name == "p"
    missing = pod_manifest("q")
    del missing["spec"]["containers"][0]["name"]
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_pod(NS, missing)
    assert status_of(caught.value)["details"]["causes"][0]["field"] == "spec.containers[0].name"


@pytest.mark.asyncio
async def test_pvc_and_network_policy_values_are_checked(core: CoreV1Api, api: object) -> None:
    pvc = pvc_manifest("w", storage="-1Gi")
    pvc["spec"]["accessModes"] = ["ReadWriteSometimes"]
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_persistent_volume_claim(NS, pvc)
    fields = [c["field"] for c in status_of(caught.value)["details"]["causes"]]
    assert fields == ["spec.accessModes[0]", "spec.resources[storage]"]
    policy = {
        "metadata": {"name": "np", "labels": {"bad key!": "x"}},
        "spec": {"podSelector": {}, "policyTypes": ["Sideways"]},
    }
    with pytest.raises(ApiException) as caught:
        await NetworkingV1Api(api).create_namespaced_network_policy(NS, policy)
    fields = [c["field"] for c in status_of(caught.value)["details"]["causes"]]
    assert fields == ["metadata.labels", "spec.policyTypes[0]"]


@pytest.mark.asyncio
async def test_label_selectors_support_equality_and_set_based_requirements(core: CoreV1Api) -> None:
    for name, labels in (
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "db", "env": "dev"}),
        ("c", {"tier": "web"}),
    ):
        await core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})

    async def names(selector: str) -> list[str]:
        return [
            c.metadata.name
            for c in (await core.list_namespaced_config_map(NS, label_selector=selector)).items
        ]

    assert await names("tier=web") == ["a", "c"]
    assert await names("tier!=web") == ["b"]
    assert await names("env in (prod,dev)") == ["a", "b"]
    assert await names("env notin (prod)") == ["b", "c"]
    assert await names("env") == ["a", "b"]
    assert await names("!env") == ["c"]
    assert await names("tier=web,env") == ["a"]


@pytest.mark.asyncio
async def test_field_selectors_filter_and_unknown_fields_are_400(core: CoreV1Api) -> None:
    await core.create_namespaced_pod(NS, pod_manifest("p1"))
    await core.create_namespaced_pod("default", pod_manifest("p2"))
    everywhere = await core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={NS}")
    assert [p.metadata.name for p in everywhere.items] == ["p1"]
    by_name = await core.list_pod_for_all_namespaces(field_selector="metadata.name!=p1")
    assert [p.metadata.name for p in by_name.items] == ["p2"]
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert (
        caught.value.status == 400
        and "field label not supported" in status_of(caught.value)["message"]
    )


@pytest.mark.asyncio
async def test_limit_and_continue_page_through_a_list(core: CoreV1Api) -> None:
    for i in range(5):
        await core.create_namespaced_config_map(NS, {"metadata": {"name": f"cm-{i}"}})
    first = await core.list_namespaced_config_map(NS, limit=2)
    assert [c.metadata.name for c in first.items] == ["cm-0", "cm-1"]
    assert first.metadata.remaining_item_count == 3
    second = await core.list_namespaced_config_map(NS, limit=2, _continue=first.metadata._continue)
    third = await core.list_namespaced_config_map(NS, limit=2, _continue=second.metadata._continue)
    assert [c.metadata.name for c in second.items + third.items] == ["cm-2", "cm-3", "cm-4"]
    assert third.metadata._continue is None


@pytest.mark.asyncio
async def test_a_continue_token_older_than_compaction_is_410_expired(
    sim: KubeSim, core: CoreV1Api
) -> None:
    for i in range(3):
        await core.create_namespaced_config_map(NS, {"metadata": {"name": f"cm-{i}"}})
    first = await core.list_namespaced_config_map(NS, limit=1)
    sim.faults.compact()
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_config_map(NS, limit=1, _continue=first.metadata._continue)
    body = status_of(caught.value)
    assert caught.value.status == 410 and body["reason"] == "Expired"
    assert body["metadata"]["continue"]  # a fresh token to carry on inconsistently


@pytest.mark.asyncio
async def test_delete_preconditions_and_collection_deletes(core: CoreV1Api) -> None:
    cm = await core.create_namespaced_config_map(
        NS, {"metadata": {"name": "gone", "labels": {"x": "1"}}}
    )
    await core.create_namespaced_config_map(
        NS, {"metadata": {"name": "also", "labels": {"x": "1"}}}
    )
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_config_map(
            "gone", NS, body={"preconditions": {"uid": "other"}}
        )
    assert (
        caught.value.status == 409 and "Precondition failed" in status_of(caught.value)["message"]
    )
    result = await core.delete_namespaced_config_map(
        "gone", NS, body={"preconditions": {"uid": cm.metadata.uid}}
    )
    assert result.status == "Success" and result.details.uid == cm.metadata.uid
    await core.delete_collection_namespaced_config_map(NS, label_selector="x=1")
    assert (await core.list_namespaced_config_map(NS)).items == []


@pytest.mark.asyncio
async def test_owner_references_garbage_collect_dependents(sim: KubeSim, core: CoreV1Api) -> None:
    owner = await core.create_namespaced_config_map(NS, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    await core.create_namespaced_secret(NS, {"metadata": {"name": "dep", "ownerReferences": [ref]}})
    await core.delete_namespaced_config_map("owner", NS)
    await sim.wait_idle(0.05)
    assert (await core.list_namespaced_secret(NS)).items == []
