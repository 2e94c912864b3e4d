"""Label and field selectors, parsed once per request and matched per object.

Label selectors take equality (``a=b``, ``a==b``, ``a!=b``) and set-based requirements
(``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``). Field selectors take ``=``, ``==`` and ``!=`` on
the fields each resource supports, as the API server does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import bad_request
from .objects import Obj, lookup

_KEY = r"(?:[A-Za-z0-9.\-]+/)?[A-Za-z0-9](?:[A-Za-z0-9_.\-]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([A-Za-z0-9_.\-]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")

COMMON_FIELDS = ("metadata.name", "metadata.namespace")
FIELDS_BY_RESOURCE: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "nodes": ("spec.unschedulable",),
    "persistentvolumeclaims": (),
    "persistentvolumes": (),
}


@dataclass(frozen=True)
class Requirement:
    """One clause of a selector: ``key`` ``op`` ``values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, value: str | None) -> bool:
        if self.op == "exists":
            return value is not None
        if self.op == "!exists":
            return value is None
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _parse_label_clause(clause: str) -> Requirement:
    if m := _SET_RE.match(clause):
        values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
        return Requirement(m.group(1), m.group(2), values)
    if m := _EQ_RE.match(clause):
        op = "!=" if m.group(2) == "!=" else "="
        return Requirement(m.group(1), op, (m.group(3),))
    if m := _EXISTS_RE.match(clause):
        return Requirement(m.group(2), "!exists" if m.group(1) else "exists")
    raise bad_request(f"unable to parse requirement: invalid label selector: {clause.strip()!r}")


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a ``labelSelector`` query value; 400 BadRequest on bad syntax."""
    if not text or not text.strip():
        return ()
    return tuple(_parse_label_clause(c) for c in _split_top_level(text))


def parse_field_selector(text: str | None, resource: str) -> tuple[Requirement, ...]:
    """Parse a ``fieldSelector`` value, refusing fields the resource does not index."""
    if not text or not text.strip():
        return ()
    allowed = COMMON_FIELDS + FIELDS_BY_RESOURCE.get(resource, ())
    reqs = []
    for clause in text.split(","):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", clause)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{clause}'")
        if m.group(1) not in allowed:
            raise bad_request(f"field label not supported: {m.group(1)}")
        reqs.append(Requirement(m.group(1), "!=" if m.group(2) == "!=" else "=", (m.group(3),)))
    return tuple(reqs)


def _field_value(obj: Obj, key: str) -> str:
    value = lookup(obj, "source.component" if key == "source" else key)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Selector:
    """A label selector and a field selector together."""

    labels: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, label_text: str | None, field_text: str | None, resource: str) -> Selector:
        return cls(parse_label_selector(label_text), parse_field_selector(field_text, resource))

    @property
    def empty(self) -> bool:
        return not self.labels and not self.fields

    def matches(self, obj: Obj) -> bool:
        if self.labels:
            labels = obj.get("metadata", {}).get("labels") or {}
            if not all(r.matches(labels.get(r.key)) for r in self.labels):
                return False
        return all(r.matches(_field_value(obj, r.key)) for r in self.fields)
