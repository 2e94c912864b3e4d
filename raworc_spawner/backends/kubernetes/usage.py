"""Session CPU use from the resource metrics API (``metrics.k8s.io/v1beta1`` PodMetrics).

metrics-server (or kubesim) answers a LIST of PodMetrics with each running pod's containers and
their ``usage.cpu`` (a quantity, usually nanocores: ``123456789n``) averaged over ``window``
(k8s.io/metrics ``pkg/apis/metrics/v1beta1/types.go``). A session's use is the sum over its
pod's containers, in millicores.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from raworc_spawner.backends.kubernetes.naming import session_id_of_name
from raworc_spawner.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]


def pod_millicores(metrics: Obj) -> float | None:
    """The CPU of one PodMetrics summed over its containers, in millicores (None: unreadable)."""
    total = 0.0
    for container in metrics.get("containers") or []:
        cpu = (container.get("usage") or {}).get("cpu")
        if cpu is None:
            continue
        try:
            total += float(parse_quantity(str(cpu))) * 1000
        except QuantityError:
            return None
    return total


def millicores_by_session(items: Iterable[Obj], wanted: Collection[str]) -> dict[str, float]:
    """Session id → millicores, for the sessions in ``wanted`` that have a sample."""
    usage: dict[str, float] = {}
    for metrics in items:
        name = str((metrics.get("metadata") or {}).get("name") or "")
        sid = session_id_of_name(name)
        if sid is None or sid not in wanted or name.startswith("session-pvc-"):
            continue
        millicores = pod_millicores(metrics)
        if millicores is not None:
            usage[sid] = round(millicores, 3)
    return usage
