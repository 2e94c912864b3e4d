"""Soak: 200 sessions on kubesim while pods are evicted, exit, are deleted from outside, foreign
events are written and images fail; afterwards the records match the cluster and no workspace
claim was lost."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from kubesim import KubeSim, KubeSimConfig, NodeSpec, Timings
from raworc_spawner.core import Core, CoreSettings
from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.sessions.model import Principal, Session, SessionState
from raworc_spawner.sessions.requests import CreateRequest
from tests.k8s_backend.conftest import backend_config

NS = "raworc-sessions"
SESSIONS = 200
#: How long faults are injected, in seconds (RAWORC_SOAK_SECONDS overrides, e.g. for a longer run).
SOAK_SECONDS = float(os.environ.get("RAWORC_SOAK_SECONDS", "60"))
BAD_IMAGE = "registry.example/does-not-exist:1"
S = SessionState


@pytest.fixture
def kubesim_config() -> KubeSimConfig:
    timings = Timings(
        schedule_delay=0.01,
        pv_bind_delay=0.02,
        kubelet_start_delay=0.02,
        image_pull_delay=0.05,
        container_start_delay=0.02,
        termination_delay=0.05,
    )
    # Room for every session's pod (200 pods of 100m CPU): failures here are the injected ones.
    nodes = [NodeSpec(name=f"soak-node-{i}", cpu="16", memory="64Gi", pods=110) for i in range(2)]
    return KubeSimConfig(namespaces=["default", NS], seed=99, timings=timings, nodes=nodes)


@pytest_asyncio.fixture
async def soak_core(kubesim: KubeSim, tmp_path: Path) -> AsyncIterator[Core]:
    config = backend_config(kubesim)
    config.KubernetesSettings.profiles = {"bad": {"description": "broken", "image": BAD_IMAGE}}
    config.SessionManager.ready_timeout_seconds = 30.0
    config.Reconciler.interval_seconds = 2.0
    config.Culler.interval_seconds = 0.0
    core = Core(CoreSettings(data_dir=str(tmp_path), kubernetes_enabled=True), config=config)
    await core.start()
    try:
        yield core
    finally:
        await core.close()


@dataclass
class Tally:
    """What the chaos loop did, by kind."""

    done: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        self.done[kind] = self.done.get(kind, 0) + 1


async def create_sessions(manager: SessionManager, count: int) -> list[Session]:
    async def one(i: int) -> Session:
        request = CreateRequest(name=f"soak-{i}", profile="bad" if i % 20 == 0 else None)
        return await manager.create(Principal(f"user-{i % 7}"), request)

    sessions: list[Session] = []
    for start in range(0, count, 50):
        sessions += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 50))))
    return sessions


async def session_pods(core: CoreV1Api) -> dict[str, Any]:
    pods = await core.list_namespaced_pod(NS, label_selector="component=session")
    return {p.metadata.labels["session-id"]: p for p in pods.items}


async def evict(core: CoreV1Api, pod: Any) -> None:
    status = {"phase": "Failed", "reason": "Evicted", "message": "The node was low on memory."}
    await core.patch_namespaced_pod_status(pod.metadata.name, NS, {"status": status})


async def exit_pod(core: CoreV1Api, pod: Any, code: int) -> None:
    name = pod.spec.containers[0].name
    terminated = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": "2030-01-01T00:00:00Z",
        "finishedAt": "2030-01-01T00:00:01Z",
    }
    status = {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": name,
                "image": pod.spec.containers[0].image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }
    await core.patch_namespaced_pod_status(pod.metadata.name, NS, {"status": status})


async def foreign_event(core: CoreV1Api, pod: Any) -> None:
    """A Warning about the session's pod name, but another object's uid (an old incarnation)."""
    event = {
        "metadata": {"name": f"{pod.metadata.name}.{uuid.uuid4().hex[:10]}", "namespace": NS},
        "involvedObject": {
            "kind": "Pod",
            "name": pod.metadata.name,
            "namespace": NS,
            "uid": str(uuid.uuid4()),
        },
        "reason": "Failed",
        "message": 'Failed to pull image "evil": not found',
        "type": "Warning",
        "source": {"component": "kubelet"},
        "count": 1,
    }
    await core.create_namespaced_event(NS, event)


async def chaos(core: CoreV1Api, manager: SessionManager, ids: list[str], tally: Tally) -> None:
    rng = random.Random(7)
    deadline = time.monotonic() + SOAK_SECONDS
    while time.monotonic() < deadline:
        pods = await session_pods(core)
        action = rng.choice(["evict", "exit0", "exit3", "delete", "foreign", "resume", "resume"])
        try:
            if action == "resume":
                await manager.set_state(SYSTEM, rng.choice(ids), S.READY)
            elif pods:
                pod = pods[rng.choice(sorted(pods))]
                if action == "evict":
                    await evict(core, pod)
                elif action in ("exit0", "exit3"):
                    await exit_pod(core, pod, 0 if action == "exit0" else 3)
                elif action == "delete":
                    await core.delete_namespaced_pod(pod.metadata.name, NS)
                else:
                    await foreign_event(core, pod)
            tally.add(action)
        except ApiException as e:
            if e.status not in (404, 409):
                raise
        except Exception as e:  # a refused transition is an answer, not a failure
            if type(e).__name__ not in ("InvalidTransition", "Conflict"):
                raise
        await asyncio.sleep(rng.uniform(0.02, 0.15))


async def mismatches(core: CoreV1Api, manager: SessionManager) -> list[str]:
    """Ways the records and the cluster disagree now (empty when they agree)."""
    sessions = {s.id: s for s in (await manager.list(SYSTEM, limit=1000)).items}
    pods = await session_pods(core)
    claims = await core.list_namespaced_persistent_volume_claim(NS)
    claim_uids = {c.metadata.labels["session-id"]: c.metadata.uid for c in claims.items}
    problems = []
    for sid, session in sessions.items():
        pod = pods.get(sid)
        if session.state in (S.INIT, S.DELETING):
            problems.append(f"{sid} still {session.state.value}")
        if session.state in (S.READY, S.BUSY):
            ready = pod is not None and pod.status.phase == "Running"
            if not ready or pod.metadata.uid != session.container_id:
                problems.append(f"{sid} ready without its running pod")
        if session.state in (S.IDLE, S.ERROR) and pod is not None:
            problems.append(f"{sid} {session.state.value} but pod {pod.status.phase} left")
        if claim_uids.get(sid) is None:
            problems.append(f"{sid} lost its workspace claim")
        elif session.persistent_volume_id not in (None, f"pvc-{claim_uids[sid]}"):
            problems.append(f"{sid} has a new claim (old {session.persistent_volume_id})")
    problems += [f"pod of unknown session {sid}" for sid in pods if sid not in sessions]
    return problems


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 240)
@pytest.mark.asyncio
async def test_200_sessions_converge_under_evictions_exits_deletes_and_foreign_events(
    soak_core: Core, kube_api: ApiClient
) -> None:
    core, manager = CoreV1Api(kube_api), soak_core.manager
    sessions = await create_sessions(manager, SESSIONS)
    ids = [s.id for s in sessions]
    tally = Tally()
    await chaos(core, manager, ids, tally)
    assert min(tally.done.values()) > 0 and len(tally.done) == 6, tally.done

    problems: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        problems = await mismatches(core, manager)
        if not problems:
            break
        await asyncio.sleep(1)
    assert problems == [], f"{len(problems)} mismatches after the soak: {problems[:20]}"
    states = {s.state for s in (await manager.list(SYSTEM, limit=1000)).items}
    assert states <= {S.READY, S.IDLE, S.ERROR}
    bad = [s for s in (await manager.list(SYSTEM, limit=1000)).items if s.profile == "bad"]
    assert bad and all(s.state == S.ERROR for s in bad), [(s.id, s.state) for s in bad]
