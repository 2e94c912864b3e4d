"""A delete that cannot finish names the object, what holds it and since when."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiClient, CoreV1Api

from kubesim import KubeSim
from raworc_spawner.errors import BackendError
from raworc_spawner.sessions.model import Principal
from raworc_spawner.sessions.requests import parse_create
from tests.k8s_backend.conftest import ManagerFactory
from tests.k8s_backend.lifecycle import (
    NS,
    session_spec,
    started_backend,
    stored_pod,
    stored_pvc,
)
from tests.k8s_backend.test_sessions_on_kubernetes import wait_state

ALICE = Principal("alice")
HOLD = "example.com/hold"
MERGE_PATCH = "application/merge-patch+json"


async def hold(sim: KubeSim, resource: str, name: str) -> None:
    """Add the finalizer ``example.com/hold`` to an object, as another controller would."""
    obj = sim.store.get(resource, NS, name)
    assert obj is not None
    finalizers = [*(obj["metadata"].get("finalizers") or []), HOLD]
    body = {"metadata": {"finalizers": finalizers}}
    async with ApiClient(sim.client_configuration()) as api:
        core = CoreV1Api(api)
        if resource == "pods":
            await core.patch_namespaced_pod(name, NS, body, _content_type=MERGE_PATCH)
        else:
            await core.patch_namespaced_persistent_volume_claim(
                name, NS, body, _content_type=MERGE_PATCH
            )


@pytest.mark.asyncio
async def test_a_claim_held_by_a_finalizer_fails_the_delete_naming_it(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    manager = await make_manager(KubernetesBackend__gone_timeout_seconds=0.5)
    session = await manager.create(ALICE, parse_create({"name": "held"}))
    await wait_state(manager, session.id, "ready")
    await hold(kubesim, "persistentvolumeclaims", f"session-pvc-{session.id}")

    with pytest.raises(BackendError) as raised:
        await manager.delete(ALICE, session.id)

    claim = stored_pvc(kubesim, session.id)
    assert claim is not None and claim["metadata"]["finalizers"] == [HOLD]
    requested = claim["metadata"]["deletionTimestamp"]
    assert str(raised.value) == (
        "could not remove the session's resources: "
        f"persistentvolumeclaim session-pvc-{session.id} is still present after 0.5 s: "
        f"held by finalizers {HOLD} (deletion requested at {requested})"
    )
    failed = await manager.get(ALICE, session.id)
    assert (failed.state, failed.termination_reason) == ("error", "DeleteFailed")


@pytest.mark.asyncio
async def test_a_pod_held_by_a_finalizer_fails_the_pause_naming_it(kubesim: KubeSim) -> None:
    async with started_backend(kubesim, KubernetesBackend__gone_timeout_seconds=0.5) as (
        backend,
        _,
    ):
        spec = session_spec()
        sid = spec.session_id
        await backend.create(spec)
        await backend.wait_ready(sid, timeout=5)
        await hold(kubesim, "pods", f"session-{sid}")

        with pytest.raises(BackendError) as raised:
            await backend.pause(sid)

        pod = stored_pod(kubesim, sid)
        assert pod is not None
        requested = pod["metadata"]["deletionTimestamp"]
        assert str(raised.value) == (
            f"pod session-{sid} is still present after 0.5 s: "
            f"held by finalizers {HOLD} (deletion requested at {requested})"
        )


@pytest.mark.asyncio
async def test_a_delete_that_outlasts_the_managers_timeout_still_names_what_holds_it(
    kubesim: KubeSim, make_manager: ManagerFactory
) -> None:
    # The defaults give the manager's delete timeout and the backend's wait the same length:
    # the manager's fires first, and its message must say what holds the claim.
    manager = await make_manager(SessionManager__delete_timeout_seconds=1.0)
    session = await manager.create(ALICE, parse_create({"name": "held-long"}))
    await wait_state(manager, session.id, "ready")
    await hold(kubesim, "persistentvolumeclaims", f"session-pvc-{session.id}")

    with pytest.raises(BackendError) as raised:
        await manager.delete(ALICE, session.id)

    claim = stored_pvc(kubesim, session.id)
    assert claim is not None
    requested = claim["metadata"]["deletionTimestamp"]
    assert str(raised.value) == (
        "could not remove the session's resources within 1 s: still waiting for "
        f"persistentvolumeclaim session-pvc-{session.id} to go: held by finalizers "
        f"{HOLD} (deletion requested at {requested})"
    )
    failed = await manager.get(ALICE, session.id)
    assert failed.termination_reason == "DeleteTimeout"
