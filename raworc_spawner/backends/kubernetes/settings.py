"""The Kubernetes backend's settings: the seed's ``KUBERNETES_*`` variables, validated eagerly."""

from __future__ import annotations

import re
from typing import Any

from traitlets import Enum, Unicode, validate
from traitlets.config import LoggingConfigurable

from raworc_spawner.errors import InvalidConfig
from raworc_spawner.quantity import QUANTITY_HELP, QuantityError, parse_quantity

_DNS1123_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_LABEL = "1 to 63 lowercase letters, digits or '-', starting and ending alphanumeric"


class KubernetesSettings(LoggingConfigurable):
    """Where and how session pods and PVCs are created (``KUBERNETES_*`` in the environment)."""

    namespace = Unicode(
        "raworc-sessions",
        help="""Kubernetes namespace for session pods and PVCs (KUBERNETES_NAMESPACE).""",
    ).tag(config=True)

    image = Unicode(
        "python:3.11-slim",
        help="""Container image of session pods (KUBERNETES_IMAGE).""",
    ).tag(config=True)

    image_pull_policy = Enum(
        ["Always", "IfNotPresent", "Never"],
        default_value="IfNotPresent",
        help="""Image pull policy of session containers (KUBERNETES_IMAGE_PULL_POLICY): Always,
        IfNotPresent or Never.""",
    ).tag(config=True)

    cpu_request = Unicode(
        "100m",
        help="""CPU guaranteed to each session, a Kubernetes quantity in cores (``100m`` = 0.1
        core) (KUBERNETES_CPU_REQUEST). Empty means no request.""",
    ).tag(config=True)

    memory_request = Unicode(
        "128Mi",
        help="""Memory guaranteed to each session, a quantity in bytes (``128Mi``)
        (KUBERNETES_MEMORY_REQUEST). Empty means no request.""",
    ).tag(config=True)

    cpu_limit = Unicode(
        "1000m",
        help="""Most CPU a session may use, a quantity in cores (KUBERNETES_CPU_LIMIT). Empty
        means no limit.""",
    ).tag(config=True)

    memory_limit = Unicode(
        "1Gi",
        help="""Most memory a session may use, a quantity in bytes; above it the container is
        OOM-killed (KUBERNETES_MEMORY_LIMIT). Empty means no limit.""",
    ).tag(config=True)

    storage_size = Unicode(
        "1Gi",
        help="""Size requested for each session's workspace PVC (KUBERNETES_STORAGE_SIZE).""",
    ).tag(config=True)

    storage_class = Unicode(
        "",
        help="""StorageClass of workspace PVCs (KUBERNETES_STORAGE_CLASS). Empty means the
        cluster's default class.""",
    ).tag(config=True)

    @validate("cpu_request", "memory_request", "cpu_limit", "memory_limit")
    def _check_resource(self, proposal: dict[str, Any]) -> str:
        return _quantity(proposal, allow_empty=True)

    @validate("storage_size")
    def _check_storage(self, proposal: dict[str, Any]) -> str:
        return _quantity(proposal, allow_empty=False)

    @validate("namespace")
    def _check_namespace(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if not is_dns1123_label(value):
            raise InvalidConfig("KubernetesSettings.namespace", value, _DNS1123_LABEL)
        return value

    @validate("image")
    def _check_image(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        if not value or any(ch.isspace() for ch in value):
            raise InvalidConfig("KubernetesSettings.image", value, "a non-empty image reference")
        return value

    def check(self) -> None:
        """Cross-field checks: each request must not exceed its limit."""
        for kind in ("cpu", "memory"):
            request, limit = getattr(self, f"{kind}_request"), getattr(self, f"{kind}_limit")
            if request and limit and parse_quantity(request) > parse_quantity(limit):
                raise InvalidConfig(
                    f"KubernetesSettings.{kind}_request",
                    request,
                    f"must not exceed KubernetesSettings.{kind}_limit ({limit})",
                )

    def resources(self) -> dict[str, dict[str, str]]:
        """The container ``resources`` block (requests and limits that are set)."""
        requests = {"cpu": self.cpu_request, "memory": self.memory_request}
        limits = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        return {
            "requests": {k: v for k, v in requests.items() if v},
            "limits": {k: v for k, v in limits.items() if v},
        }


def is_dns1123_label(value: str) -> bool:
    """Whether ``value`` is a DNS-1123 label (a Kubernetes namespace or object name part)."""
    return _DNS1123_LABEL_RE.fullmatch(value) is not None


def _quantity(proposal: dict[str, Any], *, allow_empty: bool) -> str:
    value = str(proposal["value"]).strip()
    name = f"KubernetesSettings.{proposal['trait'].name}"
    if not value and allow_empty:
        return value
    try:
        amount = parse_quantity(value)
    except QuantityError as e:
        raise InvalidConfig(name, value, QUANTITY_HELP) from e
    if amount < 0:
        raise InvalidConfig(name, value, "a quantity that is not negative")
    return value
