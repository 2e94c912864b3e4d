"""Validation of what clients ask for: create, update and remix bodies, state changes.

Shared by every entry point (REST, pages, CLI through REST, the hub spawner) so that one rule
holds everywhere. Each field has one check in :data:`FIELDS`; a body is checked whole, and every
problem found (unknown fields, a missing name, refused values) is raised at once as
:class:`FieldErrors`. That error is a :class:`ValidationError` whose ``field`` and ``message`` are
the first problem's, so the API answers with that one while the create form shows each problem
next to its field. Messages name the field and say what is allowed.

A field the client left out is simply absent: defaults belong to the session manager (for
example ``namespace``, which the manager fills in from ``SessionManager.default_namespace``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raworc_spawner.errors import ValidationError
from raworc_spawner.sessions.model import SessionState

MAX_NAME_LENGTH = 253
#: The starting prompt reaches the session as one environment variable, and Linux caps one
#: argument or environment string at MAX_ARG_STRLEN = 131072 bytes (``STARTING_PROMPT=``
#: included); 100,000 UTF-8 bytes leave room, on every backend.
MAX_PROMPT_BYTES = 100_000
#: Characters: a loose bound for schemas that cannot count bytes (each character is >= 1 byte).
MAX_PROMPT_LENGTH = MAX_PROMPT_BYTES
MAX_METADATA_BYTES = 64 * 1024
MAX_AGENT_IDS = 100
MAX_WAITING_TIMEOUT = 30 * 24 * 3600
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_NAMESPACE = re.compile(NAMESPACE_PATTERN)
#: States a client may ask for: resume, pause, and an agent's busy flag.
SETTABLE_STATES = (SessionState.READY, SessionState.IDLE, SessionState.BUSY)

#: A problem with one field of a request: (field, what is wrong without the field's name).
Problem = tuple[str, str]


class Refused(Exception):
    """A field check's verdict: the value is not allowed; the message says why."""


class FieldErrors(ValidationError):
    """Every problem found in one request body, in the order of :data:`FIELDS`.

    ``field`` and ``message`` are the first problem's (what the API answers with);
    ``problems`` holds them all.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("FieldErrors needs at least one problem")
        super().__init__(*problems[0])
        self.problems: tuple[Problem, ...] = tuple(problems)

    def by_field(self) -> dict[str, str]:
        """The problems as field → message; a field's first problem wins."""
        found: dict[str, str] = {}
        for name, message in self.problems:
            found.setdefault(name, message)
        return found


def problems_of(error: ValidationError) -> dict[str, str]:
    """Field → message for any validation error (one entry unless it is :class:`FieldErrors`)."""
    if isinstance(error, FieldErrors):
        return error.by_field()
    return {error.field: error.message.removeprefix(f"{error.field}: ")}


# -- field checks: each returns the value to use or raises Refused ---------------------------


def _name(value: object) -> str:
    """1 to MAX_NAME_LENGTH printable characters, surrounding spaces removed."""
    if not isinstance(value, str):
        raise Refused(f"must be a string, not {_type(value)}")
    name = value.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise Refused(f"must be 1 to {MAX_NAME_LENGTH} characters long")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise Refused("must not contain control characters")
    return name


def _namespace(value: object) -> str:
    """A DNS label (it is a logical grouping, not a Kubernetes namespace)."""
    if not isinstance(value, str) or not _NAMESPACE.match(value):
        raise Refused(
            "must be 1 to 63 lowercase letters, digits or '-', starting and ending with a letter "
            f"or digit; got {value!r}"
        )
    return value


def _prompt(value: object) -> str:
    """Any text up to MAX_PROMPT_BYTES bytes in UTF-8, without NUL."""
    if not isinstance(value, str):
        raise Refused(f"must be a string, not {_type(value)}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise Refused("must be valid Unicode text (it holds a lone surrogate)") from None
    if size > MAX_PROMPT_BYTES:
        raise Refused(
            f"must be at most {MAX_PROMPT_BYTES} bytes in UTF-8 (it is {size} bytes; "
            "it reaches the session as one environment variable)"
        )
    if "\x00" in value:
        raise Refused("must not contain NUL characters")
    return value


def _agent_ids(value: object) -> tuple[str, ...]:
    """Up to MAX_AGENT_IDS non-empty strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Refused("must be a list of non-empty strings")
    if _has_nul(value):
        raise Refused("must not contain NUL characters")
    if len(value) > MAX_AGENT_IDS:
        raise Refused(f"must have at most {MAX_AGENT_IDS} entries")
    return tuple(value)


def _metadata(value: object) -> dict[str, Any]:
    """A JSON object of at most MAX_METADATA_BYTES as UTF-8 JSON, without NUL anywhere."""
    if not isinstance(value, dict):
        raise Refused(f"must be a JSON object, not {_type(value)}")
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise Refused("must be valid Unicode text (it holds a lone surrogate)") from None
    if size > MAX_METADATA_BYTES:
        raise Refused(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    if _has_nul(value):
        raise Refused("must not contain NUL characters (PostgreSQL refuses them)")
    return value


def _timeout(value: object) -> int | None:
    """Seconds from 0 (never idle out) to MAX_WAITING_TIMEOUT, or null (the manager's default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(f"must be an integer, not {_type(value)}")
    if not 0 <= value <= MAX_WAITING_TIMEOUT:
        raise Refused(f"must be between 0 (never idle out) and {MAX_WAITING_TIMEOUT}; got {value}")
    return value


def _profile(value: object) -> str | None:
    """A profile name; null or empty means the backend's default (the backend checks names)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Refused(f"must be a string, not {_type(value)}")
    return value


#: A field check: the value to use, or :class:`Refused`.
Check = Callable[[object], Any]
#: Every session field a client may send → its check, in the order problems are reported.
FIELDS: Mapping[str, Check] = {
    "name": _name,
    "namespace": _namespace,
    "starting_prompt": _prompt,
    "agent_ids": _agent_ids,
    "metadata": _metadata,
    "waiting_timeout_seconds": _timeout,
    "profile": _profile,
}
CREATE_FIELDS = frozenset(FIELDS)
#: Fields a PATCH may change (namespace and profile are fixed at creation).
UPDATE_FIELDS = CREATE_FIELDS - {"namespace", "profile"}


def _state(value: object) -> SessionState:
    """One of :data:`SETTABLE_STATES`."""
    if isinstance(value, str) and value in SETTABLE_STATES:
        return SessionState(value)
    raise Refused(f"must be one of {', '.join(SETTABLE_STATES)}; got {value!r}")


def _flag(value: object) -> bool:
    """A JSON boolean."""
    if isinstance(value, bool):
        return value
    raise Refused(f"must be true or false; got {_type(value)} {str(value)[:40]!r}")


#: The fields of a state-change body.
STATE_CHECKS: Mapping[str, Check] = {"state": _state, "new_workspace": _flag}


def check_fields(
    body: object,
    allowed: Collection[str],
    *,
    required: Collection[str] = (),
    checks: Mapping[str, Check] = FIELDS,
) -> dict[str, Any]:
    """The checked values of the fields ``body`` (a JSON object) gives, by field name.

    Raises :class:`FieldErrors` with every problem: a body that is not an object, fields not in
    ``allowed`` (sorted), ``required`` fields left out, then values refused by ``checks`` in
    their order.
    """
    if not isinstance(body, dict):
        raise FieldErrors([("body", f"must be a JSON object, not {_type(body)}")])
    allowed_text = ", ".join(sorted(allowed))
    problems: list[Problem] = [
        (name, f"unknown field; allowed fields are {allowed_text}")
        for name in sorted(set(body) - set(allowed))
    ]
    problems += [(name, "is required") for name in required if name not in body]
    values: dict[str, Any] = {}
    for name, check in checks.items():
        if name in body and name in allowed:
            try:
                values[name] = check(body[name])
            except Refused as e:
                problems.append((name, str(e)))
    if problems:
        raise FieldErrors(problems)
    return values


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A validated request for a new session.

    ``namespace`` None means the manager's ``default_namespace``.
    """

    name: str
    namespace: str | None = None
    starting_prompt: str = ""
    agent_ids: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    waiting_timeout_seconds: int | None = None
    profile: str | None = None


def parse_create(body: object) -> CreateRequest:
    """Validate a create body (a JSON object with at least ``name``) into a request."""
    return CreateRequest(**check_fields(body, CREATE_FIELDS, required=("name",)))


def parse_update(body: object) -> dict[str, Any]:
    """Validate a PATCH body into the changes to apply (only the fields given)."""
    return check_fields(body, UPDATE_FIELDS)


def parse_remix(body: object) -> dict[str, Any]:
    """Validate a remix body: any create field, all optional (the rest is inherited)."""
    return check_fields(body, CREATE_FIELDS)


@dataclass(frozen=True, slots=True)
class StateRequest:
    """A validated state change: the target, and for a resume whether a new workspace is fine."""

    state: SessionState
    new_workspace: bool = False


def parse_state(body: object) -> StateRequest:
    """Validate ``{"state": "ready"|"idle"|"busy", "new_workspace": bool}`` (the flag optional).

    ``new_workspace`` is only meaningful with ``ready``: with another state it is refused.
    """
    given = check_fields(body, STATE_CHECKS.keys(), checks=STATE_CHECKS)
    state: SessionState = given["state"] if "state" in given else check_field("state", None)
    new_workspace = bool(given.get("new_workspace", False))
    if new_workspace and state != SessionState.READY:
        raise FieldErrors([("new_workspace", f"only with state 'ready', not {state.value!r}")])
    return StateRequest(state, new_workspace)


def parse_states(values: Sequence[str]) -> list[SessionState] | None:
    """The states of a ``state`` filter (None when there are none); an unknown one is refused."""
    if not values:
        return None
    states = []
    for value in values:
        try:
            states.append(SessionState(value))
        except ValueError:
            allowed = ", ".join(state.value for state in SessionState)
            raise FieldErrors(
                [("state", f"unknown state {value[:40]!r}; one of {allowed}")]
            ) from None
    return states


def check_name(value: object) -> str:
    """A session name: 1 to 253 printable characters (it is sanitized for Kubernetes labels)."""
    name: str = check_field("name", value)
    return name


def check_field(name: str, value: object) -> Any:
    """One value checked by the check of field ``name`` (:data:`FIELDS` or the state's).

    Raises :class:`FieldErrors` with that one problem.
    """
    check = FIELDS.get(name) or STATE_CHECKS[name]
    try:
        return check(value)
    except Refused as e:
        raise FieldErrors([(name, str(e))]) from None


def _has_nul(value: object) -> bool:
    """Whether a string anywhere in a JSON value (keys included) contains NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
