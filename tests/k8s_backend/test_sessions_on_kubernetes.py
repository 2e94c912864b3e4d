"""Sessions on the Kubernetes backend: the seed's objects, fail-fast, pause/resume/delete."""

from __future__ import annotations

import asyncio
import time

import pytest

from kubesim import KubeSim
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal, Session, SessionState
from raworc_spawner.sessions.requests import parse_create
from tests.k8s_backend.conftest import BackendOf, ManagerFactory

ALICE = Principal("alice")
NS = "raworc-sessions"


async def wait_state(manager: SessionManager, sid: str, state: str, timeout: float = 10) -> Session:
    async with asyncio.timeout(timeout):
        while (session := await manager.get(ALICE, sid)).state != state:
            await asyncio.sleep(0.02)
    return session


def pod(sim: KubeSim, sid: str) -> dict | None:
    return sim.store.get("pods", NS, f"session-{sid}")


def pvc(sim: KubeSim, sid: str) -> dict | None:
    return sim.store.get("persistentvolumeclaims", NS, f"session-pvc-{sid}")


@pytest.mark.asyncio
async def test_a_session_is_a_pvc_and_a_pod_with_the_seeds_names_and_labels(
    kubesim: KubeSim, k8s_manager: SessionManager
) -> None:
    session = await k8s_manager.create(
        ALICE,
        parse_create({"name": "ml-training-session", "starting_prompt": "ML model training"}),
    )
    the_pod, the_pvc = pod(kubesim, session.id), pvc(kubesim, session.id)
    assert the_pod is not None and the_pvc is not None
    assert session.container_id == the_pod["metadata"]["uid"]
    assert session.persistent_volume_id == f"pvc-{the_pvc['metadata']['uid']}"
    labels = {
        "app": "raworc",
        "component": "session",
        "session-id": session.id,
        "session-name": "ml-training-session",
    }
    assert the_pod["metadata"]["labels"].items() >= labels.items()
    assert the_pvc["metadata"]["labels"].items() >= labels.items()
    container = the_pod["spec"]["containers"][0]
    assert container["workingDir"] == "/workspace"
    assert {"name": "workspace", "mountPath": "/workspace"}.items() <= next(
        m for m in container["volumeMounts"] if m["mountPath"] == "/workspace"
    ).items()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SESSION_ID"] == session.id and env["STARTING_PROMPT"] == "ML model training"
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1000m", "memory": "1Gi"},
    }
    assert the_pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert the_pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    ready = await wait_state(k8s_manager, session.id, "ready")
    assert ready.container_id == the_pod["metadata"]["uid"]


@pytest.mark.asyncio
async def test_a_create_costs_exactly_two_writes_and_waiting_costs_no_requests(
    kubesim: KubeSim, k8s_manager: SessionManager
) -> None:
    kubesim.counters.reset()
    sessions = [await k8s_manager.create(ALICE, parse_create({"name": f"s{i}"})) for i in range(5)]
    for session in sessions:
        await wait_state(k8s_manager, session.id, "ready")
    await asyncio.sleep(0.3)  # sit idle
    writes = {
        verb: kubesim.counters.total(verb=verb) for verb in ("create", "update", "patch", "delete")
    }
    assert writes == {"create": 10, "update": 0, "patch": 0, "delete": 0}
    assert kubesim.counters.total(verb="list") == 0
    assert kubesim.counters.total(verb="get") == 0


@pytest.mark.asyncio
async def test_a_bad_image_fails_the_session_with_the_reason_within_seconds(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager(KubernetesSettings__image="registry.example/does-not-exist:1")
    began = time.monotonic()
    session = await manager.create(ALICE, parse_create({"name": "bad-image"}))
    failed = await wait_state(manager, session.id, "error")
    assert time.monotonic() - began < 10
    assert failed.termination_reason in ("ErrImagePull", "ImagePullBackOff")
    assert "does-not-exist" in (failed.error or "")
    async with asyncio.timeout(2):  # the event is recorded just after the state is written
        while "failed" not in [e.kind for e in await manager.events(ALICE, session.id)]:
            await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_an_unknown_storage_class_fails_with_provisioning_failed(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager(KubernetesSettings__storage_class="no-such-class")
    session = await manager.create(ALICE, parse_create({"name": "nowhere"}))
    failed = await wait_state(manager, session.id, "error")
    assert failed.termination_reason == "ProvisioningFailed"


@pytest.mark.asyncio
async def test_an_unschedulable_pod_fails_after_the_grace_with_the_schedulers_message(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager(
        KubernetesSettings__cpu_request="500", KubernetesSettings__cpu_limit="500"
    )
    session = await manager.create(ALICE, parse_create({"name": "too-big"}))
    failed = await wait_state(manager, session.id, "error")
    assert failed.termination_reason == "Unschedulable"
    assert "0/1 nodes are available" in (failed.error or "")


@pytest.mark.asyncio
async def test_pause_deletes_the_pod_keeps_the_pvc_and_resume_reuses_it(
    kubesim: KubeSim, k8s_manager: SessionManager
) -> None:
    session = await k8s_manager.create(ALICE, parse_create({"name": "sleepy"}))
    await wait_state(k8s_manager, session.id, "ready")
    claim = pvc(kubesim, session.id)
    assert claim is not None
    pvc_uid = claim["metadata"]["uid"]
    paused = await k8s_manager.set_state(ALICE, session.id, SessionState.IDLE)
    assert paused.state == "idle"
    assert pod(kubesim, session.id) is None
    kept = pvc(kubesim, session.id)
    assert kept is not None and kept["metadata"]["uid"] == pvc_uid
    resumed = await k8s_manager.set_state(ALICE, session.id, SessionState.READY)
    assert resumed.persistent_volume_id == f"pvc-{pvc_uid}"
    assert resumed.container_id != session.container_id
    await wait_state(k8s_manager, session.id, "ready")


@pytest.mark.asyncio
async def test_delete_removes_pod_then_pvc_then_the_record(
    kubesim: KubeSim, k8s_manager: SessionManager
) -> None:
    session = await k8s_manager.create(ALICE, parse_create({"name": "gone"}))
    await wait_state(k8s_manager, session.id, "ready")
    await k8s_manager.delete(ALICE, session.id)
    assert pod(kubesim, session.id) is None and pvc(kubesim, session.id) is None
    assert (await k8s_manager.list(ALICE)).items == []


@pytest.mark.asyncio
async def test_a_pod_deleted_behind_our_back_makes_the_session_idle(
    kubesim: KubeSim, k8s_manager: SessionManager
) -> None:
    from kubernetes_asyncio.client import ApiClient, CoreV1Api

    session = await k8s_manager.create(ALICE, parse_create({"name": "evicted"}))
    await wait_state(k8s_manager, session.id, "ready")
    async with ApiClient(kubesim.client_configuration()) as api:
        await CoreV1Api(api).delete_namespaced_pod(f"session-{session.id}", NS)
    idle = await wait_state(k8s_manager, session.id, "idle")
    assert idle.termination_reason == "ComputeLost"
    assert pvc(kubesim, session.id) is not None


@pytest.mark.asyncio
async def test_an_oom_killed_session_moves_to_error(
    kubesim: KubeSim, k8s_manager: SessionManager
) -> None:
    session = await k8s_manager.create(ALICE, parse_create({"name": "hungry"}))
    await wait_state(k8s_manager, session.id, "ready")
    kubesim.kubelet.inject(NS, f"session-{session.id}", "OOMKilled")
    failed = await wait_state(k8s_manager, session.id, "error")
    assert failed.termination_reason == "OOMKilled"


@pytest.mark.asyncio
async def test_creates_and_deletes_succeed_under_injected_faults(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    k8s_manager = await make_manager(KubernetesBackend__api_retries=10)
    kubesim.faults.set_error_rate("create", 0.3, 503)
    kubesim.faults.set_error_rate("delete", 0.3, 429)
    kubesim.faults.set_drop_watches_every(0.3)
    sessions = await asyncio.gather(
        *(k8s_manager.create(ALICE, parse_create({"name": f"f{i}"})) for i in range(8))
    )
    for session in sessions:
        await wait_state(k8s_manager, session.id, "ready", timeout=20)
    await asyncio.gather(*(k8s_manager.delete(ALICE, s.id) for s in sessions))
    kubesim.faults.clear()
    assert kubesim.counters.total(code=503) > 0 and kubesim.counters.total(code=429) > 0
    for session in sessions:
        assert pod(kubesim, session.id) is None and pvc(kubesim, session.id) is None


@pytest.mark.asyncio
async def test_the_caches_recover_from_compaction_with_one_relist(
    kubesim: KubeSim, k8s_manager: SessionManager, backend_of: BackendOf
) -> None:
    backend = backend_of(k8s_manager)
    kubesim.faults.compact()
    kubesim.faults.restart()
    session = await k8s_manager.create(ALICE, parse_create({"name": "after-410"}))
    await wait_state(k8s_manager, session.id, "ready")
    assert backend.pods.stats.relists_after_gone >= 1
