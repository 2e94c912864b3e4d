"""Per-resource behaviour on create and update: defaults, checks and immutable fields."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from . import rules_apps, rules_pod, rules_rbac
from .errors import bad_request
from .objects import Obj, micro_timestamp, parse_timestamp, timestamp
from .validation import (
    Cause,
    check_enum,
    check_quantity,
    forbidden_change,
    invalid_value,
    not_supported,
    required,
)

HIGHEST_USER_PRIORITY = 1_000_000_000
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def _default_pvc(pvc: Obj) -> None:
    spec = pvc.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    finalizers = pvc["metadata"].setdefault("finalizers", [])
    if PVC_PROTECTION not in finalizers:
        finalizers.append(PVC_PROTECTION)
    pvc["status"] = {"phase": "Pending"}


def _default_pv(pv: Obj) -> None:
    spec = pv.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    finalizers = pv["metadata"].setdefault("finalizers", [])
    if PV_PROTECTION not in finalizers:
        finalizers.append(PV_PROTECTION)
    pv.setdefault("status", {"phase": "Pending" if not spec.get("claimRef") else "Bound"})


def _default_namespace(ns: Obj) -> None:
    ns.setdefault("spec", {})["finalizers"] = ["kubernetes"]
    ns["status"] = {"phase": "Active"}
    labels = ns["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = ns["metadata"]["name"]


def _default_service(svc: Obj) -> None:
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    svc["status"] = {"loadBalancer": {}}


def _default_secret(secret: Obj) -> None:
    secret.setdefault("type", "Opaque")
    data = secret.setdefault("data", {})
    for key, value in (secret.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def _default_event(event: Obj) -> None:
    stamp = timestamp()
    event.setdefault("count", 1)
    event.setdefault("firstTimestamp", stamp)
    event.setdefault("lastTimestamp", event["firstTimestamp"])
    event.setdefault("type", "Normal")
    event.setdefault("source", {})
    event.setdefault("reportingComponent", "")
    event.setdefault("reportingInstance", "")


def _default_storage_class(sc: Obj) -> None:
    sc.setdefault("reclaimPolicy", "Delete")
    sc.setdefault("volumeBindingMode", "Immediate")


def _validate_pvc(pvc: Obj) -> list[Cause]:
    spec = pvc.get("spec") or {}
    modes = spec.get("accessModes") or []
    causes: list[Cause] = [] if modes else [required("spec.accessModes")]
    for i, mode in enumerate(modes):
        causes += check_enum(mode, f"spec.accessModes[{i}]", "accessModes")
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None:
        causes.append(required("spec.resources[storage]"))
    else:
        causes += check_quantity(storage, "spec.resources[storage]", positive=True)
    causes += check_enum(spec.get("volumeMode"), "spec.volumeMode", "volumeMode")
    return causes


def _validate_netpol(policy: Obj) -> list[Cause]:
    spec = policy.get("spec") or {}
    causes: list[Cause] = []
    for i, kind in enumerate(spec.get("policyTypes") or []):
        causes += check_enum(kind, f"spec.policyTypes[{i}]", "policyTypes")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            for j, port in enumerate(rule.get("ports") or []):
                causes += check_enum(
                    port.get("protocol"), f"spec.{direction}[{i}].ports[{j}].protocol", "protocol"
                )
            for j, peer in enumerate(rule.get(peers) or []):
                if not peer:
                    causes.append(required(f"spec.{direction}[{i}].{peers}[{j}]"))
    return causes


def _validate_secret(secret: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in (secret.get("data") or {}).items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            causes.append(
                invalid_value(f"data[{key}]", "<secret contents redacted>", "illegal base64 data")
            )
    return causes


def _normalize_lease(lease: Obj) -> None:
    """Store acquire and renew times as ``metav1.MicroTime`` writes them (UTC, microseconds).

    Clients send any RFC 3339 form (``+00:00``, fewer digits); the API server parses and
    re-serialises them. 400 when one does not parse, as decoding fails there.
    """
    spec = lease.get("spec") or {}
    for key in ("acquireTime", "renewTime"):
        value = spec.get(key)
        if value is None:
            continue
        try:
            moment = parse_timestamp(str(value)).astimezone(dt.UTC)
        except ValueError as e:
            raise bad_request(
                f'Lease in version "v1" cannot be handled as a Lease: spec.{key}: '
                f"cannot parse {value!r} as RFC 3339"
            ) from e
        spec[key] = micro_timestamp(moment)


def _validate_lease(lease: Obj) -> list[Cause]:
    """Durations and transition counts, as the coordination API's validation checks them."""
    spec = lease.get("spec") or {}
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.append(
            invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0")
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        causes.append(
            invalid_value(
                "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
            )
        )
    return causes


# k8s.io/apimachinery util/validation IsValidPercent: its regex, message and examples.
_PERCENT = re.compile(r"[0-9]+%")
PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)
_GO_INT_MAX = 2**63 - 1
UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")
# The Go heap addresses ``%#v`` prints for the spec's pointer fields vary from call to call;
# kubesim prints these fixed stand-ins in their place (``(nil)`` for unset fields, as Go does).
_SPEC_POINTERS = (
    ("MinAvailable", "minAvailable", "*intstr.IntOrString", "0xc000a10020"),
    ("Selector", "selector", "*v1.LabelSelector", "0xc000a10040"),
    ("MaxUnavailable", "maxUnavailable", "*intstr.IntOrString", "0xc000a10000"),
    (
        "UnhealthyPodEvictionPolicy",
        "unhealthyPodEvictionPolicy",
        "*policy.UnhealthyPodEvictionPolicyType",
        "0xc000a10060",
    ),
)


def _go_invalid(field: str, rendered: str, message: str) -> Cause:
    """``field.Invalid`` for a value Go prints with ``%#v`` (no quotes added)."""
    return ("FieldValueInvalid", field, f"Invalid value: {rendered}: {message}")


def _go_int_or_string(value: str) -> str:
    """A string ``intstr.IntOrString`` as ``%#v`` prints it (``Type:1`` is ``intstr.String``)."""
    quoted = json.dumps(value, ensure_ascii=False)
    return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{quoted}}}"


def _go_pdb_spec(spec: Obj) -> str:
    """The internal ``policy.PodDisruptionBudgetSpec`` as ``%#v`` prints it."""
    fields = ", ".join(
        f"{go_name}:({go_type})({address if spec.get(key) is not None else 'nil'})"
        for go_name, key, go_type, address in _SPEC_POINTERS
    )
    return f"policy.PodDisruptionBudgetSpec{{{fields}}}"


def _check_int_or_percent(value: Any, field: str) -> list[Cause]:
    """``ValidatePositiveIntOrPercent`` then ``IsNotMoreThan100Percent`` (apps validation).

    An integer must be >= 0; a string must be digits then ``%`` (so ``"1"``, ``"-1%"`` and
    ``"1.5%"`` are malformed) and at most 100%. Values the schema refuses (bools, floats)
    never reach here: they are 400s when decoding.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            return [invalid_value(field, value, "must be greater than or equal to 0")]
        return []
    if not isinstance(value, str):
        return []
    if not _PERCENT.fullmatch(value):
        return [_go_invalid(field, _go_int_or_string(value), PERCENT_MSG)]
    percent = int(value[:-1])
    # getPercentValue parses with strconv.Atoi, which fails past int64: the value reads as 0.
    if 100 < percent <= _GO_INT_MAX:
        return [_go_invalid(field, _go_int_or_string(value), "must not be greater than 100%")]
    return []


def _normalize_pdb(pdb: Obj) -> None:
    """Drop ``null`` spec fields: they decode to nil pointers, which are omitted when stored."""
    spec = pdb.get("spec")
    if isinstance(spec, dict):
        for key in [k for k, v in spec.items() if v is None]:
            del spec[key]


def _validate_pdb(pdb: Obj) -> list[Cause]:
    """``ValidatePodDisruptionBudgetSpec`` (k8s.io/kubernetes pkg/apis/policy/validation).

    At most one of ``minAvailable`` and ``maxUnavailable``; each a non-negative integer or a
    percentage from 0% to 100%; a known ``unhealthyPodEvictionPolicy``.
    """
    spec = pdb.get("spec") or {}
    causes: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(
            _go_invalid(
                "spec", _go_pdb_spec(spec), "minAvailable and maxUnavailable cannot be both set"
            )
        )
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            causes += _check_int_or_percent(spec[key], f"spec.{key}")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        causes.append(
            not_supported(
                "spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES
            )
        )
    return causes


def _default_priority_class(pc: Obj) -> None:
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")


def _validate_priority_class(pc: Obj) -> list[Cause]:
    """User-defined classes: at most 1e9, and the ``system-`` prefix is reserved."""
    causes: list[Cause] = []
    name = str(pc["metadata"].get("name", ""))
    if name.startswith("system-"):
        causes.append(
            invalid_value(
                "metadata.name", name, "priority class names with 'system-' prefix are reserved"
            )
        )
    value = pc.get("value")
    if isinstance(value, int) and value > HIGHEST_USER_PRIORITY:
        causes.append(
            forbidden_change(
                "value",
                f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}",
            )
        )
    causes += check_enum(pc.get("preemptionPolicy"), "preemptionPolicy", "preemptionPolicy")
    return causes


def _validate_priority_class_update(old: Obj, new: Obj) -> list[Cause]:
    if old.get("value") != new.get("value"):
        return [forbidden_change("value", "may not be changed in an update.")]
    return []


def _validate_quota(quota: Obj) -> list[Cause]:
    hard = (quota.get("spec") or {}).get("hard") or {}
    causes: list[Cause] = []
    for resource, amount in hard.items():
        causes += check_quantity(amount, f"spec.hard[{resource}]")
    return causes


def _validate_pvc_update(old: Obj, new: Obj) -> list[Cause]:
    old_spec, new_spec = dict(old.get("spec") or {}), dict(new.get("spec") or {})
    for spec in (old_spec, new_spec):
        spec.pop("resources", None)
        spec.pop("volumeName", None) if not old_spec.get("volumeName") else None
    if old_spec != new_spec:
        return [
            forbidden_change(
                "spec",
                "spec is immutable after creation except resources.requests "
                "and volumeAttributesClassName for bound claims",
            )
        ]
    return []


Defaulter = Callable[[Obj], None]
Normalizer = Callable[[Obj], None]
Checker = Callable[[Obj], list[Cause]]
UpdateChecker = Callable[[Obj, Obj], list[Cause]]

DEFAULTS: dict[str, Defaulter] = {
    "pods": rules_pod.default_pod,
    "persistentvolumeclaims": _default_pvc,
    "persistentvolumes": _default_pv,
    "namespaces": _default_namespace,
    "services": _default_service,
    "secrets": _default_secret,
    "events": _default_event,
    "storageclasses.storage.k8s.io": _default_storage_class,
    "deployments.apps": rules_apps.default_deployment,
    "jobs.batch": rules_apps.default_job,
    "cronjobs.batch": rules_apps.default_cron_job,
    "priorityclasses.scheduling.k8s.io": _default_priority_class,
}
#: Applied on every write (create, update, patch), after defaults, before validation.
NORMALIZE: dict[str, Normalizer] = {
    "leases.coordination.k8s.io": _normalize_lease,
    "poddisruptionbudgets.policy": _normalize_pdb,
}
CHECKS: dict[str, Checker] = {
    "pods": rules_pod.validate_pod,
    "persistentvolumeclaims": _validate_pvc,
    "networkpolicies.networking.k8s.io": _validate_netpol,
    "secrets": _validate_secret,
    "roles.rbac.authorization.k8s.io": rules_rbac.validate_role,
    "clusterroles.rbac.authorization.k8s.io": rules_rbac.validate_role,
    "rolebindings.rbac.authorization.k8s.io": rules_rbac.validate_binding,
    "clusterrolebindings.rbac.authorization.k8s.io": rules_rbac.validate_binding,
    "deployments.apps": rules_apps.validate_deployment,
    "jobs.batch": rules_apps.validate_job,
    "cronjobs.batch": rules_apps.validate_cron_job,
    "leases.coordination.k8s.io": _validate_lease,
    "priorityclasses.scheduling.k8s.io": _validate_priority_class,
    "resourcequotas": _validate_quota,
    "poddisruptionbudgets.policy": _validate_pdb,
}
UPDATE_CHECKS: dict[str, UpdateChecker] = {
    "pods": rules_pod.validate_pod_update,
    "persistentvolumeclaims": _validate_pvc_update,
    "rolebindings.rbac.authorization.k8s.io": rules_rbac.validate_binding_update,
    "clusterrolebindings.rbac.authorization.k8s.io": rules_rbac.validate_binding_update,
    "deployments.apps": rules_apps.validate_deployment_update,
    "jobs.batch": rules_apps.validate_job_update,
    "priorityclasses.scheduling.k8s.io": _validate_priority_class_update,
}
SCHEMA_CHECKED = {
    "pods",
    "persistentvolumeclaims",
    "networkpolicies.networking.k8s.io",
    "services",
    "configmaps",
    "secrets",
    "namespaces",
    "persistentvolumes",
    "serviceaccounts",
    "storageclasses.storage.k8s.io",
    "deployments.apps",
    "jobs.batch",
    "cronjobs.batch",
    "leases.coordination.k8s.io",
    "priorityclasses.scheduling.k8s.io",
    "resourcequotas",
    "poddisruptionbudgets.policy",
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
}
