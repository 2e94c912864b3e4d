"""Profiles (named presets chosen per session) and the value checks they share with settings.

Every check takes the full setting name it reports in errors, e.g.
``KubernetesSettings.profiles['gpu-small'].cpu_limit``, and returns the normalised value or
raises :class:`~raworc_spawner.errors.InvalidConfig`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.kubernetes.naming import (
    is_dns1123_subdomain,
    is_label_value,
    pvc_name,
)
from raworc_spawner.errors import InvalidConfig, ValidationError
from raworc_spawner.quantity import QUANTITY_HELP, QuantityError, parse_quantity

RESOURCE_KEYS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
PROFILE_KEYS = (
    "description",
    "image",
    "image_pull_policy",
    *RESOURCE_KEYS,
    "storage_size",
    "storage_class",
    "gpu_limit",
    "node_selector",
    "tolerations",
    "affinity",
    "priority_class_name",
    "env",
    "extra_pod_config",
    "extra_container_config",
)
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
AFFINITY_KEYS = {"nodeAffinity", "podAffinity", "podAntiAffinity"}

_DNS1123_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]")
_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
ENV_NAME_HELP = "letters, digits, '_', '-' or '.', not starting with a digit"


# -- scalar checks -------------------------------------------------------------------------------


def check_quantity(setting: str, value: object, *, allow_empty: bool = True) -> str:
    """A non-negative Kubernetes quantity as text; ``""`` when empty is allowed."""
    text = str(value).strip() if isinstance(value, str | int | float) else None
    if text is None or isinstance(value, bool):
        raise InvalidConfig(setting, value, QUANTITY_HELP)
    if not text and allow_empty:
        return text
    try:
        amount = parse_quantity(text)
    except QuantityError as e:
        raise InvalidConfig(setting, value, QUANTITY_HELP) from e
    if amount < 0:
        raise InvalidConfig(setting, value, "a quantity that is not negative")
    return text


def check_count(setting: str, value: object) -> int:
    """A whole number ≥ 0 (a GPU count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidConfig(setting, value, "a whole number, 0 or more")
    return value


def check_object_name(setting: str, value: object, *, allow_empty: bool = True) -> str:
    """A DNS-1123 subdomain (the name of a Secret, PriorityClass, ServiceAccount…)."""
    if value == "" and allow_empty:
        return ""
    if not isinstance(value, str) or not is_dns1123_subdomain(value):
        raise InvalidConfig(setting, value, "a DNS-1123 subdomain: lowercase a-z, 0-9, '-', '.'")
    return value


def check_profile_name(setting: str, value: object) -> str:
    """A profile name: a DNS-1123 label (``gpu-small``)."""
    if not isinstance(value, str) or _DNS1123_LABEL_RE.fullmatch(value) is None:
        raise InvalidConfig(
            setting, value, "1 to 63 lowercase letters, digits or '-', starting and ending alnum"
        )
    return value


def check_pull_policy(setting: str, value: object) -> str:
    """One of Always, IfNotPresent, Never."""
    if value not in PULL_POLICIES:
        raise InvalidConfig(setting, value, "one of " + ", ".join(PULL_POLICIES))
    return str(value)


def check_image(setting: str, value: object) -> str:
    """A non-empty image reference without whitespace."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or any(ch.isspace() for ch in text):
        raise InvalidConfig(setting, value, "a non-empty image reference")
    return text


def check_text(setting: str, value: object) -> str:
    """Any string."""
    if not isinstance(value, str):
        raise InvalidConfig(setting, value, "a string")
    return value


def check_cidrs(setting: str, value: object) -> list[str]:
    """A list of IPv4/IPv6 networks in CIDR notation with no host bits set."""
    result = []
    for i, item in enumerate(_list(setting, value)):
        try:
            result.append(str(ipaddress.ip_network(str(item), strict=True)))
        except ValueError as e:
            raise InvalidConfig(f"{setting}[{i}]", item, f"a CIDR such as 10.0.0.0/8 ({e})") from e
    return result


# -- maps ----------------------------------------------------------------------------------------


def is_qualified_name(key: str) -> bool:
    """Whether ``key`` is a label/annotation key: ``[prefix/]name``."""
    prefix, _, name = key.rpartition("/")
    if prefix and not is_dns1123_subdomain(prefix):
        return False
    return _QUALIFIED_NAME_RE.fullmatch(name) is not None


def check_labels(setting: str, value: object) -> dict[str, str]:
    """A map of label keys to label values."""
    result = _str_map(setting, value)
    for key, item in result.items():
        if not is_qualified_name(key):
            raise InvalidConfig(f"{setting}[{key!r}]", key, "a label key: [prefix/]name")
        if not is_label_value(item):
            raise InvalidConfig(
                f"{setting}[{key!r}]", item, "a label value: ≤63 of A-Z a-z 0-9 - _ ."
            )
    return result


def check_annotations(setting: str, value: object) -> dict[str, str]:
    """A map of annotation keys to string values."""
    result = _str_map(setting, value)
    for key in result:
        if not is_qualified_name(key):
            raise InvalidConfig(f"{setting}[{key!r}]", key, "an annotation key: [prefix/]name")
    return result


def check_env(setting: str, value: object) -> dict[str, Any]:
    """Env vars: name → string value, or name → a ``valueFrom`` source dict."""
    result = _dict(setting, value)
    for key, item in result.items():
        if not isinstance(key, str) or _ENV_NAME_RE.fullmatch(key) is None:
            raise InvalidConfig(f"{setting}[{key!r}]", key, f"an env var name: {ENV_NAME_HELP}")
        if not isinstance(item, str | dict) or (isinstance(item, dict) and not item):
            raise InvalidConfig(
                f"{setting}[{key!r}]", item, "a string, or a valueFrom dict like {'secretKeyRef':…}"
            )
    return result


def check_config_dict(setting: str, value: object) -> dict[str, Any]:
    """A dict with string keys (merged into a manifest)."""
    result = _dict(setting, value)
    for key in result:
        if not isinstance(key, str):
            raise InvalidConfig(setting, key, "string keys (Kubernetes field names)")
    return result


def check_affinity(setting: str, value: object) -> dict[str, Any]:
    """A pod ``affinity`` dict: nodeAffinity, podAffinity and/or podAntiAffinity."""
    result = check_config_dict(setting, value)
    unknown = sorted(set(result) - AFFINITY_KEYS)
    if unknown:
        raise InvalidConfig(setting, unknown[0], "keys among " + ", ".join(sorted(AFFINITY_KEYS)))
    return result


def check_tolerations(setting: str, value: object) -> list[dict[str, Any]]:
    """A list of toleration dicts (key, operator Equal/Exists, value, effect, seconds)."""
    result = []
    for i, item in enumerate(_list(setting, value)):
        name = f"{setting}[{i}]"
        tol = check_config_dict(name, item)
        unknown = sorted(set(tol) - TOLERATION_KEYS)
        if unknown:
            raise InvalidConfig(
                name, unknown[0], "keys among " + ", ".join(sorted(TOLERATION_KEYS))
            )
        if tol.get("operator", "Equal") not in ("Equal", "Exists"):
            raise InvalidConfig(f"{name}.operator", tol["operator"], "Equal or Exists")
        if tol.get("effect", "") not in TOLERATION_EFFECTS:
            raise InvalidConfig(
                f"{name}.effect", tol["effect"], "NoSchedule, PreferNoSchedule, NoExecute"
            )
        result.append(tol)
    return result


# -- lists of objects ----------------------------------------------------------------------------


def check_containers(
    setting: str, value: object, *, reserved: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Container dicts, each with a unique DNS-1123 ``name`` (not reserved) and an ``image``."""
    result = _named_items(setting, value, reserved=reserved)
    for i, item in enumerate(result):
        check_image(f"{setting}[{i}].image", item.get("image"))
    return result


def check_volumes(
    setting: str, value: object, *, reserved: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Volume dicts, each with a unique DNS-1123 ``name`` (not a reserved one) and a source."""
    result = _named_items(setting, value, reserved=reserved)
    for i, item in enumerate(result):
        if len(item) < 2:
            raise InvalidConfig(f"{setting}[{i}]", item, "a name and a volume source")
    return result


def check_volume_mounts(
    setting: str, value: object, *, reserved_paths: tuple[str, ...]
) -> list[dict[str, Any]]:
    """volumeMount dicts, each with ``name`` and an absolute ``mountPath`` not already used."""
    result = []
    for i, item in enumerate(_list(setting, value)):
        mount = check_config_dict(f"{setting}[{i}]", item)
        path = mount.get("mountPath")
        if not isinstance(mount.get("name"), str) or not isinstance(path, str):
            raise InvalidConfig(f"{setting}[{i}]", item, "a dict with name and mountPath")
        if not path.startswith("/") or path.rstrip("/") in reserved_paths:
            raise InvalidConfig(
                f"{setting}[{i}].mountPath",
                path,
                "an absolute path other than " + ", ".join(reserved_paths),
            )
        result.append(mount)
    return result


def check_name_list(setting: str, value: object) -> list[str]:
    """A list of DNS-1123 object names (Secrets for imagePullSecrets)."""
    return [
        check_object_name(f"{setting}[{i}]", item, allow_empty=False)
        for i, item in enumerate(_list(setting, value))
    ]


# -- profiles ------------------------------------------------------------------------------------

_PROFILE_CHECKS: dict[str, Any] = {
    "description": check_text,
    "image": check_image,
    "image_pull_policy": check_pull_policy,
    "cpu_request": check_quantity,
    "cpu_limit": check_quantity,
    "memory_request": check_quantity,
    "memory_limit": check_quantity,
    "storage_size": lambda s, v: check_quantity(s, v, allow_empty=False),
    "storage_class": check_text,
    "gpu_limit": check_count,
    "node_selector": check_labels,
    "tolerations": check_tolerations,
    "affinity": check_affinity,
    "priority_class_name": check_object_name,
    "env": check_env,
    "extra_pod_config": check_config_dict,
    "extra_container_config": check_config_dict,
}


def check_profiles(setting: str, value: object) -> dict[str, dict[str, Any]]:
    """Validate every profile: its name, its keys and each value's type and format."""
    result = {}
    for name, profile in _dict(setting, value).items():
        check_profile_name(f"{setting} key", name)
        result[name] = check_profile(f"{setting}[{name!r}]", profile)
    return result


def check_profile(setting: str, value: object) -> dict[str, Any]:
    """Validate one profile dict; unknown keys are errors (a typo must not pass silently)."""
    profile = _dict(setting, value)
    checked = {}
    for key, item in profile.items():
        if key not in _PROFILE_CHECKS:
            raise InvalidConfig(
                f"{setting}.{key}", item, "an unknown key; allowed: " + ", ".join(PROFILE_KEYS)
            )
        checked[key] = _PROFILE_CHECKS[key](f"{setting}.{key}", item)
    return checked


def request_over_limit(resources: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The first ``(kind, request, limit)`` whose request exceeds its limit; None if all fit."""
    for kind in ("cpu", "memory"):
        request, limit = resources.get(f"{kind}_request"), resources.get(f"{kind}_limit")
        if request and limit and parse_quantity(request) > parse_quantity(limit):
            return kind, request, limit
    return None


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` merged into ``base``; dicts merge recursively, all else replaces.

    >>> deep_merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2], "d": 3}})
    {'a': {'b': 1, 'c': [2], 'd': 3}}
    """
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- sessions ------------------------------------------------------------------------------------


def resources_block(
    values: Mapping[str, Any], *, gpu_resource_name: str
) -> dict[str, dict[str, str]]:
    """Kubernetes ``resources`` from effective values: the set requests and limits, plus GPUs."""
    requests = {"cpu": values["cpu_request"], "memory": values["memory_request"]}
    limits = {"cpu": values["cpu_limit"], "memory": values["memory_limit"]}
    if values.get("gpu_limit"):
        limits[gpu_resource_name] = str(values["gpu_limit"])
    return {
        "requests": {k: v for k, v in requests.items() if v},
        "limits": {k: v for k, v in limits.items() if v},
    }


def validate_requested_resources(resources: Any) -> None:
    """Raise ValidationError("resources", …) for an unknown key or a value that is no quantity."""
    for key, value in dict(resources).items():
        if key not in RESOURCE_KEYS:
            raise ValidationError(
                "resources", f"unknown key {key!r}; allowed: {', '.join(RESOURCE_KEYS)}"
            )
        try:
            if not isinstance(value, str) or parse_quantity(value) < 0:
                raise QuantityError(value)
        except QuantityError as e:
            raise ValidationError(
                "resources", f"{key}={value!r} is not a Kubernetes quantity"
            ) from e


def _validate_port(spec: SessionSpec) -> None:
    if spec.port is not None and (isinstance(spec.port, bool) or not 1 <= spec.port <= 65535):
        raise ValidationError("port", f"{spec.port!r} is not a port number (1-65535)")


def _validate_env(spec: SessionSpec) -> None:
    for key, value in spec.env.items():
        if not isinstance(key, str) or not _ENV_NAME_RE.fullmatch(key):
            raise ValidationError("env", f"{key!r} is not a valid variable name: {ENV_NAME_HELP}")
        if not isinstance(value, str):
            raise ValidationError("env", f"the value of {key} must be a string")


def _validate_command(spec: SessionSpec) -> None:
    if spec.command is not None and (
        isinstance(spec.command, str) or not all(isinstance(a, str) for a in spec.command)
    ):
        raise ValidationError("command", "must be a list of strings")


def _validate_clone_from(spec: SessionSpec) -> None:
    if spec.clone_from is None:
        return
    try:
        pvc_name(spec.clone_from)
    except ValueError as e:
        raise ValidationError("clone_from", f"{spec.clone_from!r} is not a session id") from e


_SPEC_CHECKS: tuple[Callable[[SessionSpec], None], ...] = (
    _validate_port,
    _validate_env,
    _validate_command,
    _validate_clone_from,
)


def validate_spec_fields(spec: SessionSpec) -> None:
    """Raise ValidationError naming the field for a bad port, env, command or clone_from."""
    for check in _SPEC_CHECKS:
        check(spec)


# -- helpers -------------------------------------------------------------------------------------


def _dict(setting: str, value: object) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise InvalidConfig(setting, value, "a dict")
    return dict(value)


def _list(setting: str, value: object) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise InvalidConfig(setting, value, "a list")
    return list(value)


def _str_map(setting: str, value: object) -> dict[str, str]:
    result = _dict(setting, value)
    for key, item in result.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidConfig(f"{setting}[{key!r}]", item, "string keys and string values")
    return result


def _named_items(setting: str, value: object, *, reserved: tuple[str, ...]) -> list[dict[str, Any]]:
    result, seen = [], set(reserved)
    for i, item in enumerate(_list(setting, value)):
        obj = check_config_dict(f"{setting}[{i}]", item)
        name = obj.get("name")
        if not isinstance(name, str) or _DNS1123_LABEL_RE.fullmatch(name) is None:
            raise InvalidConfig(f"{setting}[{i}].name", name, "a DNS-1123 label (lowercase, '-')")
        if name in seen:
            raise InvalidConfig(f"{setting}[{i}].name", name, "a name not used by another entry")
        seen.add(name)
        result.append(obj)
    return result
