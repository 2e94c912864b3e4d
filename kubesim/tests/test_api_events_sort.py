"""``kubectl get events --sort-by=…`` prints the events, in order.

With ``--sort-by`` kubectl asks for a Table with ``includeObject=Object`` and sorts the rows by
the field of each row's object; a Table whose rows carry only metadata printed nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from kubesim import KubeSim

from . import test_kubectl
from .test_kubectl import Kubectl

cluster = test_kubectl.cluster
kubectl = test_kubectl.kubectl
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def event(name: str, namespace: str, message: str, last: str | None = None) -> str:
    """An Event about pod ``web``, as JSON kubectl can create."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": namespace},
        "reason": "Tested",
        "message": message,
        "type": "Normal",
    }
    if last:
        body.update(firstTimestamp=last, lastTimestamp=last)
    return json.dumps(body)


def messages(table: str) -> list[str]:
    """The MESSAGE column of ``kubectl get events`` (the last one, one word per test event)."""
    lines = table.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    return [line.split()[-1] for line in lines[1:]]


def test_get_events_sorted_by_last_timestamp_lists_them_oldest_first(kubectl: Kubectl) -> None:
    ns = "events-by-last"
    kubectl("create", "namespace", ns)
    for name, message, last in (
        ("a-event", "third", "2024-03-03T00:00:00Z"),
        ("b-event", "first", "2024-03-01T00:00:00Z"),
        ("c-event", "second", "2024-03-02T00:00:00Z"),
    ):
        kubectl("create", "-f", "-", stdin=event(name, ns, message, last))
    assert messages(kubectl("get", "events", "-n", ns).stdout) == ["third", "first", "second"]
    out = kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp").stdout
    assert messages(out) == ["first", "second", "third"]


def test_get_events_sorted_by_creation_timestamp_lists_them_as_created(kubectl: Kubectl) -> None:
    ns = "events-by-creation"
    kubectl("create", "namespace", ns)
    kubectl("create", "-f", "-", stdin=event("b-event", ns, "older"))
    time.sleep(1.1)  # creationTimestamp has whole seconds
    kubectl("create", "-f", "-", stdin=event("a-event", ns, "newer"))
    assert messages(kubectl("get", "events", "-n", ns).stdout) == ["newer", "older"]
    out = kubectl("get", "events", "-n", ns, "--sort-by=.metadata.creationTimestamp").stdout
    assert messages(out) == ["older", "newer"]


async def get_table(sim: KubeSim, path: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {sim.token}", "Accept": TABLE}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{sim.url}{path}") as resp,
    ):
        return resp.status, await resp.json(content_type=None)


@pytest.mark.asyncio
async def test_table_rows_carry_what_include_object_asks_for(sim: KubeSim) -> None:
    path = "/api/v1/namespaces/default"
    _, default = await get_table(sim, path)
    assert default["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert set(default["rows"][0]["object"]) == {"kind", "apiVersion", "metadata"}
    _, whole = await get_table(sim, f"{path}?includeObject=Object")
    assert whole["rows"][0]["object"]["kind"] == "Namespace"
    assert whole["rows"][0]["object"]["status"] == {"phase": "Active"}
    _, none = await get_table(sim, "/api/v1/namespaces?includeObject=None")
    assert [row["object"] for row in none["rows"]] == [None, None, None]
    status, bad = await get_table(sim, f"{path}?includeObject=Everything")
    assert status == 400
    assert bad["message"] == (
        'includeObject must be one of "None", "Metadata", "Object", not \'Everything\''
    )
