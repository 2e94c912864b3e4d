"""How a message table describes a field: its JSON name, what it holds, and when it is sent.

Kubernetes objects are gogo-protobuf ``proto2`` messages: a field that is a plain Go value
(``string``, ``int32``, a struct) is always written, even when empty, while pointers, slices and
maps are written only when set. The JSON encoding of the same object drops empty
``omitempty`` values. So a decoded field whose value is empty is dropped, as the JSON would
have it, unless :attr:`Field.keep` says the JSON carries it anyway (a Go pointer, where an
explicit ``0`` or ``false`` means something, or a field without ``omitempty``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a field holds on the wire and how it becomes JSON."""

    STRING = "string"
    INT = "int"  # int32/int64 varint, signed
    BOOL = "bool"
    BYTES = "bytes"  # JSON: base64
    MESSAGE = "message"  # a nested message, named by Field.message
    STRING_MAP = "map<string,string>"
    BYTES_MAP = "map<string,bytes>"  # JSON: values in base64
    QUANTITY_MAP = "map<string,Quantity>"
    QUANTITY = "Quantity"  # resource.Quantity {string = 1}: JSON "100m"
    INT_OR_STRING = "IntOrString"  # intstr {type = 1, intVal = 2, strVal = 3}
    TIME = "Time"  # meta/v1 Time {seconds = 1, nanos = 2}: JSON RFC 3339, seconds
    MICRO_TIME = "MicroTime"  # same message, JSON with microseconds


@dataclass(frozen=True)
class Field:
    """One field of a message table."""

    name: str
    kind: Kind = Kind.STRING
    message: str = ""
    repeated: bool = False
    keep: bool = False
    """Keep the value even when empty: a Go pointer (sent only when set, so an explicit ``0``,
    ``false`` or ``{}`` means something) or a JSON field without ``omitempty``."""
    inline: bool = False
    """Merge the nested message's fields into this one (``json:",inline"`` embedding)."""


Message = dict[int, Field]


def text(name: str, *, keep: bool = False) -> Field:
    return Field(name, keep=keep)


def texts(name: str) -> Field:
    return Field(name, repeated=True)


def number(name: str, *, keep: bool = False) -> Field:
    return Field(name, Kind.INT, keep=keep)


def flag(name: str, *, keep: bool = False) -> Field:
    return Field(name, Kind.BOOL, keep=keep)


def nested(name: str, message: str, *, keep: bool = False, inline: bool = False) -> Field:
    return Field(name, Kind.MESSAGE, message, keep=keep, inline=inline)


def nested_list(name: str, message: str) -> Field:
    return Field(name, Kind.MESSAGE, message, repeated=True)


def string_map(name: str) -> Field:
    return Field(name, Kind.STRING_MAP)


def metadata() -> Field:
    return nested("metadata", "ObjectMeta")
