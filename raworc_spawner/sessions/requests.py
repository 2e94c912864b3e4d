"""Validation of what clients ask for: create and update bodies, state changes.

Shared by every entry point (REST, pages, CLI through REST, the hub spawner) so that one rule
holds everywhere. Errors name the field and say what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from raworc_spawner.errors import ValidationError

MAX_NAME_LENGTH = 253
MAX_PROMPT_LENGTH = 100_000
MAX_METADATA_BYTES = 64 * 1024
MAX_AGENT_IDS = 100
MAX_WAITING_TIMEOUT = 30 * 24 * 3600
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

CREATE_FIELDS = frozenset(
    {"name", "namespace", "starting_prompt", "agent_ids", "metadata", "waiting_timeout_seconds"}
    | {"profile"}
)
UPDATE_FIELDS = frozenset(
    {"name", "starting_prompt", "agent_ids", "metadata", "waiting_timeout_seconds"}
)
SETTABLE_STATES = ("ready", "idle", "busy")


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A validated request for a new session."""

    name: str
    namespace: str = "default"
    starting_prompt: str = ""
    agent_ids: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    waiting_timeout_seconds: int | None = None
    profile: str | None = None


def parse_create(body: object) -> CreateRequest:
    """Validate a create body (a JSON object) into a :class:`CreateRequest`."""
    data = _object(body)
    _reject_unknown(data, CREATE_FIELDS)
    if "name" not in data:
        raise ValidationError("name", "is required")
    return CreateRequest(
        name=check_name(data["name"]),
        namespace=_namespace(data.get("namespace", "default")),
        starting_prompt=_prompt(data.get("starting_prompt", "")),
        agent_ids=_agent_ids(data.get("agent_ids", [])),
        metadata=_metadata(data.get("metadata", {})),
        waiting_timeout_seconds=_timeout(data.get("waiting_timeout_seconds")),
        profile=_profile(data.get("profile")),
    )


def parse_update(body: object) -> dict[str, Any]:
    """Validate a PATCH body into the changes to apply (only the fields given)."""
    data = _object(body)
    _reject_unknown(data, UPDATE_FIELDS)
    checks = {
        "name": check_name,
        "starting_prompt": _prompt,
        "agent_ids": _agent_ids,
        "metadata": _metadata,
        "waiting_timeout_seconds": _timeout,
    }
    return {key: checks[key](value) for key, value in data.items()}


def parse_remix(body: object) -> dict[str, Any]:
    """Validate a remix body: any create field, all optional (the rest is inherited)."""
    data = _object(body)
    _reject_unknown(data, CREATE_FIELDS)
    checks = {
        "name": check_name,
        "namespace": _namespace,
        "starting_prompt": _prompt,
        "agent_ids": _agent_ids,
        "metadata": _metadata,
        "waiting_timeout_seconds": _timeout,
        "profile": _profile,
    }
    return {key: checks[key](value) for key, value in data.items()}


def parse_state(body: object) -> str:
    """Validate a state-change body ``{"state": "ready"|"idle"|"busy"}``."""
    data = _object(body)
    _reject_unknown(data, frozenset({"state"}))
    state = data.get("state")
    if state not in SETTABLE_STATES:
        allowed = ", ".join(SETTABLE_STATES)
        raise ValidationError("state", f"must be one of {allowed}; got {state!r}")
    return str(state)


def check_name(value: object) -> str:
    """A session name: 1 to 253 printable characters (it is sanitized for Kubernetes labels)."""
    if not isinstance(value, str):
        raise ValidationError("name", f"must be a string, not {_type(value)}")
    name = value.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError("name", f"must be 1 to {MAX_NAME_LENGTH} characters long")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValidationError("name", "must not contain control characters")
    return name


def _namespace(value: object) -> str:
    if not isinstance(value, str) or not _NAMESPACE.match(value):
        raise ValidationError(
            "namespace",
            "must be 1 to 63 lowercase letters, digits or '-', starting and ending with a letter "
            f"or digit; got {value!r}",
        )
    return value


def _prompt(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("starting_prompt", f"must be a string, not {_type(value)}")
    if len(value) > MAX_PROMPT_LENGTH:
        raise ValidationError("starting_prompt", f"must be at most {MAX_PROMPT_LENGTH} characters")
    if "\x00" in value:
        raise ValidationError("starting_prompt", "must not contain NUL characters")
    return value


def _agent_ids(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError("agent_ids", "must be a list of non-empty strings")
    if _has_nul(value):
        raise ValidationError("agent_ids", "must not contain NUL characters")
    if len(value) > MAX_AGENT_IDS:
        raise ValidationError("agent_ids", f"must have at most {MAX_AGENT_IDS} entries")
    return tuple(value)


def _metadata(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError("metadata", f"must be a JSON object, not {_type(value)}")
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise ValidationError("metadata", f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    if _has_nul(value):
        raise ValidationError(
            "metadata", "must not contain NUL characters (PostgreSQL refuses them)"
        )
    return value


def _timeout(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("waiting_timeout_seconds", f"must be an integer, not {_type(value)}")
    if not 0 <= value <= MAX_WAITING_TIMEOUT:
        raise ValidationError(
            "waiting_timeout_seconds",
            f"must be between 0 (never idle out) and {MAX_WAITING_TIMEOUT}; got {value}",
        )
    return value


def _profile(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("profile", f"must be a string, not {_type(value)}")
    return value


def _has_nul(value: object) -> bool:
    """Whether a string anywhere in a JSON value (keys included) contains NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("body", f"must be a JSON object, not {_type(body)}")
    return body


def _reject_unknown(data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(
            unknown[0], f"unknown field; allowed fields are {', '.join(sorted(allowed))}"
        )


def _type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
