"""What a user sent reaches the container as sent: ``$`` is escaped for the kubelet's ``$(VAR)``
expansion in every user-supplied env value, command and argument; operator values are not."""

from __future__ import annotations

from typing import Any

from raworc_spawner.backends.kubernetes.manifests import SPEC_HASH_ANNOTATION, kubelet_literal
from tests.k8s_manifests.conftest import make_renderer, make_spec

PROMPT = "Budget: $$5; echo $(SESSION_ID)"


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]  # type: ignore[no-any-return]


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(pod)["env"]}


def test_kubelet_literal_doubles_every_dollar() -> None:
    assert kubelet_literal("Budget: $$5; echo $(SESSION_ID) $") == (
        "Budget: $$$$5; echo $$(SESSION_ID) $$"
    )
    assert kubelet_literal("no dollars") == "no dollars"


def test_the_sessions_own_values_are_escaped() -> None:
    spec = make_spec(
        name="cost $(HOME)", starting_prompt=PROMPT, env={"NOTE": "$(SESSION_ID) and $$"}
    )
    env = _env(make_renderer().render_pod(spec))
    assert env["STARTING_PROMPT"] == "Budget: $$$$5; echo $$(SESSION_ID)"
    assert env["SESSION_NAME"] == "cost $$(HOME)"
    assert env["NOTE"] == "$$(SESSION_ID) and $$$$"
    assert env["SESSION_ID"] == spec.session_id


def test_a_command_the_session_brings_is_escaped() -> None:
    spec = make_spec(command=["sh", "-c", 'echo "$HOME" $(SESSION_ID)', "$$"])
    container = _container(make_renderer().render_pod(spec))
    assert container["command"] == ["sh", "-c", 'echo "$$HOME" $$(SESSION_ID)', "$$$$"]


def test_operator_values_are_not_escaped() -> None:
    renderer = make_renderer(
        command=["sh", "-c", "echo $(SESSION_NAME)"],
        extra_env={"GREETING": "hello $(SESSION_NAME)"},
        profiles={"p": {"description": "", "env": {"FROM_PROFILE": "$(SESSION_ID)"}}},
        home_dir="/workspace/$(SESSION_ID)",
    )
    pod = renderer.render_pod(make_spec(profile="p", name="n$"))
    env = _env(pod)
    assert _container(pod)["command"] == ["sh", "-c", "echo $(SESSION_NAME)"]
    assert env["GREETING"] == "hello $(SESSION_NAME)"
    assert env["FROM_PROFILE"] == "$(SESSION_ID)"
    assert env["HOME"] == "/workspace/$(SESSION_ID)"
    assert env["SESSION_NAME"] == "n$$"


def test_the_pod_carries_the_hash_of_its_spec() -> None:
    spec = make_spec()
    pod = make_renderer().render_pod(spec)
    digest = pod["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert make_renderer().render_pod(spec)["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == (
        digest
    )
    changed = make_renderer(memory_limit="2Gi").render_pod(spec)
    assert changed["metadata"]["annotations"][SPEC_HASH_ANNOTATION] != digest
    other_prompt = make_renderer().render_pod(make_spec(starting_prompt="something else"))
    assert other_prompt["metadata"]["annotations"][SPEC_HASH_ANNOTATION] != digest
