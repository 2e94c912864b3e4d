"""A server killed with SIGKILL while creates are in flight converges when it restarts: every
record settles (ready, or idle/error with a reason), no orphans, no duplicates, cleanup finds
nothing."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.waiting import wait_for

from .conftest import (
    ORPHAN,
    Cluster,
    Server,
    kill,
    labelled,
    running_cluster,
    start_server,
)

pytestmark = pytest.mark.slow

CREATES = 6
CONVERGE_SECONDS = 20.0


@dataclass(frozen=True)
class KillPoint:
    """Where the kill lands: which creates kubesim refuses (503) until the restart."""

    name: str
    failing: tuple[str, ...]
    """Resources whose creates fail, keeping the server's creates in flight."""
    reached: tuple[str, int]
    """(resource, status) of which CREATES create requests must be counted before the kill."""
    settles: str
    """The state every session settles in after the restart."""


KILL_POINTS = [
    KillPoint(
        "before any pod or claim exists", ("persistentvolumeclaims", "pods"), ("pods", 503), "idle"
    ),
    KillPoint("with claims but no pods", ("pods",), ("persistentvolumeclaims", 201), "idle"),
    KillPoint("with pods but no claims", ("persistentvolumeclaims",), ("pods", 201), "idle"),
    KillPoint("with pods starting", (), ("pods", 201), "ready"),
]


@pytest.fixture
def cluster_and_token(tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    timings = ["--timing", "image_pull_delay=2", "--timing", "container_start_delay=0.2"]
    with running_cluster(tmp_path / "cluster", *timings) as cluster:
        cluster.apply_deploy()
        yield cluster, cluster.create_token()


def fire_creates(server: Server, pool: concurrent.futures.Executor) -> list[Any]:
    def create(i: int) -> int:
        try:
            with server.client() as api:
                return api.post("/api/v0/sessions", json={"name": f"crash {i}"}).status_code
        except httpx.HTTPError:
            return 0  # the server died under the request, as intended

    return [pool.submit(create, i) for i in range(CREATES)]


def counted(cluster: Cluster, verb: str, resource: str, code: int) -> int:
    return sum(
        row["count"]
        for row in cluster.requests()
        if (row["verb"], row["resource"], row["code"]) == (verb, resource, code)
    )


def in_flight(cluster: Cluster, server: Server, point: KillPoint) -> set[str] | None:
    """The ids of the records once all CREATES exist and have reached the kill point."""
    if counted(cluster, "create", *point.reached) < CREATES:
        return None
    ids = {s["id"] for s in records(server)}
    return ids if len(ids) == CREATES else None


def records(server: Server) -> list[dict[str, Any]]:
    with server.client() as api:
        return list(api.get("/api/v0/sessions", params={"limit": 100}).json()["items"])


def converged(cluster: Cluster, server: Server) -> dict[str, Any] | None:
    """The final picture once every record has settled and resources match records."""
    sessions = records(server)
    if any(s["state"] not in ("ready", "idle", "error") for s in sessions):
        return None
    pods = {o["metadata"]["labels"]["session-id"] for o in labelled(cluster, "pod")}
    claims = {o["metadata"]["labels"]["session-id"] for o in labelled(cluster, "pvc")}
    ids = {s["id"] for s in sessions}
    ready = {s["id"] for s in sessions if s["state"] == "ready"}
    # Orphaned claims are kept (workspaces are never deleted by inference); pods are not.
    if not pods <= ids or pods != ready:
        return None
    return {"sessions": sessions, "pods": pods, "claims": claims}


INSTANCE = "raworc-kill-test"
OWNED_ENV = {"RAWORC_INSTANCE_NAME": INSTANCE}
#: Compute and a claim of this server's instance whose session has no record, and which carry
#: nothing to rebuild one from (no owner annotations): an orphan, not a session to re-adopt.
OWNED_ORPHAN = ORPHAN.replace(
    'session-id: "{sid}"', f'session-id: "{{sid}}", raworc.dev/instance: {INSTANCE}'
)


@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda p: p.name.replace(" ", "-"))
def test_a_server_killed_mid_create_converges_after_restart(
    cluster_and_token: tuple[Cluster, str], tmp_path: Path, point: KillPoint
) -> None:
    cluster, token = cluster_and_token
    data_dir = tmp_path / "data"
    server = start_server(cluster, token=token, data_dir=data_dir, env=OWNED_ENV)
    cluster.sim.reset_counters()
    errors = [
        {"verb": "create", "resource": r, "code": 503, "retry_after": 5} for r in point.failing
    ]
    cluster.sim.configure_faults(errors=errors)
    with concurrent.futures.ThreadPoolExecutor(CREATES) as pool:
        futures = fire_creates(server, pool)
        before = wait_for(
            lambda: in_flight(cluster, server, point),
            timeout=15,
            what=f"{CREATES} records and creates of {point.reached[0]} answered {point.reached[1]}",
            interval=0.02,
        )
        kill(server.proc)
        concurrent.futures.wait(futures)
    cluster.sim.configure_faults(clear=True)
    orphan = str(uuid.uuid4())
    cluster.kubectl("apply", "-f", "-", stdin=OWNED_ORPHAN.format(sid=orphan))

    began = time.monotonic()
    restarted = start_server(cluster, token=token, data_dir=data_dir, env=OWNED_ENV)
    final = wait_for(
        lambda: converged(cluster, restarted),
        timeout=CONVERGE_SECONDS,
        what="records and resources to agree after the restart",
        interval=0.2,
    )
    took = time.monotonic() - began
    sessions = final["sessions"]
    ids = [s["id"] for s in sessions]
    assert len(ids) == len(set(ids)) and set(ids) == before, sessions  # none lost or doubled
    assert orphan not in final["pods"]  # orphaned compute is stopped
    assert orphan in final["claims"]  # an orphaned workspace is kept and reported
    assert {s["state"] for s in sessions} == {point.settles}
    for session in sessions:
        if session["state"] != "ready":
            assert session["termination_reason"] == "ComputeLost", session
    assert took < CONVERGE_SECONDS
    cleanup = cluster.spawner(
        "cleanup",
        f"--data-dir={data_dir}",
        token=token,
        cwd=tmp_path,
        env={"KUBERNETES_ENABLED": "true", **OWNED_ENV},
    )
    assert cleanup.returncode == 0, cleanup.stderr
    assert cleanup.stdout.splitlines() == [f"{orphan}  orphaned (run with --delete to remove)"]
