"""Protobuf request bodies as the JSON objects they stand for, or a 400/415 Status.

kubectl's typed ``create`` subcommands, ``auth can-i`` and ``create token`` post
``application/vnd.kubernetes.protobuf`` bodies. The kinds listed in :data:`.proto.KINDS` are
decoded (see :mod:`kubesim.proto`); any other kind is answered ``415 Unsupported Media Type``
naming the kind, so the client knows to send JSON. Responses are always JSON, which clients
that ask for protobuf accept.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError, bad_request
from .proto import UnsupportedKind, WireError, decode_object

PROTOBUF = "application/vnd.kubernetes.protobuf"


def is_protobuf(content_type: str) -> bool:
    """Whether a Content-Type header names the Kubernetes protobuf encoding."""
    return content_type.split(";")[0].strip().lower() == PROTOBUF


def decode_body(body: bytes) -> dict[str, Any]:
    """Decode a protobuf body; 400 when it is malformed, 415 when its kind is not modelled."""
    try:
        return decode_object(body)
    except UnsupportedKind as e:
        raise unsupported_kind(e.api_version, e.kind) from e
    except (WireError, ValueError) as e:
        raise bad_request(f"the body of the request was in an unknown format: {e}") from e


def unsupported_kind(api_version: str, kind: str) -> ApiError:
    """415 for a protobuf body kubesim cannot read."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"kubesim cannot decode a protobuf {kind} ({api_version}): send it as JSON "
        "(Content-Type: application/json)",
    )
