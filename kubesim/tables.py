"""Server-side printing: ``meta.k8s.io/v1`` Tables with the columns ``kubectl get`` shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    seconds = max(int((now() - parse_timestamp(stamp)).total_seconds()), 0)
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


def _spec(obj: Obj, key: str, default: Any = "") -> Any:
    return (obj.get("spec") or {}).get(key, default)


def _status(obj: Obj, key: str, default: Any = "") -> Any:
    return (obj.get("status") or {}).get(key, default)


NAME: Column = ("Name", "string", 0, _name)
AGE: Column = ("Age", "string", 0, _age)
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
        ("Status", "string", 0, lambda o: _status(o, "phase")),
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


def _partial(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def to_table(resource_key: str, items: list[Obj], list_meta: Obj) -> Obj:
    """Render objects as a Table with the resource's columns (Name and Age by default)."""
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
        {"cells": [cell(obj) for _, _, _, cell in columns], "object": _partial(obj)}
        for obj in items
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
