"""PodDisruptionBudgets are refused as the API server's ``ValidatePodDisruptionBudgetSpec`` does.

k8s.io/kubernetes ``pkg/apis/policy/validation/validation.go``: at most one of ``minAvailable``
and ``maxUnavailable``; each checked by ``ValidatePositiveIntOrPercent`` and
``IsNotMoreThan100Percent`` (``pkg/apis/apps/validation``). Bad values are ``field.Invalid``
errors, printed by apimachinery's ``ErrorBody``: integers plainly, an ``intstr.IntOrString``
and the whole spec with Go's ``%#v``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, PolicyV1Api

from kubesim import KubeSim

from . import test_kubectl
from .conftest import NS
from .test_api_leases import failure, get_json
from .test_kubectl import Kubectl

cluster = test_kubectl.cluster
kubectl = test_kubectl.kubectl

PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)
BOTH_SET = "minAvailable and maxUnavailable cannot be both set"
# ``%#v`` of the internal spec; the pointers' addresses are the Go heap's, so any will do.
SPEC_BOTH_SET = re.compile(
    r"Invalid value: policy\.PodDisruptionBudgetSpec\{"
    r"MinAvailable:\(\*intstr\.IntOrString\)\(0x[0-9a-f]+\), "
    r"Selector:\(\*v1\.LabelSelector\)\(0x[0-9a-f]+\), "
    r"MaxUnavailable:\(\*intstr\.IntOrString\)\(0x[0-9a-f]+\), "
    r"UnhealthyPodEvictionPolicy:\(\*policy\.UnhealthyPodEvictionPolicyType\)\(nil\)\}: "
    + re.escape(BOTH_SET)
)


@pytest.fixture
def policy(api: ApiClient) -> PolicyV1Api:
    return PolicyV1Api(api)


def budget(name: str, **spec: Any) -> dict[str, Any]:
    """A budget as the JSON body the client sends (a dict, so malformed values go through)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "raworc"}}, **spec},
    }


def create(policy: PolicyV1Api, body: dict[str, Any]) -> Any:
    """The client's create, sent a raw JSON body (the client passes dicts through as they are)."""
    return policy.create_namespaced_pod_disruption_budget(NS, body)  # type: ignore[arg-type]


def invalid(field: str, value: str, message: str) -> dict[str, str]:
    return {
        "reason": "FieldValueInvalid",
        "field": field,
        "message": f"Invalid value: {value}: {message}",
    }


def int_or_string(value: str) -> str:
    return f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:"{value}"}}'


async def refused(policy: PolicyV1Api, body: dict[str, Any]) -> dict[str, Any]:
    """Create ``body``; it must fail with 422 Invalid. Returns the Status."""
    status, refusal = await failure(create(policy, body))
    assert (status, refusal["reason"], refusal["code"]) == (422, "Invalid", 422)
    details = refusal["details"]
    assert (details["name"], details["group"], details["kind"]) == (
        body["metadata"]["name"],
        "policy",
        "PodDisruptionBudget",
    )
    return refusal


@pytest.mark.asyncio
async def test_a_budget_setting_both_min_available_and_max_unavailable_is_invalid_at_spec(
    policy: PolicyV1Api,
) -> None:
    refusal = await refused(policy, budget("both", minAvailable=1, maxUnavailable=1))
    [cause] = refusal["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "spec")
    assert SPEC_BOTH_SET.fullmatch(cause["message"]), cause["message"]
    summary = refusal["message"].partition(" is invalid: ")[2]
    assert summary == f"spec: {cause['message']}"


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["minAvailable", "maxUnavailable"])
async def test_a_negative_integer_is_invalid(policy: PolicyV1Api, key: str) -> None:
    refusal = await refused(policy, budget("negative", **{key: -1}))
    assert refusal["details"]["causes"] == [
        invalid(f"spec.{key}", "-1", "must be greater than or equal to 0")
    ]
    assert refusal["message"].partition(" is invalid: ")[2] == (
        f"spec.{key}: Invalid value: -1: must be greater than or equal to 0"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["minAvailable", "maxUnavailable"])
async def test_a_percentage_over_100_is_invalid(policy: PolicyV1Api, key: str) -> None:
    refusal = await refused(policy, budget("over", **{key: "101%"}))
    assert refusal["details"]["causes"] == [
        invalid(f"spec.{key}", int_or_string("101%"), "must not be greater than 100%")
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["-1%", "1.5%", "half", "1", "50 %"])
async def test_a_string_that_is_not_digits_then_percent_is_invalid(
    policy: PolicyV1Api, value: str
) -> None:
    # "1" is a string, not an integer: an IntOrString string must be a percentage.
    refusal = await refused(policy, budget("malformed", minAvailable=value))
    assert refusal["details"]["causes"] == [
        invalid("spec.minAvailable", int_or_string(value), PERCENT_MSG)
    ]


@pytest.mark.asyncio
async def test_every_problem_is_reported_together_in_the_servers_order(
    policy: PolicyV1Api,
) -> None:
    refusal = await refused(policy, budget("all", minAvailable=-2, maxUnavailable="200%"))
    causes = refusal["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec", "spec.minAvailable", "spec.maxUnavailable"]
    assert SPEC_BOTH_SET.fullmatch(causes[0]["message"])
    assert causes[1:] == [
        invalid("spec.minAvailable", "-2", "must be greater than or equal to 0"),
        invalid("spec.maxUnavailable", int_or_string("200%"), "must not be greater than 100%"),
    ]
    summary = refusal["message"].partition(" is invalid: ")[2]
    assert summary.startswith("[spec: Invalid value: policy.PodDisruptionBudgetSpec{")
    assert summary.endswith(
        "spec.minAvailable: Invalid value: -2: must be greater than or equal to 0, "
        'spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"200%"}: '
        "must not be greater than 100%]"
    )


@pytest.mark.asyncio
async def test_an_unknown_unhealthy_pod_eviction_policy_is_not_supported(
    policy: PolicyV1Api,
) -> None:
    refusal = await refused(
        policy, budget("policy", maxUnavailable=1, unhealthyPodEvictionPolicy="Sometimes")
    )
    assert refusal["details"]["causes"] == [
        {
            "reason": "FieldValueNotSupported",
            "field": "spec.unhealthyPodEvictionPolicy",
            "message": 'Unsupported value: "Sometimes": supported values: '
            '"AlwaysAllow", "IfHealthyBudget"',
        }
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("minAvailable", 0),
        ("minAvailable", "0%"),
        ("minAvailable", "100%"),
        ("maxUnavailable", 0),
        ("maxUnavailable", "100%"),
        ("maxUnavailable", 3),
    ],
)
async def test_the_boundaries_are_accepted(policy: PolicyV1Api, key: str, value: Any) -> None:
    created = await create(policy, budget("edge", **{key: value}))
    attribute = {"minAvailable": "min_available", "maxUnavailable": "max_unavailable"}[key]
    assert getattr(created.spec, attribute) == value


@pytest.mark.asyncio
async def test_a_null_bound_counts_as_unset_and_is_not_stored(
    sim: KubeSim, policy: PolicyV1Api
) -> None:
    body = budget("nulls", minAvailable=None, maxUnavailable="25%")
    await create(policy, body)
    raw = await get_json(sim, f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/nulls")
    spec = raw["spec"]
    assert spec == {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "raworc"}}}


@pytest.mark.asyncio
async def test_an_update_to_an_invalid_spec_is_refused_and_the_budget_is_unchanged(
    policy: PolicyV1Api,
) -> None:
    await create(policy, budget("kept", minAvailable=1))
    status, refusal = await failure(
        policy.patch_namespaced_pod_disruption_budget(
            "kept", NS, {"spec": {"maxUnavailable": "10%"}}
        )
    )
    assert (status, [c["field"] for c in refusal["details"]["causes"]]) == (422, ["spec"])
    current = await policy.read_namespaced_pod_disruption_budget("kept", NS)
    current.spec.min_available = "110%"
    status, refusal = await failure(
        policy.replace_namespaced_pod_disruption_budget("kept", NS, current)
    )
    assert (status, refusal["details"]["causes"]) == (
        422,
        [invalid("spec.minAvailable", int_or_string("110%"), "must not be greater than 100%")],
    )
    read = await policy.read_namespaced_pod_disruption_budget("kept", NS)
    assert (read.spec.min_available, read.spec.max_unavailable, read.metadata.generation) == (
        1,
        None,
        1,
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("value", [True, 1.5, {"percent": 10}])
async def test_a_value_that_is_neither_integer_nor_string_cannot_be_decoded(
    policy: PolicyV1Api, value: Any
) -> None:
    status, refusal = await failure(create(policy, budget("typed", minAvailable=value)))
    assert (status, refusal["reason"]) == (400, "BadRequest")
    assert refusal["message"].startswith(
        'PodDisruptionBudget in version "v1" cannot be handled as a PodDisruptionBudget: '
    )


def manifest(name: str, spec: str) -> str:
    return f"""
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
  namespace: {NS}
spec:
  selector:
    matchLabels:
      app: raworc
{spec}
"""


def test_kubectl_apply_prints_the_servers_refusal_of_both_bounds(kubectl: Kubectl) -> None:
    done = kubectl(
        "apply",
        "-f",
        "-",
        stdin=manifest("both", "  minAvailable: 1\n  maxUnavailable: 1"),
        ok=False,
    )
    assert done.returncode == 1
    prefix = 'The PodDisruptionBudget "both" is invalid: spec: '
    assert done.stderr.startswith(prefix), done.stderr
    assert SPEC_BOTH_SET.fullmatch(done.stderr.removeprefix(prefix).rstrip("\n")), done.stderr
    missing = kubectl("get", "pdb", "both", "-n", NS, ok=False)
    assert 'poddisruptionbudgets.policy "both" not found' in missing.stderr


def test_kubectl_apply_lists_each_bad_bound_on_its_own_line(kubectl: Kubectl) -> None:
    bad = manifest("bounds", '  maxUnavailable: "150%"')
    done = kubectl("apply", "-f", "-", stdin=bad, ok=False)
    assert (done.returncode, done.stderr) == (
        1,
        'The PodDisruptionBudget "bounds" is invalid: spec.maxUnavailable: Invalid value: '
        'intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%\n',
    )
    worse = manifest("worse", "  minAvailable: -1\n  unhealthyPodEvictionPolicy: Never")
    done = kubectl("apply", "-f", "-", stdin=worse, ok=False)
    assert done.stderr.splitlines() == [
        'The PodDisruptionBudget "worse" is invalid: ',
        "* spec.minAvailable: Invalid value: -1: must be greater than or equal to 0",
        '* spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: '
        '"AlwaysAllow", "IfHealthyBudget"',
    ]


def test_kubectl_apply_refuses_a_malformed_percentage(kubectl: Kubectl) -> None:
    done = kubectl("apply", "-f", "-", stdin=manifest("typo", "  minAvailable: 50%%"), ok=False)
    assert (done.returncode, done.stderr) == (
        1,
        'The PodDisruptionBudget "typo" is invalid: spec.minAvailable: Invalid value: '
        f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:"50%%"}}: {PERCENT_MSG}\n',
    )
    fixed = kubectl("apply", "-f", "-", stdin=manifest("typo", "  minAvailable: 50%"))
    assert fixed.stdout == "poddisruptionbudget.policy/typo created\n"
