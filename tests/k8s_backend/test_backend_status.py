"""The Kubernetes backend's typed answers: its status JSON, its caches before start, its records."""

from __future__ import annotations

import json

import pytest

from kubesim import KubeSim
from raworc_spawner.backends.base import ComputeState, Inventory
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from raworc_spawner.backends.status import KubernetesStatus
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.requests import parse_create
from tests.k8s_backend.conftest import BackendOf
from tests.k8s_backend.test_sessions_on_kubernetes import ALICE, pod, pvc, wait_state

POD_KEYS = [
    "name",
    "uid",
    "phase",
    "state",
    "terminating",
    "node",
    "pod_ip",
    "host_ip",
    "started_at",
    "image",
    "resources",
    "conditions",
    "containers",
]
PVC_KEYS = [
    "name",
    "uid",
    "phase",
    "terminating",
    "volume_name",
    "storage_class",
    "requested",
    "capacity",
    "access_modes",
]
EVENT_KEYS = ["type", "reason", "message", "object", "count", "last_timestamp"]


@pytest.mark.asyncio
async def test_a_backend_answers_from_empty_caches_before_it_starts() -> None:
    backend = KubernetesBackend()
    sid = "66709101-b7dd-460f-95a3-799177797a5c"
    assert backend.compute_state(sid) is ComputeState.ABSENT
    assert backend.address(sid) is None
    assert await backend.inventory() == Inventory()
    assert (await backend.status(sid)).to_dict() == {
        "backend": "kubernetes",
        "namespace": "raworc-sessions",
        "compute": {"state": "absent", "reason": None, "message": None},
        "pod": None,
        "pvc": None,
        "events": [],
    }
    await backend.close()  # closing a backend that never started is harmless


@pytest.mark.asyncio
async def test_the_status_of_a_ready_session_is_the_pod_the_claim_and_their_events(
    kubesim: KubeSim, k8s_manager: SessionManager, backend_of: BackendOf
) -> None:
    session = await k8s_manager.create(ALICE, parse_create({"name": "shown"}))
    await wait_state(k8s_manager, session.id, "ready")
    status = await backend_of(k8s_manager).status(session.id)
    assert isinstance(status, KubernetesStatus)
    data = json.loads(json.dumps(status.to_dict()))  # JSON-ready as it is
    assert list(data) == ["backend", "namespace", "compute", "pod", "pvc", "events"]
    assert data["compute"] == {"state": "running", "reason": None, "message": None}
    the_pod, the_pvc = pod(kubesim, session.id), pvc(kubesim, session.id)
    assert the_pod is not None and the_pvc is not None
    assert list(data["pod"]) == POD_KEYS
    assert data["pod"]["name"] == f"session-{session.id}"
    assert data["pod"]["uid"] == the_pod["metadata"]["uid"]
    assert (data["pod"]["phase"], data["pod"]["state"]) == ("Running", "running")
    assert {"type": "Ready", "status": "True"}.items() <= data["pod"]["conditions"][-1].items()
    assert list(data["pvc"]) == PVC_KEYS
    assert data["pvc"]["name"] == f"session-pvc-{session.id}"
    assert (data["pvc"]["phase"], data["pvc"]["requested"]) == ("Bound", "1Gi")
    assert data["pvc"]["access_modes"] == ["ReadWriteOnce"]
    assert all(list(event) == EVENT_KEYS for event in data["events"])


@pytest.mark.asyncio
async def test_a_deleted_session_leaves_no_status_behind(
    kubesim: KubeSim, k8s_manager: SessionManager, backend_of: BackendOf
) -> None:
    session = await k8s_manager.create(ALICE, parse_create({"name": "gone"}))
    await wait_state(k8s_manager, session.id, "ready")
    await k8s_manager.delete(ALICE, session.id)
    status = (await backend_of(k8s_manager).status(session.id)).to_dict()
    assert (status["pod"], status["pvc"], status["events"]) == (None, None, [])
    assert status["compute"] == {"state": "absent", "reason": None, "message": None}
