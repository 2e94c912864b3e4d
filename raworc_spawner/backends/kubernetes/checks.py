"""Validation of the Kubernetes settings and of session specs against them.

Three kinds of checks, all raising errors that name the exact setting or field:

- :data:`TRAIT_CHECKS`: one check per ``KubernetesSettings`` trait, run when the value is set
  (:class:`~raworc_spawner.errors.InvalidConfig`, e.g. ``KubernetesSettings.cpu_request='lots'``);
- :func:`check_settings`: the checks that span several settings (a request within its limit,
  the default profile among the profiles…), run once the settings are constructed;
- :func:`check_spec`: whether one session's spec can be rendered
  (:class:`~raworc_spawner.errors.ValidationError` naming the request field).

The value checks themselves (quantities, labels, tolerations…) are shared with profiles and live
in :mod:`~raworc_spawner.backends.kubernetes.profiles`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from traitlets import HasTraits, TraitType

from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.kubernetes import profiles as pc
from raworc_spawner.backends.kubernetes.naming import (
    ANNOTATION_PREFIX,
    MAIN_CONTAINER,
    RESERVED_LABELS,
    TMP_PATH,
    TMP_VOLUME,
    WORKSPACE_PATH,
    WORKSPACE_VOLUME,
)
from raworc_spawner.errors import InvalidConfig, ValidationError

if TYPE_CHECKING:
    from raworc_spawner.backends.kubernetes.settings import KubernetesSettings

#: How errors name the settings: ``KubernetesSettings.<trait>``.
SETTINGS = "KubernetesSettings."

_DNS1123_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_LABEL = "1 to 63 lowercase letters, digits or '-', starting and ending alphanumeric"

#: A check: (full setting name for errors, proposed value) → the normalised value.
Check = Callable[[str, Any], Any]


def is_dns1123_label(value: str) -> bool:
    """Whether ``value`` is a DNS-1123 label (a Kubernetes namespace or object name part)."""
    return _DNS1123_LABEL_RE.fullmatch(value) is not None


# -- trait types whose type errors name the setting ------------------------------------------------


class NamedErrors(TraitType[Any, Any]):
    """A trait whose type errors are InvalidConfig naming the setting, like the value checks.

    Mixed into the settings' trait types (before the traitlets type it refines).
    """

    def error(
        self,
        obj: HasTraits | None,
        value: Any,
        error: Exception | None = None,
        info: str | None = None,
    ) -> NoReturn:
        owner = type(obj).__name__ if obj is not None else "KubernetesSettings"
        allowed = info or self.info()
        item_info = error.args[1] if error is not None and len(error.args) > 1 else None
        if isinstance(item_info, str):  # an element of a list was refused
            allowed = f"{allowed} whose items are {item_info}"
        raise InvalidConfig(f"{owner}.{self.name}", value, allowed)


# -- one trait at a time ---------------------------------------------------------------------------


def _namespace(setting: str, value: Any) -> str:
    text = str(value)
    if not is_dns1123_label(text):
        raise InvalidConfig(setting, text, _DNS1123_LABEL)
    return text


def _optional_namespace(setting: str, value: Any) -> str:
    return _namespace(setting, value) if str(value) else ""


def _storage_size(setting: str, value: Any) -> str:
    return pc.check_quantity(setting, value, allow_empty=False)


def _gpu_resource(setting: str, value: Any) -> str:
    if not pc.is_qualified_name(value) or "/" not in value:
        raise InvalidConfig(setting, value, "an extended resource like nvidia.com/gpu")
    return str(value)


def _server_pod_labels(setting: str, value: Any) -> dict[str, str]:
    labels = pc.check_labels(setting, value)
    if not labels:
        raise InvalidConfig(setting, labels, "at least one label")
    return labels


def _extra_labels(setting: str, value: Any) -> dict[str, str]:
    labels = pc.check_labels(setting, value)
    for key in labels:
        if key in RESERVED_LABELS:
            raise InvalidConfig(f"{setting}[{key!r}]", key, "not a contract label")
    return labels


def _extra_annotations(setting: str, value: Any) -> dict[str, str]:
    annotations = pc.check_annotations(setting, value)
    for key in annotations:
        if key.startswith(ANNOTATION_PREFIX):
            raise InvalidConfig(f"{setting}[{key!r}]", key, "a key not under raworc.dev/")
    return annotations


def _containers(setting: str, value: Any) -> list[dict[str, Any]]:
    return pc.check_containers(setting, value, reserved=(MAIN_CONTAINER,))


def _volumes(setting: str, value: Any) -> list[dict[str, Any]]:
    return pc.check_volumes(setting, value, reserved=(WORKSPACE_VOLUME, TMP_VOLUME))


def _mounts(setting: str, value: Any) -> list[dict[str, Any]]:
    return pc.check_volume_mounts(setting, value, reserved_paths=(WORKSPACE_PATH, TMP_PATH))


def _template_dir(setting: str, value: Any) -> str:
    text = str(value)
    if text and not os.path.isdir(text):
        raise InvalidConfig(setting, text, "an existing directory, or empty")
    return text


def _default_profile(setting: str, value: Any) -> str:
    text = str(value)
    return pc.check_profile_name(setting, text) if text else text


#: Trait name → its check. Traits not listed are checked by their type alone.
TRAIT_CHECKS: Mapping[str, Check] = {
    "namespace": _namespace,
    "server_namespace": _optional_namespace,
    "image": pc.check_image,
    "cpu_request": pc.check_quantity,
    "memory_request": pc.check_quantity,
    "cpu_limit": pc.check_quantity,
    "memory_limit": pc.check_quantity,
    "tmp_size_limit": pc.check_quantity,
    "storage_size": _storage_size,
    "gpu_limit": pc.check_count,
    "termination_grace_period_seconds": pc.check_count,
    "service_account_name": pc.check_object_name,
    "priority_class_name": pc.check_object_name,
    "gpu_resource_name": _gpu_resource,
    "image_pull_secrets": pc.check_name_list,
    "node_selector": pc.check_labels,
    "server_pod_labels": _server_pod_labels,
    "extra_labels": _extra_labels,
    "extra_annotations": _extra_annotations,
    "tolerations": pc.check_tolerations,
    "affinity": pc.check_affinity,
    "extra_env": pc.check_env,
    "extra_pod_config": pc.check_config_dict,
    "extra_container_config": pc.check_config_dict,
    "pod_security_context": pc.check_config_dict,
    "container_security_context": pc.check_config_dict,
    "init_containers": _containers,
    "sidecar_containers": _containers,
    "extra_volumes": _volumes,
    "extra_volume_mounts": _mounts,
    "network_policy_egress_cidrs": pc.check_cidrs,
    "template_dir": _template_dir,
    "profiles": pc.check_profiles,
    "default_profile": _default_profile,
}


def check_trait(name: str, value: Any) -> Any:
    """Check the value proposed for trait ``name``; return it normalised."""
    return TRAIT_CHECKS[name](SETTINGS + name, value)


# -- across settings -------------------------------------------------------------------------------


def check_settings(settings: KubernetesSettings) -> None:
    """The checks that span settings: requests within limits, names that refer to each other."""
    base = base_resources(settings)
    _check_within_limit(SETTINGS, base)
    for name, profile in settings.profiles.items():
        _check_within_limit(f"{SETTINGS}profiles[{name!r}].", {**base, **profile}, own=profile)
    if settings.default_profile and settings.default_profile not in settings.profiles:
        available = ", ".join(sorted(settings.profiles)) or "no profiles are configured"
        raise InvalidConfig(
            SETTINGS + "default_profile", settings.default_profile, f"one of: {available}"
        )
    _check_container_names(settings)
    _check_mount_names(settings)


def base_resources(settings: KubernetesSettings) -> dict[str, str]:
    """The four resource settings (requests and limits) as they are configured."""
    return {key: getattr(settings, key) for key in pc.RESOURCE_KEYS}


def _check_within_limit(prefix: str, resources: dict[str, Any], own: Any = None) -> None:
    """Raise if a request exceeds its limit; ``own`` holds the keys set under ``prefix``."""
    over = pc.request_over_limit(resources)
    if over:
        kind, request, limit = over
        limit_key = f"{kind}_limit"
        limit_name = f"{prefix if own is None or limit_key in own else SETTINGS}{limit_key}"
        raise InvalidConfig(
            f"{prefix}{kind}_request", request, f"must not exceed {limit_name} ({limit})"
        )


def _check_container_names(settings: KubernetesSettings) -> None:
    names = [c["name"] for c in [*settings.init_containers, *settings.sidecar_containers]]
    for name in names:
        if names.count(name) > 1:
            raise InvalidConfig(
                SETTINGS + "sidecar_containers", name, "names distinct from init_containers"
            )


def _check_mount_names(settings: KubernetesSettings) -> None:
    volumes = {WORKSPACE_VOLUME, TMP_VOLUME} | {v["name"] for v in settings.extra_volumes}
    for i, mount in enumerate(settings.extra_volume_mounts):
        if mount["name"] not in volumes:
            raise InvalidConfig(
                f"{SETTINGS}extra_volume_mounts[{i}].name",
                mount["name"],
                "the name of a volume: " + ", ".join(sorted(volumes)),
            )


# -- one session -----------------------------------------------------------------------------------


def check_spec(settings: KubernetesSettings, spec: SessionSpec) -> None:
    """Raise :class:`ValidationError` naming the field if ``spec`` cannot be rendered."""
    if spec.profile and spec.profile not in settings.profiles:
        available = ", ".join(sorted(settings.profiles)) or "none are configured"
        raise ValidationError(
            "profile", f"unknown profile {spec.profile!r}; available: {available}"
        )
    pc.validate_requested_resources(spec.resources)
    over = pc.request_over_limit(settings.merged_values(spec))
    if over:
        kind, request, limit = over
        raise ValidationError("resources", f"{kind}_request {request} exceeds {kind}_limit {limit}")
    pc.validate_spec_fields(spec)
