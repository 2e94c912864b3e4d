"""Pod defaults, value checks and update rules the schema does not express."""

from __future__ import annotations

from typing import Any

from .objects import Obj
from .quantity import QuantityError, parse_quantity
from .validation import (
    Cause,
    check_enum,
    check_name,
    check_quantity,
    forbidden_change,
    invalid_value,
    required,
)

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)"
)


def default_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or untagged images, ``IfNotPresent`` otherwise."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def _default_container(c: Obj) -> None:
    c.setdefault("imagePullPolicy", default_pull_policy(str(c.get("image", ""))))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")


def default_pod(pod: Obj) -> None:
    """Fill the defaults the API server adds to a new pod."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    if "serviceAccount" in spec and "serviceAccountName" not in spec:
        spec["serviceAccountName"] = spec["serviceAccount"]
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(c, dict):
            _default_container(c)
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tolerations):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        set(r.get("limits") or {}) >= {"cpu", "memory"}
        and all(
            (r.get("requests") or r.get("limits") or {}).get(k) == r["limits"][k]
            for k in ("cpu", "memory")
        )
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _check_resources(c: Obj, field: str) -> list[Cause]:
    causes: list[Cause] = []
    resources = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for res, value in (resources.get(kind) or {}).items():
            causes += check_quantity(value, f"{field}.resources.{kind}[{res}]")
    if causes:
        return causes
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    for res, req in requests.items():
        if res in limits and parse_quantity(req) > parse_quantity(limits[res]):
            causes.append(
                invalid_value(
                    f"{field}.resources.requests",
                    req,
                    f"must be less than or equal to {res} limit of {limits[res]}",
                )
            )
    return causes


ID_FIELDS = ("runAsUser", "runAsGroup", "fsGroup")
MAX_ID = 2147483647


def _check_ids(sc: Obj, field: str) -> list[Cause]:
    """User and group ids in a securityContext: 0 … 2147483647, as the API server checks."""
    causes: list[Cause] = []
    for key in ID_FIELDS:
        value = sc.get(key)
        if value is not None and (not isinstance(value, int) or not 0 <= value <= MAX_ID):
            causes.append(
                invalid_value(
                    f"{field}.securityContext.{key}",
                    value,
                    f"must be between 0 and {MAX_ID}, inclusive",
                )
            )
    return causes


def _check_container(c: Obj, field: str, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = _check_ids(c.get("securityContext") or {}, field)
    if not c.get("name"):
        causes.append(required(f"{field}.name"))
    else:
        causes += check_name(str(c["name"]), "label", f"{field}.name")
    if not c.get("image"):
        causes.append(required(f"{field}.image"))
    causes += check_enum(c.get("imagePullPolicy"), f"{field}.imagePullPolicy", "imagePullPolicy")
    causes += _check_resources(c, field)
    for i, port in enumerate(c.get("ports") or []):
        number = port.get("containerPort")
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append(
                invalid_value(
                    f"{field}.ports[{i}].containerPort",
                    number,
                    "must be between 1 and 65535, inclusive",
                )
            )
        causes += check_enum(port.get("protocol"), f"{field}.ports[{i}].protocol", "protocol")
    for i, mount in enumerate(c.get("volumeMounts") or []):
        causes += _check_sub_path(mount, f"{field}.volumeMounts[{i}]")
        if mount.get("name") not in volumes:
            causes.append(
                (
                    "FieldValueNotFound",
                    f"{field}.volumeMounts[{i}].name",
                    f'Not found: "{mount.get("name")}"',
                )
            )
    return causes


def _check_sub_path(mount: Obj, field: str) -> list[Cause]:
    """``subPath``/``subPathExpr`` must descend into the volume (apimachinery's
    ``validateLocalDescendingPath``): relative, and without a ``..`` element."""
    causes: list[Cause] = []
    for key in ("subPath", "subPathExpr"):
        value = mount.get(key)
        if not isinstance(value, str) or not value:
            continue
        if value.startswith("/"):
            causes.append(invalid_value(f"{field}.{key}", value, "must be a relative path"))
        if ".." in value.replace("\\", "/").split("/"):
            causes.append(invalid_value(f"{field}.{key}", value, "must not contain '..'"))
    return causes


def _check_volumes(spec: Obj) -> tuple[list[Cause], set[str]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        name = str(vol.get("name", ""))
        if name in names:
            causes.append(
                ("FieldValueDuplicate", f"spec.volumes[{i}].name", f'Duplicate value: "{name}"')
            )
        names.add(name)
        causes += check_name(name, "label", f"spec.volumes[{i}].name")
        claim = vol.get("persistentVolumeClaim")
        if claim is not None and not claim.get("claimName"):
            causes.append(required(f"spec.volumes[{i}].persistentVolumeClaim.claimName"))
    return causes, names


def validate_pod(pod: Obj) -> list[Cause]:
    """Check what the schema cannot: enums, quantities, names, references, uniqueness."""
    spec = pod.get("spec") or {}
    causes, volumes = _check_volumes(spec)
    causes += _check_ids(spec.get("securityContext") or {}, "spec")
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required("spec.containers"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            field = f"spec.{group}[{i}]"
            if c.get("name") in seen:
                causes.append(
                    ("FieldValueDuplicate", f"{field}.name", f'Duplicate value: "{c["name"]}"')
                )
            seen.add(c.get("name"))
            causes += _check_container(c, field, volumes)
    causes += check_enum(spec.get("restartPolicy"), "spec.restartPolicy", "restartPolicy")
    causes += check_enum(spec.get("dnsPolicy"), "spec.dnsPolicy", "dnsPolicy")
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        causes.append(invalid_value("spec.terminationGracePeriodSeconds", grace, "must be >= 0"))
    return causes


def _mutable_view(spec: Obj) -> Any:
    """The pod spec with the fields an update may change blanked out."""
    view = dict(spec)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        view.pop(key, None)
    for group in ("containers", "initContainers"):
        view[group] = [dict(c, image=None) for c in spec.get(group) or []]
    return view


def validate_pod_update(old: Obj, new: Obj) -> list[Cause]:
    if _mutable_view(old.get("spec") or {}) != _mutable_view(new.get("spec") or {}):
        return [forbidden_change("spec", POD_UPDATE_FORBIDDEN)]
    return []


def pod_requests(pod: Obj) -> dict[str, float]:
    """Total cpu (cores) and memory (bytes) the pod's containers request."""
    total = {"cpu": 0.0, "memory": 0.0}
    for c in (pod.get("spec") or {}).get("containers") or []:
        requests = (c.get("resources") or {}).get("requests") or {}
        limits = (c.get("resources") or {}).get("limits") or {}
        for res in total:
            value = requests.get(res, limits.get(res))
            if value is not None:
                try:
                    total[res] += float(parse_quantity(value))
                except QuantityError:
                    continue
    return total
