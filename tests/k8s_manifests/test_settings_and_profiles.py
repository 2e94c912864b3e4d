"""Settings and profiles are validated eagerly, with errors that name the exact setting."""

from __future__ import annotations

from typing import Any

import pytest

from raworc_spawner.backends.kubernetes.settings import KubernetesSettings
from raworc_spawner.errors import InvalidConfig, ValidationError
from tests.k8s_manifests.conftest import make_renderer, make_spec

PROFILES = {
    "gpu-small": {
        "description": "One GPU",
        "image": "nvidia/cuda:11.8.0-runtime-ubuntu22.04",
        "cpu_limit": "4",
        "gpu_limit": 1,
        "storage_size": "20Gi",
    },
    "tiny": {"description": "Small", "memory_limit": "256Mi"},
}


def _invalid(**settings: Any) -> InvalidConfig:
    with pytest.raises(InvalidConfig) as caught:
        KubernetesSettings(**settings).check()
    return caught.value


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"profiles": {"gpu-small": {"cpu_limit": "lots"}}}, "profiles['gpu-small'].cpu_limit"),
        ({"profiles": {"gpu-small": {"cpu_lmit": "1"}}}, "profiles['gpu-small'].cpu_lmit"),
        ({"profiles": {"gpu-small": {"gpu_limit": -1}}}, "profiles['gpu-small'].gpu_limit"),
        (
            {"profiles": {"x": {"image_pull_policy": "Sometimes"}}},
            "profiles['x'].image_pull_policy",
        ),
        ({"profiles": {"x": {"storage_size": ""}}}, "profiles['x'].storage_size"),
        ({"profiles": {"x": {"node_selector": {"a": 1}}}}, "profiles['x'].node_selector['a']"),
        ({"profiles": {"x": {"tolerations": [{"operator": "Maybe"}]}}}, "tolerations[0].operator"),
        ({"profiles": {"x": {"affinity": {"nodeAfinity": {}}}}}, "profiles['x'].affinity"),
        ({"profiles": {"x": {"env": {"1BAD": "v"}}}}, "profiles['x'].env['1BAD']"),
        ({"profiles": {"x": "not a dict"}}, "profiles['x']"),
        ({"profiles": {"GPU Small": {}}}, "KubernetesSettings.profiles key"),
        ({"profiles": {"x": {"memory_request": "2Gi"}}}, "profiles['x'].memory_request"),
        ({"profiles": {"x": {"cpu_request": "2", "cpu_limit": "1"}}}, "profiles['x'].cpu_request"),
        ({"default_profile": "missing"}, "KubernetesSettings.default_profile"),
    ],
)
def test_profile_errors_name_the_exact_setting(settings: dict[str, Any], setting: str) -> None:
    assert setting in str(_invalid(**settings))


def test_a_profile_request_above_the_inherited_limit_names_the_global_limit() -> None:
    error = _invalid(profiles={"x": {"memory_request": "2Gi"}})
    assert error.setting == "KubernetesSettings.profiles['x'].memory_request"
    assert "KubernetesSettings.memory_limit (1Gi)" in str(error)


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"gpu_limit": -1}, "gpu_limit"),
        ({"gpu_resource_name": "gpu"}, "KubernetesSettings.gpu_resource_name"),
        ({"extra_labels": {"app": "other"}}, "KubernetesSettings.extra_labels['app']"),
        ({"extra_labels": {"session-name": "x"}}, "extra_labels['session-name']"),
        ({"extra_labels": {"raworc.dev/instance": "x"}}, "extra_labels['raworc.dev/instance']"),
        ({"extra_labels": {"team": "a b"}}, "KubernetesSettings.extra_labels['team']"),
        ({"extra_annotations": {"raworc.dev/owner": "x"}}, "extra_annotations['raworc.dev/owner']"),
        ({"network_policy_egress_cidrs": ["10.0.0.1/8"]}, "network_policy_egress_cidrs[0]"),
        ({"network_policy_egress_cidrs": ["internet"]}, "network_policy_egress_cidrs[0]"),
        ({"server_pod_labels": {}}, "KubernetesSettings.server_pod_labels"),
        ({"server_namespace": "Raworc"}, "KubernetesSettings.server_namespace"),
        ({"image_pull_secrets": ["Bad_Name"]}, "KubernetesSettings.image_pull_secrets[0]"),
        ({"priority_class_name": "High Priority"}, "KubernetesSettings.priority_class_name"),
        ({"service_account_name": "A"}, "KubernetesSettings.service_account_name"),
        (
            {"sidecar_containers": [{"name": "db"}]},
            "KubernetesSettings.sidecar_containers[0].image",
        ),
        ({"sidecar_containers": [{"name": "session", "image": "x"}]}, "sidecar_containers[0].name"),
        ({"init_containers": [{"image": "x"}]}, "KubernetesSettings.init_containers[0].name"),
        ({"init_containers": ["busybox"]}, "KubernetesSettings.init_containers[0]"),
        ({"extra_volumes": [{"name": "workspace", "emptyDir": {}}]}, "extra_volumes[0].name"),
        ({"extra_volumes": [{"name": "data"}]}, "KubernetesSettings.extra_volumes[0]"),
        ({"extra_volume_mounts": [{"name": "x", "mountPath": "/tmp"}]}, "mounts[0].mountPath"),
        ({"extra_volume_mounts": [{"name": "nope", "mountPath": "/d"}]}, "mounts[0].name"),
        ({"extra_env": {"A=B": "x"}}, "KubernetesSettings.extra_env['A=B']"),
        ({"tolerations": [{"effect": "Never"}]}, "KubernetesSettings.tolerations[0].effect"),
        ({"tolerations": {"key": "x"}}, "KubernetesSettings.tolerations"),
        ({"tmp_size_limit": "big"}, "KubernetesSettings.tmp_size_limit"),
        ({"memory_request": "2Gi"}, "KubernetesSettings.memory_request"),
    ],
)
def test_invalid_settings_name_the_setting(settings: dict[str, Any], setting: str) -> None:
    assert setting in str(_invalid(**settings))


def test_settings_that_contradict_each_other_fail_when_constructed() -> None:
    with pytest.raises(InvalidConfig) as caught:
        KubernetesSettings(memory_request="2Gi")  # above the default 1Gi limit
    assert caught.value.setting == "KubernetesSettings.memory_request"
    assert "must not exceed KubernetesSettings.memory_limit (1Gi)" in str(caught.value)


def test_init_and_sidecar_containers_may_not_share_a_name() -> None:
    container = {"name": "helper", "image": "busybox"}
    error = _invalid(init_containers=[container], sidecar_containers=[container])
    assert "helper" in str(error)


def test_every_setting_has_help_text() -> None:
    for name, trait in KubernetesSettings.class_traits(config=True).items():
        assert trait.help and len(trait.help) > 20, name


# -- profiles at run time --------------------------------------------------------------------------


def test_the_catalog_lists_each_profile_with_its_effective_values() -> None:
    settings = KubernetesSettings(profiles=PROFILES, default_profile="tiny")
    catalog = settings.profile_catalog()
    assert list(catalog) == ["gpu-small", "tiny"]
    assert catalog["gpu-small"] == {
        "name": "gpu-small",
        "description": "One GPU",
        "default": False,
        "image": "nvidia/cuda:11.8.0-runtime-ubuntu22.04",
        "image_pull_policy": "IfNotPresent",
        "resources": {
            "cpu_request": "100m",
            "cpu_limit": "4",
            "memory_request": "128Mi",
            "memory_limit": "1Gi",
            "gpu_limit": 1,
        },
        "storage_size": "20Gi",
        "storage_class": "",
    }
    assert catalog["tiny"]["default"] is True
    assert catalog["tiny"]["image"] == "python:3.11-slim"


def test_an_unknown_profile_is_a_validation_error_listing_the_available_ones() -> None:
    settings = KubernetesSettings(profiles=PROFILES)
    with pytest.raises(ValidationError) as caught:
        settings.validate_spec(make_spec(profile="huge"))
    assert caught.value.field == "profile"
    assert str(caught.value) == "profile: unknown profile 'huge'; available: gpu-small, tiny"


def test_without_profiles_any_named_profile_is_unknown() -> None:
    with pytest.raises(ValidationError, match="none are configured"):
        KubernetesSettings().validate_spec(make_spec(profile="x"))


def test_the_default_profile_applies_when_a_session_names_none() -> None:
    renderer = make_renderer(profiles=PROFILES, default_profile="gpu-small")
    pod = renderer.render_pod(make_spec())
    assert pod["spec"]["containers"][0]["image"].startswith("nvidia/cuda")
    assert pod["metadata"]["annotations"]["raworc.dev/profile"] == "gpu-small"
    assert renderer.render_pvc(make_spec())["spec"]["resources"]["requests"]["storage"] == "20Gi"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"resources": {"cpu": "1"}}, "resources"),
        ({"resources": {"cpu_limit": "lots"}}, "resources"),
        ({"resources": {"memory_request": "4Gi"}}, "resources"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"env": {"1X": "y"}}, "env"),
        ({"command": "sleep 1"}, "command"),
        ({"clone_from": "../etc"}, "clone_from"),
    ],
)
def test_a_bad_spec_is_a_validation_error_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        KubernetesSettings().validate_spec(make_spec(**overrides))
    assert caught.value.field == field


def test_a_request_may_raise_a_limit_within_its_request() -> None:
    settings = KubernetesSettings()
    settings.validate_spec(make_spec(resources={"memory_request": "2Gi", "memory_limit": "4Gi"}))
