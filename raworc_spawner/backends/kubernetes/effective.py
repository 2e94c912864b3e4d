"""The values one session is rendered with: the settings, then its profile, then its request.

A profile's keys replace the settings of the same name, except ``env`` and the
``extra_*_config`` dicts, which merge on top; a request's resources (``cpu_request``…) replace
both. The profile catalog shows each profile with the values it takes effect with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from raworc_spawner.backends.base import Profile
from raworc_spawner.backends.kubernetes.profiles import RESOURCE_KEYS, deep_merge, resources_block

if TYPE_CHECKING:
    from raworc_spawner.backends.kubernetes.settings import KubernetesSettings

__all__ = ["catalog", "merged", "resources_block"]

#: Settings a profile may replace outright.
PROFILE_OVERRIDABLE = (
    "image",
    "image_pull_policy",
    *RESOURCE_KEYS,
    "gpu_limit",
    "storage_size",
    "storage_class",
    "node_selector",
    "tolerations",
    "affinity",
    "priority_class_name",
)
_MERGED_DICTS = ("extra_pod_config", "extra_container_config")


def merged(
    settings: KubernetesSettings, profile: Mapping[str, Any], requested: Mapping[str, Any]
) -> dict[str, Any]:
    """The settings with ``profile`` and then the requested resources on top (no validation)."""
    values: dict[str, Any] = {key: getattr(settings, key) for key in PROFILE_OVERRIDABLE}
    values["env"] = {"HOME": settings.home_dir} if settings.home_dir else {}
    values["env"].update(settings.extra_env)
    for key in _MERGED_DICTS:
        values[key] = getattr(settings, key)
    for key, value in profile.items():
        if key == "env":
            values["env"].update(value)
        elif key in _MERGED_DICTS:
            values[key] = deep_merge(values[key], value)
        elif key != "description":
            values[key] = value
    values.update({k: v for k, v in dict(requested).items() if k in RESOURCE_KEYS})
    return values


def catalog(settings: KubernetesSettings) -> dict[str, Profile]:
    """Profile name → description and effective image/resources/storage, sorted by name."""
    return {name: _entry(settings, name) for name in sorted(settings.profiles)}


def _entry(settings: KubernetesSettings, name: str) -> Profile:
    profile = settings.profiles[name]
    values = merged(settings, profile, {})
    return {
        "name": name,
        "description": profile.get("description", ""),
        "default": name == settings.default_profile,
        "image": values["image"],
        "image_pull_policy": values["image_pull_policy"],
        "resources": {
            "cpu_request": values["cpu_request"],
            "cpu_limit": values["cpu_limit"],
            "memory_request": values["memory_request"],
            "memory_limit": values["memory_limit"],
            "gpu_limit": values["gpu_limit"],
        },
        "storage_size": values["storage_size"],
        "storage_class": values["storage_class"],
    }
