"""Just enough of the Kubernetes protobuf encoding to read the bodies kubectl sends that way.

Typed clients in kubectl (``auth can-i``, ``create token``) post protobuf: the magic ``k8s\\0``
followed by a ``runtime.Unknown`` envelope whose ``raw`` field holds the object. kubesim decodes
SelfSubjectAccessReview and TokenRequest this way and answers in JSON, which clients accept.
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request

MAGIC = b"k8s\x00"
Fields = dict[int, list[Any]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def parse_fields(data: bytes) -> Fields:
    """Decode one message into field number → values (ints or bytes)."""
    fields: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _text(fields: Fields, number: int) -> str:
    values = fields.get(number)
    return values[-1].decode() if values else ""


def _message(fields: Fields, number: int) -> Fields:
    values = fields.get(number)
    return parse_fields(values[-1]) if values else {}


def decode_access_review(body: bytes) -> dict[str, Any]:
    """A protobuf SelfSubjectAccessReview as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body without the k8s magic prefix")
    try:
        envelope = parse_fields(body[len(MAGIC) :])
        review = parse_fields(envelope.get(2, [b""])[-1])
        spec = _message(review, 2)
    except (ValueError, IndexError) as e:
        raise bad_request(f"cannot decode protobuf body: {e}") from e
    out: dict[str, Any] = {}
    if 1 in spec:
        attrs = _message(spec, 1)
        names = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
        out["resourceAttributes"] = {n: _text(attrs, i + 1) for i, n in enumerate(names)}
    if 2 in spec:
        attrs = _message(spec, 2)
        out["nonResourceAttributes"] = {"path": _text(attrs, 1), "verb": _text(attrs, 2)}
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": out,
    }


def decode_token_request(body: bytes) -> dict[str, Any]:
    """A protobuf TokenRequest (``kubectl create token``) as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise bad_request("protobuf body without the k8s magic prefix")
    try:
        envelope = parse_fields(body[len(MAGIC) :])
        request = parse_fields(envelope.get(2, [b""])[-1])
        spec = _message(request, 2)
    except (ValueError, IndexError) as e:
        raise bad_request(f"cannot decode protobuf body: {e}") from e
    out: dict[str, Any] = {"audiences": [a.decode() for a in spec.get(1, [])]}
    if 4 in spec:
        out["expirationSeconds"] = spec[4][-1]
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": out}
