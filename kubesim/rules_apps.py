"""Deployments are stored and validated only: no controller creates ReplicaSets or pods."""

from __future__ import annotations

from .objects import Obj
from .validation import Cause, forbidden_change, invalid_value


def default_deployment(deployment: Obj) -> None:
    spec = deployment.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault(
        "strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    )
    deployment["status"] = {}


def validate_deployment(deployment: Obj) -> list[Cause]:
    """The selector must select the template's labels (no controller acts on it)."""
    spec = deployment.get("spec") or {}
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return [
            invalid_value(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            )
        ]
    return []


def validate_deployment_update(old: Obj, new: Obj) -> list[Cause]:
    old_selector = (old.get("spec") or {}).get("selector")
    if old_selector != (new.get("spec") or {}).get("selector"):
        return [forbidden_change("spec.selector", "field is immutable")]
    return []
