"""Per-resource behaviour on create and update: defaults, checks and immutable fields."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable

from . import rules_apps, rules_pod, rules_rbac
from .errors import bad_request
from .objects import Obj, micro_timestamp, parse_timestamp, timestamp
from .validation import Cause, check_enum, check_quantity, forbidden_change, invalid_value, required

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
NORMALIZE: dict[str, Normalizer] = {"leases.coordination.k8s.io": _normalize_lease}
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
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
}
