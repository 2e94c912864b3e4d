"""The protobuf wire format: varints and tagged fields, nothing about any message.

See https://protobuf.dev/programming-guides/encoding/: a message is a sequence of
``(field number << 3 | wire type)`` keys, each followed by a varint (type 0), 8 bytes (1),
a length-prefixed byte string (2, also used for nested messages and packed repeated scalars)
or 4 bytes (5). Groups (3, 4) are not used by Kubernetes and are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_WIDTHS = {FIXED64: 8, FIXED32: 4}


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(frozen=True)
class Value:
    """One occurrence of a field: its wire type and raw value (an int or bytes)."""

    wire: int
    raw: int | bytes


Fields = dict[int, list[Value]]


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def _take(data: bytes, pos: int, length: int) -> tuple[bytes, int]:
    end = pos + length
    if end > len(data):
        raise WireError("truncated field")
    return data[pos:end], end


def _read_value(data: bytes, pos: int, wire: int) -> tuple[int | bytes, int]:
    if wire == VARINT:
        return read_varint(data, pos)
    if wire == LENGTH:
        length, pos = read_varint(data, pos)
        return _take(data, pos, length)
    if wire in _WIDTHS:
        return _take(data, pos, _WIDTHS[wire])
    raise WireError(f"unsupported wire type {wire}")


def parse_fields(data: bytes) -> Fields:
    """Split one message into field number → occurrences, in the order they came."""
    fields: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        raw, pos = _read_value(data, pos, wire)
        fields.setdefault(number, []).append(Value(wire, raw))
    return fields


def packed_varints(data: bytes) -> list[int]:
    """The values of a packed repeated varint field."""
    values, pos = [], 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        values.append(value)
    return values


def signed(value: int) -> int:
    """A varint read as int64/int32: negative numbers arrive as 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value
