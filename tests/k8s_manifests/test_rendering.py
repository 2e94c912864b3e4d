"""The rendered pod and PVC keep the seed's contract, resist injection and honour overrides."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubesim.control.expansion import expand
from raworc_spawner.backends.kubernetes.manifests import ManifestError, deep_merge, to_yaml_json
from raworc_spawner.errors import InvalidConfig, ValidationError
from tests.k8s_manifests.conftest import (
    SESSION_ID,
    make_renderer,
    make_spec,
    validate_strictly,
)

PACKAGED = Path(__file__).parents[2] / "raworc_spawner" / "templates" / "k8s"


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]  # type: ignore[no-any-return]


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(pod)["env"]}


# -- the seed's contract ---------------------------------------------------------------------------


def test_the_pvc_requests_the_storage_size_read_write_once() -> None:
    pvc = make_renderer(storage_size="5Gi").render_pvc(make_spec())
    assert pvc["metadata"]["name"] == f"session-pvc-{SESSION_ID}"
    assert pvc["metadata"]["namespace"] == "raworc-sessions"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_the_storage_class_is_set_only_when_configured() -> None:
    assert "storageClassName" not in make_renderer().render_pvc(make_spec())["spec"]
    pvc = make_renderer(storage_class="standard").render_pvc(make_spec())
    assert pvc["spec"]["storageClassName"] == "standard"


def test_a_cloned_session_claims_a_copy_of_the_source_workspace() -> None:
    source = "11111111-2222-3333-4444-555555555555"
    pvc = make_renderer().render_pvc(make_spec(clone_from=source))
    assert pvc["spec"]["dataSource"] == {
        "kind": "PersistentVolumeClaim",
        "name": f"session-pvc-{source}",
    }
    validate_strictly(pvc)


def test_the_pod_mounts_the_workspace_and_works_in_it() -> None:
    pod = make_renderer().render_pod(make_spec())
    container = _container(pod)
    assert pod["metadata"]["name"] == f"session-{SESSION_ID}"
    assert container["name"] == "session"
    assert container["workingDir"] == "/workspace"
    assert {"name": "workspace", "mountPath": "/workspace"} in container["volumeMounts"]
    claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == f"session-pvc-{SESSION_ID}"


def test_the_pod_and_pvc_carry_the_labels_and_the_raw_name() -> None:
    renderer = make_renderer()
    spec = make_spec(name="ML: training / v2", profile=None)
    for manifest in (renderer.render_pod(spec), renderer.render_pvc(spec)):
        metadata = manifest["metadata"]
        assert metadata["labels"]["app"] == "raworc"
        assert metadata["labels"]["component"] == "session"
        assert metadata["labels"]["session-id"] == SESSION_ID
        assert metadata["labels"]["session-name"].startswith("ML-training-v2-")
        assert metadata["annotations"]["raworc.dev/session-name"] == "ML: training / v2"
        assert metadata["annotations"]["raworc.dev/owner"] == "ann"


def test_the_pod_and_pvc_name_their_owner_instance_and_what_rebuilds_the_record() -> None:
    renderer = make_renderer(instance_name="raworc-3f9a1c0b2d")
    spec = make_spec(
        profile=None,
        namespace="research",
        created_at=dt.datetime(2025, 1, 15, 10, 30, 0, 250000, tzinfo=dt.UTC),
        clone_from="0b0c4c0e-8a40-4c8e-9a52-1c3b1a2f0e11",
    )
    for manifest in (renderer.render_pod(spec), renderer.render_pvc(spec)):
        metadata = manifest["metadata"]
        assert metadata["labels"]["raworc.dev/instance"] == "raworc-3f9a1c0b2d"
        notes = {k: v for k, v in metadata["annotations"].items() if k != "raworc.dev/spec-hash"}
        assert notes == {
            "raworc.dev/instance": "raworc-3f9a1c0b2d",
            "raworc.dev/session-name": "ml-training-session",
            "raworc.dev/owner": "ann",
            "raworc.dev/namespace": "research",
            "raworc.dev/created-at": "2025-01-15T10:30:00.250000Z",
            "raworc.dev/cloned-from": "0b0c4c0e-8a40-4c8e-9a52-1c3b1a2f0e11",
        }


def test_a_spec_without_a_creation_time_renders_no_created_at_annotation() -> None:
    pvc = make_renderer().render_pvc(make_spec(created_at=None))
    assert "raworc.dev/created-at" not in pvc["metadata"]["annotations"]
    assert pvc["metadata"]["labels"]["raworc.dev/instance"] == "raworc"


def test_the_session_environment_is_injected() -> None:
    pod = make_renderer(extra_env={"TZ": "UTC"}).render_pod(make_spec(env={"EXTRA": "1"}))
    assert _env(pod) == {
        "SESSION_ID": SESSION_ID,
        "SESSION_NAME": "ml-training-session",
        "STARTING_PROMPT": "ML model training environment",
        "EXTRA": "1",
        "HOME": "/workspace",
        "TZ": "UTC",
    }


def test_the_sessions_own_env_wins_over_configured_env() -> None:
    renderer = make_renderer(extra_env={"TZ": "UTC", "HOME": "/home/user"})
    env = _env(renderer.render_pod(make_spec(env={"TZ": "Europe/Paris"})))
    assert env["TZ"] == "Europe/Paris" and env["HOME"] == "/home/user"
    assert [e["name"] for e in _container(renderer.render_pod(make_spec()))["env"]].count("TZ") == 1


def test_the_default_command_keeps_the_pod_alive_and_a_spec_command_replaces_it() -> None:
    renderer = make_renderer()
    command = _container(renderer.render_pod(make_spec()))["command"]
    assert command[:2] == ["sh", "-c"] and "trap 'exit 0' TERM" in command[2]
    pod = renderer.render_pod(make_spec(command=["jupyterhub-singleuser"]))
    assert _container(pod)["command"] == ["jupyterhub-singleuser"]


def test_an_empty_command_setting_leaves_the_image_entrypoint() -> None:
    assert "command" not in _container(make_renderer(command=[]).render_pod(make_spec()))


def test_a_port_is_exposed_as_the_notebook_port() -> None:
    renderer = make_renderer()
    assert "ports" not in _container(renderer.render_pod(make_spec()))
    ports = _container(renderer.render_pod(make_spec(port=8888)))["ports"]
    assert ports == [{"name": "notebook-port", "containerPort": 8888, "protocol": "TCP"}]


def test_resources_come_from_settings_then_profile_then_the_request() -> None:
    renderer = make_renderer(
        cpu_limit="2",
        profiles={"big": {"memory_limit": "4Gi", "memory_request": "1Gi", "gpu_limit": 2}},
    )
    pod = renderer.render_pod(make_spec(profile="big", resources={"memory_limit": "3Gi"}))
    assert _container(pod)["resources"] == {
        "requests": {"cpu": "100m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "3Gi", "nvidia.com/gpu": "2"},
    }


def test_empty_resource_settings_leave_requests_and_limits_out() -> None:
    renderer = make_renderer(cpu_limit="", memory_limit="", cpu_request="", memory_request="")
    assert _container(renderer.render_pod(make_spec()))["resources"] == {
        "requests": {},
        "limits": {},
    }


def test_a_gpu_limit_uses_the_configured_resource_name() -> None:
    renderer = make_renderer(gpu_limit=1, gpu_resource_name="amd.com/gpu")
    limits = _container(renderer.render_pod(make_spec()))["resources"]["limits"]
    assert limits["amd.com/gpu"] == "1" and "nvidia.com/gpu" not in limits


def test_render_all_adds_the_network_policy_only_when_enabled() -> None:
    kinds = [m["kind"] for m in make_renderer().render_all(make_spec())]
    assert kinds == ["PersistentVolumeClaim", "Pod"]
    enabled = make_renderer(create_network_policy=True).render_all(make_spec())
    assert [m["kind"] for m in enabled] == ["PersistentVolumeClaim", "Pod", "NetworkPolicy"]


def test_an_invalid_spec_is_refused_before_rendering() -> None:
    with pytest.raises(ValidationError) as caught:
        make_renderer().render_pod(make_spec(resources={"cpu_limit": "lots"}))
    assert caught.value.field == "resources"


# -- injection -------------------------------------------------------------------------------------

HOSTILE = [
    'x"\n  evil: true',
    "{{ 7*7 }}",
    "{% raw %}",
    "a: b\n- c",
    "'; DROP TABLE",
    "null",
    "true",
    "0x1F",
    "#comment",
    "\u2028line\x85next\x7f\ufeff",
    "--- !!python/object:os.system",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_data(text: str) -> None:
    renderer = make_renderer(create_network_policy=True)
    spec = make_spec(name=text, owner=text, starting_prompt=text, env={"NOTE": text})
    pvc, pod, _ = renderer.render_all(spec)
    assert pod["metadata"]["annotations"]["raworc.dev/session-name"] == text
    assert pvc["metadata"]["annotations"]["raworc.dev/owner"] == text
    assert _env(pod)["STARTING_PROMPT"] == text and _env(pod)["NOTE"] == text
    assert "evil" not in pod and "evil" not in pod["metadata"]
    validate_strictly(pod)


def test_a_template_expression_in_a_name_is_not_evaluated() -> None:
    pod = make_renderer().render_pod(make_spec(name="{{ 7*7 }}"))
    assert pod["metadata"]["annotations"]["raworc.dev/session-name"] == "{{ 7*7 }}"
    assert "49" not in yaml.safe_dump(pod)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_any_session_name_round_trips_through_the_pod_template(text: str) -> None:
    pod = make_renderer().render_pod(make_spec(name=text, starting_prompt=text))
    assert pod["metadata"]["annotations"]["raworc.dev/session-name"] == text
    # The container sees the value after the kubelet's $(VAR) expansion: exactly the text.
    env = _env(pod)
    assert expand(env["STARTING_PROMPT"], env) == text


@given(st.recursive(st.text() | st.integers() | st.booleans() | st.none(), st.lists, max_leaves=8))
def test_the_tojson_filter_emits_yaml_that_reads_back_unchanged(value: Any) -> None:
    assert yaml.safe_load(f"key: {to_yaml_json(value)}") == {"key": value}


# -- deep merge ------------------------------------------------------------------------------------


def test_deep_merge_merges_dicts_and_replaces_lists_and_scalars() -> None:
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": "x"}
    merged = deep_merge(base, {"a": {"c": [3], "d": {"g": 2}}, "f": {"now": "a dict"}})
    assert merged == {"a": {"b": 1, "c": [3], "d": {"e": 1, "g": 2}}, "f": {"now": "a dict"}}
    assert base["a"]["d"] == {"e": 1}  # the inputs are left alone


def test_extra_pod_and_container_config_are_deep_merged() -> None:
    renderer = make_renderer(
        extra_pod_config={"hostname": "box", "securityContext": {"runAsUser": 2000}},
        extra_container_config={
            "resources": {"limits": {"ephemeral-storage": "1Gi"}},
            "volumeMounts": [{"name": "workspace", "mountPath": "/home/data"}],
        },
    )
    pod = renderer.render_pod(make_spec())
    assert pod["spec"]["hostname"] == "box"
    assert pod["spec"]["securityContext"]["runAsUser"] == 2000
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    container = _container(pod)
    assert container["resources"]["limits"] == {
        "cpu": "1000m",
        "memory": "1Gi",
        "ephemeral-storage": "1Gi",
    }
    assert container["volumeMounts"] == [{"name": "workspace", "mountPath": "/home/data"}]


def test_a_profile_merges_its_extra_config_on_top_of_the_settings() -> None:
    renderer = make_renderer(
        extra_pod_config={"dnsConfig": {"options": [{"name": "ndots", "value": "2"}]}},
        profiles={"x": {"extra_pod_config": {"hostname": "x"}}},
    )
    pod = renderer.render_pod(make_spec(profile="x"))
    assert pod["spec"]["hostname"] == "x" and "dnsConfig" in pod["spec"]


def test_a_misspelt_field_in_extra_config_fails_the_strict_schema() -> None:
    pod = make_renderer(extra_pod_config={"nodeSelecter": {"a": "b"}}).render_pod(make_spec())
    with pytest.raises(Exception, match="nodeSelecter"):
        validate_strictly(pod)


# -- custom templates ------------------------------------------------------------------------------


def test_a_template_in_template_dir_replaces_the_packaged_one(tmp_path: Path) -> None:
    text = (PACKAGED / "pvc.yaml.j2").read_text().replace("ReadWriteOnce", "ReadWriteOncePod")
    (tmp_path / "pvc.yaml.j2").write_text(text)
    renderer = make_renderer(template_dir=str(tmp_path))
    assert renderer.render_pvc(make_spec())["spec"]["accessModes"] == ["ReadWriteOncePod"]
    assert renderer.render_pod(make_spec())["kind"] == "Pod"  # packaged pod template still used


def test_a_custom_template_sees_settings_and_spec(tmp_path: Path) -> None:
    text = (PACKAGED / "pvc.yaml.j2").read_text()
    text += "\n  volumeName: {{ ('vol-' ~ spec.owner ~ '-' ~ settings.namespace) | tojson }}\n"
    (tmp_path / "pvc.yaml.j2").write_text(text)
    pvc = make_renderer(template_dir=str(tmp_path)).render_pvc(make_spec())
    assert pvc["spec"]["volumeName"] == "vol-ann-raworc-sessions"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("apiVersion: v1\nmetadata: {name: x}\n", "renders no kind"),
        ("kind: Pod\nmetadata: {name: x}\n", "renders no apiVersion"),
        ("apiVersion: v1\nkind: ConfigMap\n", "expected v1 Pod"),
        ("- just\n- a list\n", "not a mapping"),
        ("apiVersion: v1\nkind: Pod\nspec: {{ no_such_value }}\n", "cannot render"),
        ("apiVersion: v1\nkind: Pod\n{% if %}\n", "syntax error on line 3"),
        ("apiVersion: v1\nkind: Pod\nspec: [unclosed\n", "valid YAML"),
        ("apiVersion: v1\nkind: Pod\nspec:\n  containers: []\n", "no container named 'session'"),
    ],
)
def test_a_broken_template_raises_a_manifest_error_naming_it(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "pod.yaml.j2").write_text(text)
    with pytest.raises(ManifestError) as caught:
        make_renderer(template_dir=str(tmp_path))
    assert problem in str(caught.value)
    assert str(tmp_path / "pod.yaml.j2") in str(caught.value)
    assert isinstance(caught.value, InvalidConfig)


def test_a_template_dir_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"KubernetesSettings\.template_dir"):
        make_renderer(template_dir=str(tmp_path / "missing"))


def test_the_packaged_templates_pass_the_start_up_check() -> None:
    make_renderer(create_network_policy=True).check_templates()
