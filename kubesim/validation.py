"""Object validation: names, labels, the strict schema, and the value checks the schema lacks.

Problems are collected as ``(reason, field, message)`` causes and raised together as one 422,
the way the API server reports an invalid object.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError, bad_request, invalid
from .objects import Obj
from .quantity import QuantityError, parse_quantity
from .resources import ResourceType
from .schema import drop_path, schema_problems

Cause = tuple[str, str, str]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
    "or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

ENUMS: dict[str, tuple[str, ...]] = {
    "imagePullPolicy": ("Always", "IfNotPresent", "Never"),
    "restartPolicy": ("Always", "OnFailure", "Never"),
    "accessModes": ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"),
    "volumeMode": ("Block", "Filesystem"),
    "protocol": ("SCTP", "TCP", "UDP"),
    "policyTypes": ("Egress", "Ingress"),
    "dnsPolicy": ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
    "preemptionPolicy": ("Never", "PreemptLowerPriority"),
}


def invalid_value(field: str, value: Any, message: str) -> Cause:
    return ("FieldValueInvalid", field, f"Invalid value: {_quote(value)}: {message}")


def required(field: str) -> Cause:
    return ("FieldValueRequired", field, "Required value")


def not_supported(field: str, value: Any, allowed: tuple[str, ...]) -> Cause:
    options = ", ".join(f'"{a}"' for a in allowed)
    return (
        "FieldValueNotSupported",
        field,
        f"Unsupported value: {_quote(value)}: supported values: {options}",
    )


def forbidden_change(field: str, message: str) -> Cause:
    return ("FieldValueForbidden", field, f"Forbidden: {message}")


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def check_name(name: str, rule: str, field: str = "metadata.name") -> list[Cause]:
    """Check an object name against the resource's naming rule."""
    if rule == "path":
        bad = name in (".", "..") or "/" in name or "%" in name
        return [invalid_value(field, name, "may not contain '/' or '%'")] if bad else []
    pattern, message, limit = {
        "subdomain": (_SUBDOMAIN, SUBDOMAIN_MSG, 253),
        "label": (_LABEL, LABEL_MSG, 63),
        "label1035": (_LABEL_1035, LABEL_1035_MSG, 63),
    }[rule]
    causes = []
    if len(name) > limit:
        causes.append(invalid_value(field, name, f"must be no more than {limit} characters"))
    if not pattern.match(name):
        causes.append(invalid_value(field, name, message))
    return causes


def check_qualified_key(key: str, field: str) -> list[Cause]:
    """Check a label or annotation key: an optional DNS subdomain prefix, then a name part."""
    prefix, _, part = key.rpartition("/")
    causes = []
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        causes.append(invalid_value(field, key, "prefix part " + SUBDOMAIN_MSG))
    if not part or len(part) > 63 or not _QUALIFIED.match(part):
        causes.append(invalid_value(field, key, QUALIFIED_MSG))
    return causes


def check_metadata(obj: Obj, rt: ResourceType) -> list[Cause]:
    """Names, label keys and values, annotation keys."""
    m = obj.get("metadata") or {}
    causes = check_name(str(m.get("name", "")), rt.name_rule)
    for key, value in (m.get("labels") or {}).items():
        causes += check_qualified_key(key, "metadata.labels")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(invalid_value("metadata.labels", value, LABEL_VALUE_MSG))
    for key in m.get("annotations") or {}:
        causes += check_qualified_key(key, "metadata.annotations")
    return causes


def check_quantity(value: Any, field: str, *, positive: bool = False) -> list[Cause]:
    try:
        amount = parse_quantity(value)
    except QuantityError:
        return [
            invalid_value(
                field,
                value,
                "quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            )
        ]
    if amount < 0:
        return [invalid_value(field, value, "must be greater than or equal to 0")]
    if positive and amount == 0:
        return [invalid_value(field, value, "must be greater than zero")]
    return []


def check_enum(value: Any, field: str, enum: str) -> list[Cause]:
    allowed = ENUMS[enum]
    return [] if value is None or value in allowed else [not_supported(field, value, allowed)]


def apply_schema(
    obj: Obj, rt: ResourceType, field_validation: str
) -> tuple[list[Cause], list[str]]:
    """Check ``obj`` against the strict schema; return (causes, warnings).

    Unknown fields follow ``fieldValidation``: ``Strict`` rejects them with 400, ``Warn`` (the
    default) drops them with a warning, ``Ignore`` drops them silently. Type errors are 400s.
    """
    causes: list[Cause] = []
    warnings: list[str] = []
    for problem in schema_problems(obj):
        if problem.kind == "unknown":
            if field_validation == "Strict":
                raise bad_request(f"strict decoding error: {problem.message}")
            drop_path(obj, problem.path)
            if field_validation != "Ignore":
                warnings.append(problem.message)
        elif problem.kind == "type":
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                f"{rt.kind}: {problem.field}: {problem.message}"
            )
        elif problem.kind == "required":
            causes.append(required(problem.field))
        else:
            causes.append(invalid_value(problem.field, "", problem.message))
    return causes, warnings


def raise_if_invalid(rt: ResourceType, name: str, causes: list[Cause]) -> None:
    if causes:
        raise invalid(rt, name, causes)


def validation_error(rt: ResourceType, name: str, causes: list[Cause]) -> ApiError:
    return invalid(rt, name, causes)
