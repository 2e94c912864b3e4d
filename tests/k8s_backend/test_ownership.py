"""Each server sees and acts on its own instance's session objects only; others' are reported.

Two backends of different instances share one kubesim namespace, as two servers (or a hub
beside a REST server) on one cluster would; objects made before owners were recorded are
stood in for by stripping the owner label and annotation with kubectl.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from kubesim import KubeSim, KubeSimConfig
from raworc_spawner.backends.base import (
    ComputeState,
    ForeignKind,
    ForeignObject,
    FoundSession,
    Inventory,
    Placement,
    SessionSpec,
)
from raworc_spawner.backends.kubernetes.backend import KubernetesBackend
from raworc_spawner.backends.kubernetes.ownership import found_session
from raworc_spawner.errors import InvalidConfig, SessionFailed
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


async def ready_session(backend: KubernetesBackend, spec: SessionSpec) -> Placement:
    """Create ``spec``'s session on ``backend`` and wait (10 s at most) until it runs."""
    await backend.create(spec)
    return await backend.wait_ready(spec.session_id, timeout=10)


def only(sid: str) -> Inventory:
    """The inventory of a backend that has one running session, ``sid``."""
    return Inventory(compute=frozenset({sid}), workspaces=frozenset({sid}))


async def disown(sim: KubeSim, sid: str) -> None:
    """Strip the owner label and annotation from a session's pod and claim (an older version's)."""
    objects = [f"pod/session-{sid}", f"pvc/session-pvc-{sid}"]
    await kubectl(sim, "label", "-n", NS, *objects, "raworc.dev/instance-")
    await kubectl(sim, "annotate", "-n", NS, *objects, "raworc.dev/instance-")


def owner_label(obj: dict[str, object] | None) -> object:
    """The ``raworc.dev/instance`` label of a stored object (None without one)."""
    assert obj is not None
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    return (metadata.get("labels") or {}).get("raworc.dev/instance")


@pytest.mark.asyncio
async def test_two_instances_on_one_namespace_see_and_touch_only_their_own_objects(
    kubesim: KubeSim,
) -> None:
    async with (
        started_backend(kubesim, instance_name="raworc-a") as (a, _),
        started_backend(kubesim, instance_name="raworc-b") as (b, _),
    ):
        spec_a, spec_b = session_spec("alpha"), session_spec("beta")
        sa, sb = spec_a.session_id, spec_b.session_id
        await ready_session(a, spec_a)
        placed_b = await ready_session(b, spec_b)

        assert await a.inventory() == only(sa)
        assert await b.inventory() == only(sb)
        assert [found.session_id for found in await a.describe([sa, sb])] == [sa]
        assert await a.foreign() == [
            ForeignObject(ForeignKind.PERSISTENT_VOLUME_CLAIM, f"session-pvc-{sb}", sb, "raworc-b"),
            ForeignObject(ForeignKind.POD, f"session-{sb}", sb, "raworc-b"),
        ]

        await a.pause(sb)
        await a.delete(sb)
        await a.delete(sa)

        assert stored_pod(kubesim, sa) is None and stored_pvc(kubesim, sa) is None
        pod_b, pvc_b = stored_pod(kubesim, sb), stored_pvc(kubesim, sb)
        assert pod_b is not None and pvc_b is not None
        assert pod_b["metadata"]["uid"] == placed_b.container_id
        assert f"pvc-{pvc_b['metadata']['uid']}" == placed_b.persistent_volume_id
        assert "deletionTimestamp" not in pod_b["metadata"]
        assert "deletionTimestamp" not in pvc_b["metadata"]
        assert b.compute_state(sb) is ComputeState.RUNNING
        assert await a.foreign() == await a.foreign()  # a LIST each time, nothing cached
        shown = await kubectl(
            kubesim, "get", "pods,pvc", "-n", NS, "-l", "raworc.dev/instance", "-o", "name"
        )
        assert sorted(shown.split()) == [
            f"persistentvolumeclaim/session-pvc-{sb}",
            f"pod/session-{sb}",
        ]


@pytest.mark.asyncio
async def test_describe_rebuilds_a_session_from_its_claim_and_pod_after_a_restart(
    kubesim: KubeSim,
) -> None:
    profiles = {"small": {"description": "A small session"}}
    created = dt.datetime(2025, 1, 15, 10, 30, 0, 250000, tzinfo=dt.UTC)
    spec = session_spec("Résumé: training / v2", namespace="research", created_at=created)
    spec = dataclasses.replace(spec, profile="small")
    sid = spec.session_id
    async with started_backend(kubesim, KubernetesSettings__profiles=profiles) as (backend, _):
        placed = await ready_session(backend, spec)

    async with started_backend(kubesim, KubernetesSettings__profiles=profiles) as (backend, _):
        expected = FoundSession(
            session_id=sid,
            name="Résumé: training / v2",
            owner="alice",
            namespace="research",
            profile="small",
            created_at=created,
            parent_session_id=None,
            persistent_volume_id=placed.persistent_volume_id,
            container_id=placed.container_id,
            has_compute=True,
        )
        assert await backend.describe([sid, "00000000-0000-0000-0000-000000000000"]) == [expected]

        await backend.pause(sid)

        paused = dataclasses.replace(expected, container_id=None, has_compute=False)
        assert await backend.describe([sid]) == [paused]


@pytest.mark.asyncio
async def test_a_claim_without_an_owner_annotation_describes_nothing(kubesim: KubeSim) -> None:
    async with started_backend(kubesim) as (backend, _):
        spec = session_spec()
        sid = spec.session_id
        await ready_session(backend, spec)

        await kubectl(kubesim, "annotate", "-n", NS, f"pvc/session-pvc-{sid}", "raworc.dev/owner-")

        def owner_in_cache() -> object:
            pvc = backend.cached(PVCS, sid) or {}
            return (pvc["metadata"].get("annotations") or {}).get("raworc.dev/owner")

        await settles_to(owner_in_cache, None)
        assert await backend.describe([sid]) == []


@pytest.mark.asyncio
async def test_claim_adopts_the_unowned_objects_of_the_given_sessions_only(
    kubesim: KubeSim,
) -> None:
    spec_1, spec_2, spec_3 = session_spec("one"), session_spec("two"), session_spec("three")
    s1, s2, s3 = spec_1.session_id, spec_2.session_id, spec_3.session_id
    async with started_backend(kubesim) as (earlier, _):
        await ready_session(earlier, spec_1)
        await ready_session(earlier, spec_2)
    async with started_backend(kubesim, instance_name="raworc-b") as (other, _):
        await ready_session(other, spec_3)
    await disown(kubesim, s1)
    await disown(kubesim, s2)

    async with started_backend(kubesim, instance_name="raworc-c") as (backend, _):
        assert await backend.inventory() == Inventory()
        assert {(o.session_id, o.instance) for o in await backend.foreign()} == {
            (s1, None),
            (s2, None),
            (s3, "raworc-b"),
        }

        assert await backend.claim([s1, s3, "00000000-0000-0000-0000-000000000000"]) == [s1]

        assert await backend.inventory() == only(s1)
        assert backend.compute_state(s1) is ComputeState.RUNNING
        assert [found.name for found in await backend.describe([s1])] == ["one"]
        pod_1 = stored_pod(kubesim, s1)
        assert owner_label(pod_1) == "raworc-c"
        assert pod_1 is not None
        assert pod_1["metadata"]["annotations"]["raworc.dev/instance"] == "raworc-c"
        assert owner_label(stored_pvc(kubesim, s1)) == "raworc-c"
        assert owner_label(stored_pod(kubesim, s2)) is None
        assert owner_label(stored_pvc(kubesim, s2)) is None
        assert owner_label(stored_pod(kubesim, s3)) == "raworc-b"
        assert owner_label(stored_pvc(kubesim, s3)) == "raworc-b"
        assert await backend.claim([s1]) == []
        shown = await kubectl(
            kubesim, "get", "pods", "-n", NS, "-l", "raworc.dev/instance=raworc-c", "-o", "name"
        )
        assert shown.split() == [f"pod/session-{s1}"]


@pytest.mark.asyncio
async def test_a_create_that_meets_another_instances_objects_fails_and_leaves_them(
    kubesim: KubeSim,
) -> None:
    async with (
        started_backend(kubesim, instance_name="raworc-a") as (a, _),
        started_backend(kubesim, instance_name="raworc-b") as (b, _),
    ):
        spec = session_spec()
        sid = spec.session_id
        placed = await ready_session(a, spec)

        with pytest.raises(SessionFailed) as raised:
            await b.create(spec)

        assert raised.value.reason == "AlreadyExists"
        assert raised.value.detail in {
            f"{kind} {name} exists and belongs to instance raworc-a: left untouched"
            for kind, name in (("pods", f"session-{sid}"), (PVCS, f"session-pvc-{sid}"))
        }
        pod = stored_pod(kubesim, sid)
        assert pod is not None and pod["metadata"]["uid"] == placed.container_id
        assert "deletionTimestamp" not in pod["metadata"]
        assert a.compute_state(sid) is ComputeState.RUNNING


def test_a_session_with_only_a_pod_is_described_from_the_pod() -> None:
    pod = {
        "metadata": {
            "name": "session-abc",
            "uid": "6f1c",
            "creationTimestamp": "2025-01-15T10:30:00Z",
            "annotations": {"raworc.dev/session-name": "demo", "raworc.dev/owner": "ann"},
        }
    }

    found = found_session("abc", pod=pod, pvc=None)

    assert found == FoundSession(
        session_id="abc",
        name="demo",
        owner="ann",
        namespace="default",
        profile=None,
        created_at=dt.datetime(2025, 1, 15, 10, 30, tzinfo=dt.UTC),
        persistent_volume_id=None,
        container_id="6f1c",
        has_compute=True,
    )


@pytest.mark.parametrize("name", ["", "Raworc A", "-raworc", "r" * 64])
def test_an_instance_name_that_is_not_a_label_value_is_refused_naming_the_setting(
    name: str,
) -> None:
    with pytest.raises(InvalidConfig) as raised:
        KubernetesBackend(instance_name=name)

    assert raised.value.setting == "KubernetesBackend.instance_name"
    assert raised.value.value == name
