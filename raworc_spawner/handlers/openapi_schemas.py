"""The component schemas of the OpenAPI document (:mod:`raworc_spawner.handlers.openapi`).

Request schemas take their limits from :mod:`raworc_spawner.sessions.requests`, event kinds and
states from :mod:`raworc_spawner.sessions.model`, so the document cannot drift from them silently.
"""

from __future__ import annotations

from typing import Any

from raworc_spawner.sessions import requests
from raworc_spawner.sessions.model import EventKind, SessionState

Schema = dict[str, Any]

NULLABLE_STRING: Schema = {"type": ["string", "null"]}
TIMESTAMP: Schema = {"type": ["string", "null"], "format": "date-time"}
STATES = [state.value for state in SessionState]


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    """A closed object schema (no properties beyond those listed)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


# -- schemas --------------------------------------------------------------------------------------

_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": requests.MAX_NAME_LENGTH}
_NAMESPACE: Schema = {
    "type": "string",
    "pattern": requests.NAMESPACE_PATTERN,
    "description": "Logical grouping; the server's default namespace when left out.",
}
_PROMPT: Schema = {
    "type": "string",
    "maxLength": requests.MAX_PROMPT_LENGTH,
    "description": f"At most {requests.MAX_PROMPT_BYTES} bytes in UTF-8, without NUL.",
}
_AGENT_IDS: Schema = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "maxItems": requests.MAX_AGENT_IDS,
}
_METADATA: Schema = {
    "type": "object",
    "description": f"Free-form JSON, at most {requests.MAX_METADATA_BYTES} bytes serialized.",
}
_TIMEOUT: Schema = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": requests.MAX_WAITING_TIMEOUT,
    "description": "Seconds without activity before a ready session is paused; 0 means never.",
}

SESSION = obj(
    {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string"},
        "namespace": {"type": "string", "description": "Logical grouping (not Kubernetes')."},
        "owner": {"type": "string"},
        "starting_prompt": {"type": "string"},
        "agent_ids": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object"},
        "profile": NULLABLE_STRING,
        "state": {"type": "string", "enum": STATES},
        "waiting_timeout_seconds": {"type": ["integer", "null"]},
        "container_id": {
            **NULLABLE_STRING,
            "description": "The current compute: the pod's UID on Kubernetes; on the local "
            "backend a UUID made at each process start.",
        },
        "persistent_volume_id": {
            **NULLABLE_STRING,
            "description": "The workspace: pvc-<PVC UID> on Kubernetes; on the local backend "
            "pvc-<UUID> made when the workspace directory is created.",
        },
        "parent_session_id": NULLABLE_STRING,
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": TIMESTAMP,
        "last_activity_at": TIMESTAMP,
        "terminated_at": TIMESTAMP,
        "termination_reason": NULLABLE_STRING,
        "error": {**NULLABLE_STRING, "description": "Human-readable cause of the error state."},
        "backend": {
            **NULLABLE_STRING,
            "description": "The backend the session's workspace and compute are on "
            "(kubernetes, local).",
        },
        "instance": {
            **NULLABLE_STRING,
            "description": "The owner instance whose server made the session's objects.",
        },
    }
)

SESSION_EVENT = obj(
    {
        "session_id": {"type": "string", "format": "uuid"},
        "seq": {"type": "integer", "minimum": 0, "description": "0 only on `deleted` events."},
        "kind": {"type": "string", "enum": [kind.value for kind in EventKind]},
        "message": {"type": "string"},
        "state": {"type": ["string", "null"], "enum": [*STATES, None]},
        "reason": NULLABLE_STRING,
        "timestamp": {"type": "string", "format": "date-time"},
    }
)

ERROR = obj(
    {
        "error": obj(
            {
                "code": {"type": "string", "description": "Stable machine-readable code."},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The offending field (422 only)."},
            },
            required=["code", "message"],
        )
    }
)

SCHEMAS: dict[str, Schema] = {
    "Session": SESSION,
    "SessionEvent": SESSION_EVENT,
    "SessionEventList": {"type": "array", "items": ref("SessionEvent")},
    "SessionPage": obj(
        {
            "items": {"type": "array", "items": ref("Session")},
            "next_cursor": {**NULLABLE_STRING, "description": "null on the last page."},
        }
    ),
    "SessionStatus": obj(
        {
            "session": ref("Session"),
            "backend": {"type": "object", "description": "Compute and workspace detail."},
            "events": {"type": "array", "items": ref("SessionEvent")},
            "progress": {
                "type": "array",
                "items": ref("SessionEvent"),
                "description": "Recent progress and warnings from the backend (not stored).",
            },
        }
    ),
    "CreateSession": obj(
        {
            "name": _NAME,
            "namespace": _NAMESPACE,
            "starting_prompt": _PROMPT,
            "agent_ids": _AGENT_IDS,
            "metadata": _METADATA,
            "waiting_timeout_seconds": _TIMEOUT,
            "profile": NULLABLE_STRING,
        },
        required=["name"],
    ),
    "UpdateSession": obj(
        {
            "name": _NAME,
            "starting_prompt": _PROMPT,
            "agent_ids": _AGENT_IDS,
            "metadata": _METADATA,
            "waiting_timeout_seconds": _TIMEOUT,
        },
        required=[],
    ),
    "RemixSession": obj(
        {
            "name": _NAME,
            "namespace": _NAMESPACE,
            "starting_prompt": _PROMPT,
            "agent_ids": _AGENT_IDS,
            "metadata": _METADATA,
            "waiting_timeout_seconds": _TIMEOUT,
            "profile": NULLABLE_STRING,
        },
        required=[],
    ),
    "StateChange": obj(
        {
            "state": {
                "type": "string",
                "enum": [state.value for state in requests.SETTABLE_STATES],
            },
            "new_workspace": {
                "type": "boolean",
                "description": "With state ready: resume on a new, empty workspace when the "
                "old one is lost (WorkspaceLost) or on another backend. Default false.",
            },
        },
        required=["state"],
    ),
    "Error": ERROR,
    "Health": obj(
        {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "version": {"type": "string"},
            "backend": {"type": "string"},
            "store": {"type": "string", "enum": ["ok", "unreachable"]},
        }
    ),
    "Version": obj({"version": {"type": "string"}, "api": {"type": "string"}}),
}
