"""A container's environment as the kubelet builds it: ``envFrom``, then ``env`` in order.

Follows the kubelet's ``makeEnvironmentVariables``: ``envFrom`` sources first (ConfigMaps and
Secrets, each key optionally prefixed), then each ``env`` entry; a literal ``value`` has its
``$(VAR)`` references expanded from everything defined before it (``valueFrom`` results and
``envFrom`` values are not expanded). Supported ``valueFrom``: ``fieldRef`` (the paths of the
Downward API), ``resourceFieldRef`` (``limits.*``/``requests.*`` of cpu and memory),
``configMapKeyRef`` and ``secretKeyRef``. Service links (``FOO_SERVICE_HOST``) are not made.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable

from ..objects import Obj
from ..quantity import QuantityError, parse_quantity
from ..store import Store
from .expansion import expand

_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
# Names 1.32 accepts (RelaxedEnvironmentVariableValidation, beta): printable ASCII but "=".
_VALID_NAME = re.compile(r"^[\x20-\x3c\x3e-\x7e]+$")


class ContainerConfigError(Exception):
    """The container cannot be configured (``CreateContainerConfigError``): a missing ref."""


class EnvBuilder:
    """Resolves ``env``/``envFrom`` of a container of ``pod`` against the objects in ``store``."""

    def __init__(self, store: Store, pod: Obj) -> None:
        self.store = store
        self.pod = pod
        self.namespace = str(pod["metadata"]["namespace"])

    def build(self, container: Obj) -> dict[str, str]:
        """The variables the container defines, in the kubelet's order and precedence."""
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            env.update(self._from_source(source))
        for item in container.get("env") or []:
            name = str(item["name"])
            if item.get("value"):
                env[name] = expand(str(item["value"]), env)
            elif item.get("valueFrom"):
                value = self._value_from(item["valueFrom"], container)
                if value is None:
                    continue  # an optional reference that is missing: no variable at all
                env[name] = value
            else:
                env[name] = ""
        return env

    # -- envFrom -------------------------------------------------------------------------------
    def _from_source(self, source: Obj) -> dict[str, str]:
        prefix = str(source.get("prefix") or "")
        if "configMapRef" in source:
            ref, kind, decode = source["configMapRef"], "configmap", _plain
            obj = self.store.get("configmaps", self.namespace, str(ref.get("name", "")))
        else:
            ref, kind, decode = source.get("secretRef") or {}, "secret", _b64
            obj = self.store.get("secrets", self.namespace, str(ref.get("name", "")))
        if obj is None:
            if ref.get("optional"):
                return {}
            raise ContainerConfigError(f'{kind} "{ref.get("name")}" not found')
        data = obj.get("data") or {}
        return {
            prefix + key: decode(value)
            for key, value in data.items()
            if _VALID_NAME.match(prefix + key)
        }

    # -- valueFrom -----------------------------------------------------------------------------
    def _value_from(self, source: Obj, container: Obj) -> str | None:
        if "fieldRef" in source:
            return self._field(str(source["fieldRef"].get("fieldPath", "")))
        if "resourceFieldRef" in source:
            return self._resource(source["resourceFieldRef"], container)
        if "configMapKeyRef" in source:
            return self._key_ref(source["configMapKeyRef"], "configmaps", "configmap", _plain)
        if "secretKeyRef" in source:
            return self._key_ref(source["secretKeyRef"], "secrets", "secret", _b64)
        return None

    def _key_ref(
        self, ref: Obj, resource: str, kind: str, decode: Callable[[str], str]
    ) -> str | None:
        name, key = str(ref.get("name", "")), str(ref.get("key", ""))
        obj = self.store.get(resource, self.namespace, name)
        if obj is None:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(f'{kind} "{name}" not found')
        data = obj.get("data") or {}
        if key not in data:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(
                f"couldn't find key {key} in {kind.capitalize()} {self.namespace}/{name}"
            )
        return decode(str(data[key]))

    def _field(self, path: str) -> str:
        """A Downward API ``fieldRef`` (the kubelet's ``podFieldSelectorRuntimeValue``)."""
        m, spec, status = (
            self.pod["metadata"],
            self.pod.get("spec") or {},
            self.pod.get("status") or {},
        )
        match = _LABEL_REF.match(path)
        if match:
            return str((m.get(match.group(1)) or {}).get(match.group(2), ""))
        simple = {
            "metadata.name": m.get("name"),
            "metadata.namespace": m.get("namespace"),
            "metadata.uid": m.get("uid"),
            "spec.nodeName": spec.get("nodeName"),
            "spec.serviceAccountName": spec.get("serviceAccountName"),
            "status.hostIP": status.get("hostIP"),
            "status.podIP": status.get("podIP"),
            "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs") or []),
            "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or []),
        }
        if path not in simple:
            raise ContainerConfigError(f"unsupported fieldPath: {path}")
        return str(simple[path] or "")

    def _resource(self, ref: Obj, container: Obj) -> str:
        """``resourceFieldRef``: a limit (node allocatable when unset) or request, in divisors."""
        what = str(ref.get("resource", ""))
        kind, _, res = what.partition(".")
        target = container
        if ref.get("containerName"):
            target = next(
                (c for c in self.pod["spec"]["containers"] if c["name"] == ref["containerName"]),
                container,
            )
        resources = target.get("resources") or {}
        value = (resources.get(kind) or {}).get(res)
        if value is None and kind == "requests":
            value = (resources.get("limits") or {}).get(res)
        if value is None:
            value = self._allocatable(res) if kind == "limits" else "0"
        try:
            amount = parse_quantity(value) / parse_quantity(ref.get("divisor") or "1")
        except (QuantityError, ArithmeticError) as e:
            raise ContainerConfigError(f"resourceFieldRef {what}: {e}") from e
        return str(max(math.ceil(amount), 1 if res == "cpu" else 0)) if amount else "0"

    def _allocatable(self, res: str) -> str:
        node = self.store.get("nodes", "", str(self.pod["spec"].get("nodeName", ""))) or {}
        return str(((node.get("status") or {}).get("allocatable") or {}).get(res, "0"))


def _plain(value: str) -> str:
    return str(value)


def _b64(value: str) -> str:
    return base64.b64decode(value).decode(errors="replace")
