"""A resumed session finds the very workspace claim its record names, or fails WorkspaceLost.

The record's ``persistent_volume_id`` comes in as ``SessionSpec.expected_volume``: a claim that
was deleted, or replaced by another of the same name, is never silently used or recreated, and
nothing (no claim, no pod) is created when it is missing.
"""

from __future__ import annotations

import dataclasses

import pytest

from kubesim import KubeSim, KubeSimConfig
from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from raworc_spawner.errors import SessionFailed
from tests.k8s_backend.lifecycle import (
    NS,
    kubectl,
    session_spec,
    settles_to,
    started_backend,
    stored_pod,
    stored_pvc,
    tls_config,
)

PVCS = "persistentvolumeclaims"


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    """kubesim over HTTPS, for kubectl."""
    return tls_config()


ADVICE = "starting with a new empty workspace needs an explicit request (new_workspace)"


async def paused_session(backend: KubernetesBackend) -> tuple[SessionSpec, str]:
    """A session that ran and was paused, and the volume id its record holds."""
    spec = session_spec()
    await backend.create(spec)
    placed = await backend.wait_ready(spec.session_id, timeout=10)
    await backend.pause(spec.session_id)
    assert placed.persistent_volume_id is not None
    return spec, placed.persistent_volume_id


async def delete_claim(sim: KubeSim, backend: KubernetesBackend, sid: str) -> None:
    """``kubectl delete pvc`` the session's claim, and wait until the backend's cache saw it."""
    await kubectl(sim, "delete", "pvc", "-n", NS, f"session-pvc-{sid}")
    await settles_to(lambda: backend.cached(PVCS, sid), None)


async def nothing_in_namespace(sim: KubeSim) -> str:
    """Every pod and claim in the sessions' namespace, as kubectl names them."""
    return (await kubectl(sim, "get", "pods,pvc", "-n", NS, "-o", "name")).strip()


@pytest.mark.asyncio
async def test_a_resume_after_kubectl_delete_pvc_is_workspace_lost_and_creates_nothing(
    kubesim: KubeSim,
) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec, volume = await paused_session(backend)
        sid = spec.session_id
        await delete_claim(kubesim, backend, sid)

        with pytest.raises(SessionFailed) as raised:
            await backend.create(dataclasses.replace(spec, expected_volume=volume))

        assert raised.value.reason == "WorkspaceLost"
        assert raised.value.detail == (
            f"cannot resume: workspace claim session-pvc-{sid} (volume {volume}) is gone: "
            f"it no longer exists (deleted outside raworc); {ADVICE}"
        )
        assert stored_pvc(kubesim, sid) is None and stored_pod(kubesim, sid) is None
        assert await nothing_in_namespace(kubesim) == ""


@pytest.mark.asyncio
async def test_an_explicit_new_workspace_after_a_lost_one_starts_on_a_new_volume(
    kubesim: KubeSim,
) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec, volume = await paused_session(backend)
        await delete_claim(kubesim, backend, spec.session_id)

        await backend.create(spec)  # expected_volume None: the new_workspace request
        placed = await backend.wait_ready(spec.session_id, timeout=10)

        assert placed.persistent_volume_id not in (None, volume)


@pytest.mark.asyncio
async def test_a_claim_replaced_by_another_of_the_same_name_is_workspace_lost(
    kubesim: KubeSim,
) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec, volume = await paused_session(backend)
        sid = spec.session_id
        await delete_claim(kubesim, backend, sid)
        impostor = f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: session-pvc-{sid}
  namespace: {NS}
  labels: {{app: raworc, component: session, session-id: "{sid}", raworc.dev/instance: raworc}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
"""
        await kubectl(kubesim, "apply", "-f", "-", stdin=impostor)
        await settles_to(lambda: backend.cached(PVCS, sid) is not None, True)
        replaced = stored_pvc(kubesim, sid)
        assert replaced is not None
        new_volume = f"pvc-{replaced['metadata']['uid']}"

        with pytest.raises(SessionFailed) as raised:
            await backend.create(dataclasses.replace(spec, expected_volume=volume))

        assert raised.value.reason == "WorkspaceLost"
        assert raised.value.detail == (
            f"cannot resume: workspace claim session-pvc-{sid} (volume {volume}) is gone: "
            f"another claim of that name (volume {new_volume}) took its place; {ADVICE}"
        )
        assert stored_pod(kubesim, sid) is None
        kept = stored_pvc(kubesim, sid)
        assert kept is not None and kept["metadata"]["uid"] == replaced["metadata"]["uid"]
        assert "deletionTimestamp" not in kept["metadata"]


@pytest.mark.asyncio
async def test_a_resume_that_finds_its_claim_starts_on_the_same_volume(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec, volume = await paused_session(backend)

        await backend.create(dataclasses.replace(spec, expected_volume=volume))
        placed = await backend.wait_ready(spec.session_id, timeout=10)

        assert placed.persistent_volume_id == volume
        names = await nothing_in_namespace(kubesim)
        assert sorted(names.split()) == [
            f"persistentvolumeclaim/session-pvc-{spec.session_id}",
            f"pod/session-{spec.session_id}",
        ]


@pytest.mark.asyncio
async def test_the_expected_claim_unclaimed_is_left_alone_until_claimed(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec, volume = await paused_session(backend)
        sid = spec.session_id
        await kubectl(kubesim, "label", "-n", NS, f"pvc/session-pvc-{sid}", "raworc.dev/instance-")
        await settles_to(lambda: backend.cached(PVCS, sid), None)
        resume = dataclasses.replace(spec, expected_volume=volume)

        with pytest.raises(SessionFailed) as raised:
            await backend.create(resume)

        assert raised.value.reason == "AlreadyExists"
        assert raised.value.detail == (
            f"persistentvolumeclaims session-pvc-{sid} exists and belongs to no instance "
            "(made by an earlier version, unclaimed): left untouched"
        )
        assert stored_pod(kubesim, sid) is None
        assert await backend.claim([sid]) == [sid]
        await backend.create(resume)
        placed = await backend.wait_ready(sid, timeout=10)
        assert placed.persistent_volume_id == volume
