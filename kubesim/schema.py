"""Strict JSON-schema checks from ``kubernetes-validate``, loaded lazily and cached per kind.

``kubernetes_validate.validate`` re-reads the schema files on every call; kubesim builds one
validator per kind instead and keeps it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from .objects import Obj

SCHEMA_VERSION = "1.32.0"


@dataclass(frozen=True)
class SchemaProblem:
    """One schema violation: what kind of failure, where, and why."""

    kind: str  # "unknown", "required", "type", "invalid"
    path: list[str | int]
    message: str

    @property
    def field(self) -> str:
        return format_path(self.path)


def format_path(path: list[str | int]) -> str:
    """``["spec", "containers", 0, "name"]`` → ``spec.containers[0].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@functools.lru_cache(maxsize=64)
def _validator(api_version: str, kind: str) -> Any:
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{SCHEMA_VERSION}-local-strict"
    try:
        schema = utils.schema_contents(
            f"{folder}/{kind.lower()}-{group_version}.json", SCHEMA_VERSION
        )
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", SCHEMA_VERSION)
    registry: Any = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _problem(error: Any) -> list[SchemaProblem]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        return [
            SchemaProblem("unknown", [*path, k], f'unknown field "{format_path([*path, k])}"')
            for k in extra
        ]
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return [SchemaProblem("required", [*path, m], "Required value") for m in missing]
    if error.validator == "type":
        return [SchemaProblem("type", path, error.message)]
    if error.validator in ("oneOf", "anyOf"):
        # int-or-string and quantity fields: report them as a type problem at that path.
        return [SchemaProblem("type", path, f"{error.instance!r} is not a valid value")]
    return [SchemaProblem("invalid", path, error.message)]


def schema_problems(obj: Obj) -> list[SchemaProblem]:
    """All violations of the strict schema for ``obj``'s apiVersion and kind."""
    validator = _validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if validator is None:
        return []
    problems: list[SchemaProblem] = []
    for error in validator.iter_errors(obj):
        problems.extend(_problem(error))
    return problems


def drop_path(obj: Obj, path: list[str | int]) -> None:
    """Remove the value at ``path`` (used to prune unknown fields, as decoding does)."""
    node: Any = obj
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)
