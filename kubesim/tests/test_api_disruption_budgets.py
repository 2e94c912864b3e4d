"""``policy/v1`` PodDisruptionBudgets: served, discovered, applied and printed by kubectl.

Columns as the API server's printers define them (``pkg/printers/internalversion``,
``printPodDisruptionBudget``): NAME, MIN AVAILABLE, MAX UNAVAILABLE (``N/A`` when unset),
ALLOWED DISRUPTIONS (``status.disruptionsAllowed``) and AGE.
"""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client import (
    ApiClient,
    PolicyV1Api,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodDisruptionBudget,
    V1PodDisruptionBudgetSpec,
)
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim

from . import test_kubectl
from .conftest import NS
from .test_api_leases import get_json
from .test_kubectl import Kubectl

cluster = test_kubectl.cluster
kubectl = test_kubectl.kubectl
SELECTOR = V1LabelSelector(match_labels={"app": "raworc", "component": "server"})


@pytest.fixture
def policy(api: ApiClient) -> PolicyV1Api:
    return PolicyV1Api(api)


def budget(name: str, **spec: object) -> V1PodDisruptionBudget:
    return V1PodDisruptionBudget(
        metadata=V1ObjectMeta(name=name),
        spec=V1PodDisruptionBudgetSpec(selector=SELECTOR, **spec),  # type: ignore[arg-type]
    )


@pytest.mark.asyncio
async def test_a_budget_is_created_listed_read_and_deleted_through_the_policy_api(
    policy: PolicyV1Api,
) -> None:
    created = await policy.create_namespaced_pod_disruption_budget(
        NS, budget("server", min_available=1)
    )
    assert created.metadata.generation == 1
    read = await policy.read_namespaced_pod_disruption_budget("server", NS)
    assert read.spec.min_available == 1
    assert read.spec.selector.match_labels == {"app": "raworc", "component": "server"}
    listed = await policy.list_namespaced_pod_disruption_budget(NS)
    assert [item.metadata.name for item in listed.items] == ["server"]
    await policy.delete_namespaced_pod_disruption_budget("server", NS)
    with pytest.raises(ApiException) as raised:
        await policy.read_namespaced_pod_disruption_budget("server", NS)
    assert raised.value.status == 404
    assert json.loads(raised.value.body or "{}")["message"] == (
        'poddisruptionbudgets.policy "server" not found'
    )


@pytest.mark.asyncio
async def test_discovery_lists_poddisruptionbudgets_in_the_policy_group_with_short_name_pdb(
    sim: KubeSim,
) -> None:
    listed = await get_json(sim, "/apis/policy/v1")
    assert listed["groupVersion"] == "policy/v1"
    names = {r["name"]: r for r in listed["resources"]}
    assert sorted(names) == ["poddisruptionbudgets", "poddisruptionbudgets/status"]
    main = names["poddisruptionbudgets"]
    assert (main["kind"], main["namespaced"], main.get("shortNames")) == (
        "PodDisruptionBudget",
        True,
        ["pdb"],
    )
    groups = await get_json(sim, "/apis")
    assert "policy" in [g["name"] for g in groups["groups"]]


PDB_YAML = f"""
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: raworc-server
  namespace: {NS}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: raworc
      component: server
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: sessions
  namespace: {NS}
spec:
  maxUnavailable: 25%
  selector:
    matchLabels:
      app: raworc
"""


def test_kubectl_applies_budgets_and_get_pdb_prints_the_printer_columns(kubectl: Kubectl) -> None:
    applied = kubectl("apply", "-f", "-", stdin=PDB_YAML).stdout.splitlines()
    assert applied == [
        "poddisruptionbudget.policy/raworc-server created",
        "poddisruptionbudget.policy/sessions created",
    ]
    table = kubectl("get", "pdb", "-n", NS).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    rows = {line.split()[0]: line.split()[1:4] for line in table[1:]}
    assert rows == {"raworc-server": ["1", "N/A", "0"], "sessions": ["N/A", "25%", "0"]}
    # The selector's patch strategy is ``replace`` (k8s.io/api policy/v1 types.go), so the
    # patch kubectl computes is never empty and a re-apply says "configured", as it does
    # against a real API server; nothing changes, so the generation stays 1.
    again = kubectl("apply", "-f", "-", stdin=PDB_YAML).stdout.splitlines()
    assert again == [
        "poddisruptionbudget.policy/raworc-server configured",
        "poddisruptionbudget.policy/sessions configured",
    ]
    read = json.loads(kubectl("get", "pdb", "raworc-server", "-n", NS, "-o", "json").stdout)
    assert read["metadata"]["generation"] == 1
