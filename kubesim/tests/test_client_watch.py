"""Watches through the real kubernetes_asyncio client: resume, bookmarks, timeouts and 410."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim

from .conftest import NS


async def collect(core: CoreV1Api, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    """The first ``count`` events of a watch on config maps in NS."""
    events = []
    async with watch.Watch() as w:
        async for event in w.stream(core.list_namespaced_config_map, NS, **kwargs):
            events.append(
                {
                    "type": event["type"],
                    "name": event["raw_object"]["metadata"].get("name"),
                    "rv": event["raw_object"]["metadata"].get("resourceVersion"),
                }
            )
            if len(events) == count:
                break
    return events


async def raw_watch(
    sim: KubeSim, query: str, *, lines: int, path: str = f"/api/v1/namespaces/{NS}/configmaps"
) -> list[dict[str, Any]]:
    """Read ``lines`` newline-delimited events straight off the wire."""
    headers = {"Authorization": f"Bearer {sim.token}"}
    out = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.url}{path}?{query}", headers=headers) as resp,
    ):
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/json")
        while len(out) < lines:
            line = await resp.content.readline()
            if not line:
                break
            out.append(json.loads(line))
    return out


@pytest.mark.asyncio
async def test_watch_without_resource_version_starts_with_the_current_state(
    core: CoreV1Api,
) -> None:
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "before"}})
    task = asyncio.ensure_future(collect(core, 2))
    await asyncio.sleep(0.05)
    # "later" sorts after "before": should the watch start late (a loaded machine) and list
    # both as its current state, the order is the same.
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "later"}})
    events = await asyncio.wait_for(task, 5)
    assert [(e["type"], e["name"]) for e in events] == [("ADDED", "before"), ("ADDED", "later")]


@pytest.mark.asyncio
async def test_watch_resumes_from_resource_version_without_replay(core: CoreV1Api) -> None:
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "old"}})
    listed = await core.list_namespaced_config_map(NS)
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "new"}})
    await core.patch_namespaced_config_map("new", NS, {"data": {"k": "v"}})
    await core.delete_namespaced_config_map("old", NS)
    events = await asyncio.wait_for(
        collect(core, 3, resource_version=listed.metadata.resource_version), 5
    )
    assert [(e["type"], e["name"]) for e in events] == [
        ("ADDED", "new"),
        ("MODIFIED", "new"),
        ("DELETED", "old"),
    ]
    rvs = [int(e["rv"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(listed.metadata.resource_version)


@pytest.mark.asyncio
async def test_objects_leaving_a_label_selector_are_seen_as_deleted(core: CoreV1Api) -> None:
    listed = await core.list_namespaced_config_map(NS)
    await core.create_namespaced_config_map(
        NS, {"metadata": {"name": "cm", "labels": {"app": "raworc"}}}
    )
    await core.patch_namespaced_config_map("cm", NS, {"metadata": {"labels": {"app": "other"}}})
    await core.patch_namespaced_config_map("cm", NS, {"metadata": {"labels": {"app": "raworc"}}})
    events = await asyncio.wait_for(
        collect(
            core, 3, resource_version=listed.metadata.resource_version, label_selector="app=raworc"
        ),
        5,
    )
    assert [e["type"] for e in events] == ["ADDED", "DELETED", "ADDED"]


@pytest.mark.asyncio
async def test_watch_ends_after_timeout_seconds(sim: KubeSim, core: CoreV1Api) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await raw_watch(
        sim, "watch=true&timeoutSeconds=1&resourceVersion=" + str(sim.store.rv), lines=5
    )
    assert events == [] and 0.9 < loop.time() - started < 3


@pytest.mark.asyncio
async def test_bookmarks_carry_the_current_resource_version(sim: KubeSim, core: CoreV1Api) -> None:
    sim.config.bookmark_interval = 0.1
    rv = sim.store.rv
    events = await raw_watch(sim, f"watch=1&allowWatchBookmarks=true&resourceVersion={rv}", lines=1)
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(rv)},
    }


@pytest.mark.asyncio
async def test_send_initial_events_ends_with_an_annotated_bookmark(
    sim: KubeSim, core: CoreV1Api
) -> None:
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}})
    query = (
        "watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan"
    )
    events = await raw_watch(sim, query, lines=2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


@pytest.mark.asyncio
async def test_watch_from_a_compacted_version_gets_a_410_error_event(
    sim: KubeSim, core: CoreV1Api
) -> None:
    listed = await core.list_namespaced_config_map(NS)
    sim.faults.compact()
    query = f"watch=true&resourceVersion={listed.metadata.resource_version}"
    events = await raw_watch(sim, query, lines=2)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith(
        f"too old resource version: {listed.metadata.resource_version} ("
    )
    with pytest.raises(ApiException) as caught:
        await collect(core, 1, resource_version=listed.metadata.resource_version, timeout_seconds=2)
    assert caught.value.status == 410


@pytest.mark.asyncio
async def test_client_recovers_from_410_by_relisting(sim: KubeSim, core: CoreV1Api) -> None:
    """The informer pattern: on 410 re-list, then watch from the fresh list's version."""
    listed = await core.list_namespaced_config_map(NS)
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "missed"}})
    sim.faults.compact()
    try:
        await collect(core, 1, resource_version=listed.metadata.resource_version, timeout_seconds=2)
    except ApiException as e:
        assert e.status == 410
        listed = await core.list_namespaced_config_map(NS)
    assert [c.metadata.name for c in listed.items] == ["missed"]
    task = asyncio.ensure_future(
        collect(core, 1, resource_version=listed.metadata.resource_version)
    )
    await asyncio.sleep(0.05)
    await core.create_namespaced_config_map(NS, {"metadata": {"name": "next"}})
    assert [e["name"] for e in await asyncio.wait_for(task, 5)] == ["next"]


@pytest.mark.asyncio
async def test_a_simulated_restart_ends_every_open_watch(sim: KubeSim, core: CoreV1Api) -> None:
    rv = sim.store.rv
    watches = [
        asyncio.ensure_future(raw_watch(sim, f"watch=true&resourceVersion={rv}", lines=1))
        for _ in range(3)
    ]
    await asyncio.sleep(0.1)
    assert sim.hub.open_count == 3 and sim.counters.watches_open == 3
    assert sim.faults.restart() == 3
    assert await asyncio.wait_for(asyncio.gather(*watches), 5) == [[], [], []]
    assert sim.counters.total(verb="watch") == 3


@pytest.mark.asyncio
async def test_watches_are_dropped_every_n_seconds_when_asked(
    sim: KubeSim, core: CoreV1Api
) -> None:
    sim.faults.set_drop_watches_every(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await raw_watch(sim, f"watch=true&resourceVersion={sim.store.rv}", lines=1) == []
    assert loop.time() - started < 1.5
