"""Create and update checks for RBAC objects, beyond what the strict schema catches."""

from __future__ import annotations

from .objects import Obj
from .validation import Cause, invalid_value, not_supported, required

SUBJECT_KINDS = ("Group", "ServiceAccount", "User")
RBAC_API_GROUP = "rbac.authorization.k8s.io"


def validate_role(role: Obj) -> list[Cause]:
    """Every rule names verbs, and resources or non-resource URLs (not both in a Role)."""
    causes: list[Cause] = []
    namespaced = role.get("kind") == "Role"
    for i, rule in enumerate(role.get("rules") or []):
        field = f"rules[{i}]"
        if not rule.get("verbs"):
            causes.append(required(f"{field}.verbs"))
        urls = rule.get("nonResourceURLs") or []
        if urls and namespaced:
            causes.append(
                invalid_value(
                    f"{field}.nonResourceURLs",
                    urls,
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if urls and rule.get("resources"):
            causes.append(
                invalid_value(
                    f"{field}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        if not urls and not rule.get("resources"):
            causes.append(required(f"{field}.resources"))
        if rule.get("resources") and "apiGroups" not in rule:
            causes.append(required(f"{field}.apiGroups"))
    return causes


def validate_binding(binding: Obj) -> list[Cause]:
    """A roleRef to a Role or ClusterRole, and well-formed subjects."""
    ref = binding.get("roleRef") or {}
    cluster = binding.get("kind") == "ClusterRoleBinding"
    kinds = ("ClusterRole",) if cluster else ("ClusterRole", "Role")
    causes: list[Cause] = []
    if ref.get("apiGroup") != RBAC_API_GROUP:
        causes.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), (RBAC_API_GROUP,)))
    if ref.get("kind") not in kinds:
        causes.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        causes.append(required("roleRef.name"))
    for i, subject in enumerate(binding.get("subjects") or []):
        causes += _check_subject(subject, f"subjects[{i}]", cluster)
    return causes


def _check_subject(subject: Obj, field: str, cluster: bool) -> list[Cause]:
    kind = subject.get("kind")
    if kind not in SUBJECT_KINDS:
        return [not_supported(f"{field}.kind", kind or "", SUBJECT_KINDS)]
    causes: list[Cause] = [] if subject.get("name") else [required(f"{field}.name")]
    if kind == "ServiceAccount" and cluster and not subject.get("namespace"):
        causes.append(required(f"{field}.namespace"))
    return causes


def validate_binding_update(old: Obj, new: Obj) -> list[Cause]:
    if old.get("roleRef") != new.get("roleRef"):
        return [invalid_value("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []
