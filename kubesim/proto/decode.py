"""Table-driven decoding of Kubernetes protobuf bodies into the JSON-shaped dicts they stand for.

A body is the magic ``k8s\\0`` followed by a ``runtime.Unknown`` envelope
(``k8s.io/apimachinery/pkg/runtime/generated.proto``: ``typeMeta = 1`` holding
``apiVersion = 1`` and ``kind = 2``, ``raw = 2`` holding the object's own message,
``contentEncoding = 3``, ``contentType = 4``). The object message is decoded field by field
from the tables in :mod:`.core` and :mod:`.groups`.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from .core import CORE_OBJECTS, META, POD_TEMPLATE
from .fields import Field, Kind, Message
from .groups import APPS, BATCH, OTHERS, RBAC
from .wire import LENGTH, VARINT, Value, WireError, packed_varints, parse_fields, signed

MAGIC = b"k8s\x00"
MESSAGES: dict[str, Message] = {
    **META,
    **CORE_OBJECTS,
    **POD_TEMPLATE,
    **APPS,
    **BATCH,
    **RBAC,
    **OTHERS,
}
#: The top-level kinds kubesim decodes: (apiVersion, kind) → message table.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Secret"): "Secret",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "ResourceQuota"): "ResourceQuota",
    ("v1", "Service"): "Service",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    # ClusterRoleBinding has RoleBinding's fields and numbers (rbac/v1/generated.proto).
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "RoleBinding",
    ("scheduling.k8s.io/v1", "PriorityClass"): "PriorityClass",
    ("coordination.k8s.io/v1", "Lease"): "Lease",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
}
_EMPTY: tuple[Any, ...] = ("", 0, False, {}, None)


class UnsupportedKind(Exception):
    """A well-formed body whose kind kubesim has no message table for."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"{kind} ({api_version})")
        self.api_version = api_version
        self.kind = kind


def decode_object(body: bytes) -> dict[str, Any]:
    """The object a protobuf request body carries, as the JSON object with the same meaning.

    Raises :class:`~.wire.WireError` for a malformed body and :class:`UnsupportedKind` for a
    kind without a table.
    """
    api_version, kind, raw = read_envelope(body)
    name = KINDS.get((api_version, kind))
    if name is None:
        raise UnsupportedKind(api_version, kind)
    return {"kind": kind, "apiVersion": api_version, **decode_message(name, raw)}


def read_envelope(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw object bytes) from a ``k8s\\0`` + ``runtime.Unknown`` body."""
    if not body.startswith(MAGIC):
        raise WireError("protobuf body without the k8s magic prefix")
    envelope = parse_fields(body[len(MAGIC) :])
    if _last_text(envelope, 3):
        raise WireError(f"unsupported content encoding {_last_text(envelope, 3)!r}")
    type_meta = parse_fields(_last_bytes(envelope, 1))
    return _last_text(type_meta, 1), _last_text(type_meta, 2), _last_bytes(envelope, 2)


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    """Decode one message by its table; empty values are dropped unless the field keeps them."""
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, values in parse_fields(data).items():
        field = table.get(number)
        if field is None:
            continue  # a field kubesim does not model; the JSON decoder would keep it
        if field.repeated:
            out[field.name] = [item for v in values for item in _items(field, v)]
        elif field.kind in _MAPS:
            out[field.name] = {k: _MAPS[field.kind](v) for k, v in _entries(values)}
        else:
            value = _convert(field, values[-1])
            if field.inline:
                out.update(value)
            elif field.keep or value not in _EMPTY:
                out[field.name] = value
    return out


def _items(field: Field, value: Value) -> list[Any]:
    if field.kind == Kind.INT and value.wire == LENGTH:
        return [signed(v) for v in packed_varints(_bytes(value))]
    return [_convert(field, value)]


def _convert(field: Field, value: Value) -> Any:
    kind = field.kind
    if kind == Kind.STRING:
        return _bytes(value).decode()
    if kind == Kind.INT:
        return signed(_int(value))
    if kind == Kind.BOOL:
        return bool(_int(value))
    if kind == Kind.BYTES:
        return base64.b64encode(_bytes(value)).decode()
    if kind == Kind.MESSAGE:
        return decode_message(field.message, _bytes(value))
    if kind == Kind.QUANTITY:
        return _quantity(value)
    if kind == Kind.INT_OR_STRING:
        return _int_or_string(value)
    return _time(value, micro=kind == Kind.MICRO_TIME)


def _quantity(value: Value) -> str:
    return _last_text(parse_fields(_bytes(value)), 1)


def _int_or_string(value: Value) -> int | str:
    fields = parse_fields(_bytes(value))
    if fields.get(1) and _int(fields[1][-1]) == 1:
        return _last_text(fields, 3)
    return signed(_int(fields[2][-1])) if fields.get(2) else 0


def _time(value: Value, *, micro: bool) -> str | None:
    fields = parse_fields(_bytes(value))
    seconds = signed(_int(fields[1][-1])) if fields.get(1) else 0
    nanos = _int(fields[2][-1]) if fields.get(2) else 0
    if not seconds and not nanos:
        return None  # the zero time: JSON null
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=nanos // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _entries(values: list[Value]) -> list[tuple[str, Value | None]]:
    """Map fields: repeated entry messages with ``key = 1`` and ``value = 2``."""
    entries = []
    for v in values:
        entry = parse_fields(_bytes(v))
        entries.append((_last_text(entry, 1), entry[2][-1] if entry.get(2) else None))
    return entries


def _text_value(value: Value | None) -> str:
    return _bytes(value).decode() if value is not None else ""


def _bytes_value(value: Value | None) -> str:
    return base64.b64encode(_bytes(value) if value is not None else b"").decode()


def _quantity_value(value: Value | None) -> str:
    return _quantity(value) if value is not None else "0"


_MAPS = {
    Kind.STRING_MAP: _text_value,
    Kind.BYTES_MAP: _bytes_value,
    Kind.QUANTITY_MAP: _quantity_value,
}


def _bytes(value: Value) -> bytes:
    if value.wire != LENGTH or not isinstance(value.raw, bytes):
        raise WireError(f"expected a length-delimited field, got wire type {value.wire}")
    return value.raw


def _int(value: Value) -> int:
    if value.wire != VARINT or not isinstance(value.raw, int):
        raise WireError(f"expected a varint field, got wire type {value.wire}")
    return value.raw


def _last_bytes(fields: dict[int, list[Value]], number: int) -> bytes:
    values = fields.get(number)
    return _bytes(values[-1]) if values else b""


def _last_text(fields: dict[int, list[Value]], number: int) -> str:
    return _last_bytes(fields, number).decode()
