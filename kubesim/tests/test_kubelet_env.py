"""``$(VAR)`` expansion and the container environment, as the kubelet builds them.

The expected values follow the rules of Kubernetes' ``third_party/forked/golang/expansion``
(the kubelet's expansion package) and the kubelet's ``makeEnvironmentVariables``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api

from kubesim import KubeSimConfig
from kubesim.control.expansion import expand, lookup_in
from kubesim.control.podenv import ContainerConfigError, EnvBuilder
from kubesim.store import Store

from .conftest import NS
from .kubelet_support import finished, log_of, process_config, shell_pod

CONTEXT = {"A": "a", "B": "b", "REF": "$(A)", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)", "a"),
        ("$(A)$(A)", "aa"),
        ("x-$(B)-y", "x-b-y"),
        ("$(A)/$(B)", "a/b"),
        ("$$(A)", "$(A)"),  # an escaped reference is not expanded
        ("$$(A)-$(B)", "$(A)-b"),
        ("cost: $$5", "cost: $5"),
        ("$(NOPE)", "$(NOPE)"),  # unresolvable: left as written
        ("$(REF)", "$(A)"),  # values are not expanded again
        ("<$(EMPTY)>", "<>"),
        ("$A ${A} $? $1", "$A ${A} $? $1"),  # only $( ) is syntax
        ("tail $", "tail $"),
        ("open $(A", "open $(A"),
        ("$(", "$("),
        ("$(A$(B))", "$(A$(B))"),  # the name runs to the first ")": "A$(B" is unknown
        ("$$$$(A)", "$$(A)"),
        ("$$$(A)", "$a"),
        ("$$$(NOPE)", "$$(NOPE)"),
        ("back\\$(A)slash", "back\\aslash"),
        ("(A) $)", "(A) $)"),
    ],
)
def test_expansion_follows_the_kubelet_rules(text: str, expanded: str) -> None:
    assert expand(text, CONTEXT) == expanded


def test_a_mapping_over_several_contexts_takes_the_first_that_defines_a_name() -> None:
    mapping = lookup_in({"A": "first"}, {"A": "second", "B": "b"})
    assert expand("$(A) $(B) $(C)", mapping) == "first b $(C)"


def store_with(*objects: tuple[str, dict[str, object]]) -> Store:
    store = Store(history_size=10)
    for resource, obj in objects:
        store.put(resource, obj, added=True)
    return store


POD = {
    "metadata": {"name": "p", "namespace": NS, "uid": "u-1", "labels": {"app": "x"}},
    "spec": {"nodeName": "n1", "serviceAccountName": "default", "containers": []},
    "status": {"podIP": "127.10.0.9", "hostIP": "127.0.1.1"},
}


def test_env_entries_see_earlier_ones_and_env_from_but_value_from_is_not_expanded() -> None:
    store = store_with(
        ("configmaps", {"metadata": {"name": "cm", "namespace": NS}, "data": {"K": "$(A)"}}),
        (
            "secrets",
            {
                "metadata": {"name": "s", "namespace": NS},
                "data": {"pw": base64.b64encode(b"hunter2").decode()},
            },
        ),
    )
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "LATE", "value": "$(A)"},  # A is defined after it: stays as written
            {"name": "A", "value": "hello"},
            {"name": "B", "value": "$(A)-x"},
            {"name": "FROM_CM", "value": "$(CM_K)"},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NONE"},
        ],
    }
    env = EnvBuilder(store, POD).build(container)
    assert env == {
        "CM_K": "$(A)",
        "LATE": "$(A)",
        "A": "hello",
        "B": "hello-x",
        "FROM_CM": "$(A)",
        "PW": "hunter2",
        "IP": "127.10.0.9",
        "APP": "x",
        "NONE": "",
    }


def test_a_missing_optional_reference_defines_nothing_and_a_required_one_fails() -> None:
    optional = {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}}
    env = EnvBuilder(store_with(), POD).build(
        {"name": "c", "env": [{"name": "O", "valueFrom": optional}]}
    )
    assert env == {}
    required = {"secretKeyRef": {"name": "gone", "key": "k"}}
    with pytest.raises(ContainerConfigError, match='secret "gone" not found'):
        EnvBuilder(store_with(), POD).build(
            {"name": "c", "env": [{"name": "R", "valueFrom": required}]}
        )


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    return process_config()


@pytest.mark.asyncio
async def test_the_process_gets_expanded_env_command_and_args(core: CoreV1Api) -> None:
    env: list[dict[str, Any]] = [
        {"name": "A", "value": "hello"},
        {"name": "B", "value": "$(A)-x"},
        {"name": "C", "value": "$$(A)"},
        {"name": "D", "value": "$(NOPE)"},
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    manifest = shell_pod("envy", "", env=env)
    container = manifest["spec"]["containers"][0]
    container["command"] = ["sh", "-c", 'echo "$B|$C|$D|$NAME|$HOSTNAME|$0|$1"']
    container["args"] = ["$(B)", "$$(A)"]
    await core.create_namespaced_pod(NS, manifest)
    pod = await finished(core, "envy")
    assert pod.status.phase == "Succeeded"
    assert await log_of(core, "envy") == "hello-x|$(A)|$(NOPE)|envy|envy|hello-x|$(A)\n"
