"""Server-side printing: ``meta.k8s.io/v1`` Tables with the columns ``kubectl get`` shows."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from .errors import bad_request
from .objects import Obj, now, parse_timestamp

Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell
MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def human_age(stamp: str | None) -> str:
    """``5s``, ``3m2s``, ``2d3h`` — the short durations kubectl prints."""
    if not stamp:
        return "<unknown>"
    return human_duration((now() - parse_timestamp(stamp)).total_seconds())


def human_duration(elapsed: float) -> str:
    """A duration in seconds in kubectl's short form (negative counts as zero)."""
    seconds = max(int(elapsed), 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def _age(obj: Obj) -> str:
    return human_age(obj["metadata"].get("creationTimestamp"))


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def pod_status_text(pod: Obj) -> str:
    """The STATUS column: Terminating, a container's waiting/terminated reason, or the phase."""
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase", "Unknown")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            return str(state["waiting"]["reason"])
        if state.get("terminated", {}).get("reason"):
            return str(state["terminated"]["reason"])
    return str(reason)


def _pod_ready(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for cs in statuses if cs.get('ready'))}/{total}"


def _restarts(pod: Obj) -> int:
    return sum(
        cs.get("restartCount", 0) for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )


def _modes(obj: Obj) -> str:
    modes = (
        (obj.get("status") or {}).get("accessModes")
        or (obj.get("spec") or {}).get("accessModes")
        or []
    )
    return ",".join(MODES.get(m, m) for m in modes)


def _capacity(obj: Obj) -> str:
    cap = (obj.get("status") or {}).get("capacity") or (obj.get("spec") or {}).get("capacity") or {}
    return str(cap.get("storage", ""))


def _node_status(node: Obj) -> str:
    ready = [
        c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"
    ]
    text = "Ready" if ready and ready[0].get("status") == "True" else "NotReady"
    return text + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def _event_object(ev: Obj) -> str:
    io = ev.get("involvedObject") or {}
    return f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}"


def _sc_name(sc: Obj) -> str:
    default = (sc["metadata"].get("annotations") or {}).get(
        "storageclass.kubernetes.io/is-default-class"
    )
    return _name(sc) + (" (default)" if default == "true" else "")


def _ports(svc: Obj) -> str:
    ports = (svc.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _claim_status(claim: Obj) -> str:
    """A claim's STATUS: Terminating once deletion is requested (as the API server prints
    it), else its phase."""
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    return str(_status(claim, "phase"))


def _spec(obj: Obj, key: str, default: Any = "") -> Any:
    return (obj.get("spec") or {}).get(key, default)


def _status(obj: Obj, key: str, default: Any = "") -> Any:
    return (obj.get("status") or {}).get(key, default)


def _job_status(job: Obj) -> str:
    """The Status column of jobs: Complete, Failed, Terminating, Suspended or Running."""
    true = {c.get("type") for c in _status(job, "conditions", []) if c.get("status") == "True"}
    for condition in ("Complete", "Failed"):
        if condition in true:
            return condition
    if job["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return "Suspended" if "Suspended" in true else "Running"


def _job_completions(job: Obj) -> str:
    succeeded = _status(job, "succeeded", 0)
    completions = _spec(job, "completions", None)
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = _spec(job, "parallelism", None) or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(job: Obj) -> str:
    start, end = _status(job, "startTime", None), _status(job, "completionTime", None)
    if not start:
        return ""
    if not end:
        return human_age(start)
    return human_duration((parse_timestamp(end) - parse_timestamp(start)).total_seconds())


def _deployment_ready(deployment: Obj) -> str:
    return f"{_status(deployment, 'readyReplicas', 0)}/{_spec(deployment, 'replicas', 0)}"


def _budget(field: str) -> Callable[[Obj], str]:
    """A PodDisruptionBudget's ``minAvailable`` or ``maxUnavailable`` (int or percentage),
    ``N/A`` when unset, as ``printPodDisruptionBudget`` prints it."""

    def cell(pdb: Obj) -> str:
        value = _spec(pdb, field, None)
        return "N/A" if value is None else str(value)

    return cell


def _bool_text(value: bool | None) -> str:
    """``True``, ``False`` or ``<unset>``, as the printers show an optional boolean."""
    return "<unset>" if value is None else str(bool(value))


def _role_ref(binding: Obj) -> str:
    ref = binding.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects(kind: str) -> Callable[[Obj], str]:
    def cell(binding: Obj) -> str:
        subjects = [s for s in binding.get("subjects") or [] if s.get("kind") == kind]
        if kind == "ServiceAccount":
            return ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in subjects)
        return ", ".join(str(s.get("name", "")) for s in subjects)

    return cell


NAME: Column = ("Name", "string", 0, _name)
AGE: Column = ("Age", "string", 0, _age)
BINDING_COLUMNS: list[Column] = [
    NAME,
    ("Role", "string", 0, _role_ref),
    AGE,
    ("Users", "string", 1, _subjects("User")),
    ("Groups", "string", 1, _subjects("Group")),
    ("ServiceAccounts", "string", 1, _subjects("ServiceAccount")),
]
COLUMNS: dict[str, list[Column]] = {
    "pods": [
        NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, pod_status_text),
        ("Restarts", "string", 0, _restarts),
        AGE,
        ("IP", "string", 1, lambda p: _status(p, "podIP", "<none>")),
        ("Node", "string", 1, lambda p: _spec(p, "nodeName", "<none>")),
    ],
    "persistentvolumeclaims": [
        NAME,
        ("Status", "string", 0, _claim_status),
        ("Volume", "string", 0, lambda o: _spec(o, "volumeName")),
        ("Capacity", "string", 0, _capacity),
        ("Access Modes", "string", 0, _modes),
        ("StorageClass", "string", 0, lambda o: _spec(o, "storageClassName", "<unset>")),
        ("VolumeAttributesClass", "string", 0, lambda o: "<unset>"),
        AGE,
    ],
    "persistentvolumes": [
        NAME,
        ("Capacity", "string", 0, _capacity),
        ("Access Modes", "string", 0, _modes),
        ("Reclaim Policy", "string", 0, lambda o: _spec(o, "persistentVolumeReclaimPolicy")),
        ("Status", "string", 0, lambda o: _status(o, "phase")),
        (
            "Claim",
            "string",
            0,
            lambda o: "/".join(
                filter(
                    None,
                    [(_spec(o, "claimRef", {}) or {}).get(k, "") for k in ("namespace", "name")],
                )
            ),
        ),
        ("StorageClass", "string", 0, lambda o: _spec(o, "storageClassName")),
        ("VolumeAttributesClass", "string", 0, lambda o: "<unset>"),
        ("Reason", "string", 0, lambda o: _status(o, "reason")),
        AGE,
    ],
    "namespaces": [NAME, ("Status", "string", 0, lambda o: _status(o, "phase")), AGE],
    "nodes": [
        NAME,
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, lambda o: "<none>"),
        AGE,
        ("Version", "string", 0, lambda o: _status(o, "nodeInfo", {}).get("kubeletVersion", "")),
    ],
    "events": [
        (
            "Last Seen",
            "string",
            0,
            lambda e: human_age(e.get("lastTimestamp") or e.get("eventTime")),
        ),
        ("Type", "string", 0, lambda e: e.get("type", "")),
        ("Reason", "string", 0, lambda e: e.get("reason", "")),
        ("Object", "string", 0, _event_object),
        ("Message", "string", 0, lambda e: e.get("message", "")),
    ],
    "services": [
        NAME,
        ("Type", "string", 0, lambda o: _spec(o, "type")),
        ("Cluster-IP", "string", 0, lambda o: _spec(o, "clusterIP", "<none>")),
        ("External-IP", "string", 0, lambda o: "<none>"),
        ("Port(s)", "string", 0, _ports),
        AGE,
    ],
    "secrets": [
        NAME,
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        AGE,
    ],
    "configmaps": [
        NAME,
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        AGE,
    ],
    "serviceaccounts": [
        NAME,
        ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])),
        AGE,
    ],
    "storageclasses.storage.k8s.io": [
        ("Name", "string", 0, _sc_name),
        ("Provisioner", "string", 0, lambda o: o.get("provisioner", "")),
        ("ReclaimPolicy", "string", 0, lambda o: o.get("reclaimPolicy", "")),
        ("VolumeBindingMode", "string", 0, lambda o: o.get("volumeBindingMode", "")),
        ("AllowVolumeExpansion", "boolean", 0, lambda o: bool(o.get("allowVolumeExpansion"))),
        AGE,
    ],
    # Columns as the API server's printers define them (pkg/printers/internalversion).
    "leases.coordination.k8s.io": [
        NAME,
        ("Holder", "string", 0, lambda o: _spec(o, "holderIdentity", "") or ""),
        AGE,
    ],
    "poddisruptionbudgets.policy": [
        NAME,
        ("Min Available", "string", 0, _budget("minAvailable")),
        ("Max Unavailable", "string", 0, _budget("maxUnavailable")),
        (
            "Allowed Disruptions",
            "integer",
            0,
            lambda o: int(_status(o, "disruptionsAllowed", 0) or 0),
        ),
        AGE,
    ],
    "deployments.apps": [
        NAME,
        ("Ready", "string", 0, _deployment_ready),
        ("Up-to-date", "string", 0, lambda o: _status(o, "updatedReplicas", 0)),
        ("Available", "string", 0, lambda o: _status(o, "availableReplicas", 0)),
        AGE,
    ],
    "jobs.batch": [
        NAME,
        ("Status", "string", 0, _job_status),
        ("Completions", "string", 0, _job_completions),
        ("Duration", "string", 0, _job_duration),
        AGE,
    ],
    "cronjobs.batch": [
        NAME,
        ("Schedule", "string", 0, lambda o: _spec(o, "schedule")),
        ("Timezone", "string", 0, lambda o: _spec(o, "timeZone", None) or "<none>"),
        ("Suspend", "boolean", 0, lambda o: _bool_text(_spec(o, "suspend", None))),
        ("Active", "integer", 0, lambda o: len(_status(o, "active", []) or [])),
        (
            "Last Schedule",
            "string",
            0,
            lambda o: human_age(s) if (s := _status(o, "lastScheduleTime", None)) else "<none>",
        ),
        AGE,
    ],
    "rolebindings.rbac.authorization.k8s.io": BINDING_COLUMNS,
    "clusterrolebindings.rbac.authorization.k8s.io": BINDING_COLUMNS,
    "networkpolicies.networking.k8s.io": [
        NAME,
        (
            "Pod-Selector",
            "string",
            0,
            lambda o: (
                ",".join(
                    f"{k}={v}"
                    for k, v in (_spec(o, "podSelector", {}).get("matchLabels") or {}).items()
                )
                or "<none>"
            ),
        ),
        AGE,
    ],
}


class IncludeObject(StrEnum):
    """What each row carries in ``object`` (the ``includeObject`` query parameter)."""

    NONE = "None"
    METADATA = "Metadata"  # the default: a PartialObjectMetadata
    OBJECT = "Object"  # the whole object; kubectl asks for it to ``--sort-by`` a field

    @classmethod
    def parse(cls, text: str | None) -> IncludeObject:
        """The value of ``includeObject`` (default Metadata); 400 for anything else."""
        if not text:
            return cls.METADATA
        try:
            return cls(text)
        except ValueError as e:
            raise bad_request(
                f'includeObject must be one of "None", "Metadata", "Object", not {text!r}'
            ) from e


def _row_object(obj: Obj, include: IncludeObject) -> Obj | None:
    if include == IncludeObject.OBJECT:
        return obj
    if include == IncludeObject.NONE:
        return None
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def to_table(
    resource_key: str,
    items: list[Obj],
    list_meta: Obj,
    include: IncludeObject = IncludeObject.METADATA,
) -> Obj:
    """Render objects as a Table with the resource's columns (Name and Age by default).

    Each row's ``object`` follows ``include``: without the whole object kubectl cannot sort
    rows by a field (``kubectl get --sort-by``) and prints none.
    """
    columns = COLUMNS.get(resource_key, [NAME, AGE])
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": priority,
        }
        for name, kind, priority, _ in columns
    ]
    rows = [
        {"cells": [cell(obj) for _, _, _, cell in columns], "object": _row_object(obj, include)}
        for obj in items
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
