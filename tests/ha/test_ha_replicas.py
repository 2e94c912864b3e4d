"""Three ``raworc-spawner serve`` replicas of one instance (one PostgreSQL, one kubesim) survive
``kill -9`` of their leader in the middle of a storm of creates.

A storm of :data:`STORM` creates goes round-robin over the replicas; once half are answered the
leader (the Lease's holder) is killed. Then: every acknowledged session exists exactly once and
is ready with its own pod and claim of this instance; another replica holds the Lease within
``lease + 2 * retry`` of the kill; the new leader culls short-timeout sessions, each exactly
once; an SSE stream open on one replica sees a pause made through another.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require
from tests.ha.replicas import API, Election, Replica, ReplicaSet, pid_of, replica_set
from tests.operator.conftest import kill
from tests.store.conftest import POSTGRES_ENV
from tests.waiting import poll_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

STORM = 200
CONCURRENCY = 20
#: Short, so that the test is quick, but with the default retry period (2 s): every Lease call
#: times out after 0.75 * retry, and with 0.5 s or 1 s the storm on a busy 2-core machine made
#: Lease calls that slow and the leader step down before it was killed.
ELECTION = Election(lease=8, renew=6, retry=2)
INSTANCE = "raworc-ha-test"
CULL_TIMEOUT_SECONDS = 1
CULLED_SESSIONS = 5
CULL_INTERVAL_SECONDS = 0.5
ARGS = (
    *ELECTION.flags(),
    f"--Culler.interval_seconds={CULL_INTERVAL_SECONDS}",
    "--Culler.active_cpu_millicores=0",
    "--Reconciler.startup_wait_seconds=2",
)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[ReplicaSet]:
    base = os.environ.get(POSTGRES_ENV)
    require(base is not None, f"needs {POSTGRES_ENV} (source scripts/postgres-for-tests)")
    assert base is not None
    database = f"raworc_ha_{uuid.uuid4().hex[:8]}"
    with replica_set(
        tmp_path, base_db_url=base, database=database, instance=INSTANCE, args=ARGS
    ) as running:
        running.start_all(3)
        yield running


@dataclass
class Storm:
    """Creates spread round-robin over the replicas; the acknowledged ids, in order."""

    replicas: list[Replica]
    acknowledged: list[str] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    connection_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, i: int) -> None:
        """POST on replica ``i % n``; on a connection error, retry on the next ones."""
        for attempt in range(len(self.replicas)):
            replica = self.replicas[(i + attempt) % len(self.replicas)]
            try:
                with replica.server.client() as api:
                    body = {"name": f"storm {i}", "waiting_timeout_seconds": 0}
                    response = api.post(API, json=body)
            except httpx.TransportError:
                with self._lock:
                    self.connection_errors += 1
                continue
            with self._lock:
                if response.status_code == 201:
                    self.acknowledged.append(response.json()["id"])
                else:
                    self.refused.append(response.status_code)
            return

    def answered(self) -> int:
        with self._lock:
            return len(self.acknowledged) + len(self.refused)


@dataclass
class LeaseWatch:
    """Polls the Lease for a holder other than ``killed_pid``; notes the slowest read."""

    replicas: ReplicaSet
    killed_pid: int
    slowest_read: float = 0.0

    def new_holder(self) -> str:
        began = time.monotonic()
        holder = self.replicas.holder()
        self.slowest_read = max(self.slowest_read, time.monotonic() - began)
        return holder if holder and pid_of(holder) != self.killed_pid else ""


@dataclass(frozen=True)
class Failover:
    """The storm's outcome and the takeover: seconds from the kill until another replica held
    the Lease, and the slowest Lease read the test itself saw meanwhile."""

    storm: Storm
    killed_pid: int
    took_over: float
    slowest_read: float


def storm_and_kill(replicas: ReplicaSet) -> Failover:
    """Run the storm; kill the Lease's holder once half the creates are answered."""
    storm = Storm(list(replicas.replicas))
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        futures = [pool.submit(storm.create, i) for i in range(STORM)]
        assert poll_until(lambda: storm.answered() >= STORM // 2, timeout=60), "storm stalled"
        leader = poll_until(replicas.leader, timeout=10, interval=0.02)
        assert leader is not None, "no replica holds the Lease"
        kill(leader.server.proc)
        killed_at = time.monotonic()
        watch = LeaseWatch(replicas, leader.pid)
        holder = poll_until(watch.new_holder, timeout=30, interval=0.02)
        took_over = time.monotonic() - killed_at
        assert holder, "no replica took the Lease over within 30 s"
        for future in futures:
            future.result(timeout=120)
    return Failover(storm, leader.pid, took_over, watch.slowest_read)


def all_sessions(api: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api.get(API, params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def events_of(api: httpx.Client, sid: str) -> list[dict[str, Any]]:
    return list(api.get(f"{API}/{sid}/events").json())


def see_event(replica: Replica, sid: str, kind: str, opened: threading.Event) -> dict[str, Any]:
    """Read ``sid``'s SSE stream on ``replica`` until an event of ``kind`` (20 s at most)."""
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {replica.server.token}"}
    with replica.server.client() as api:
        last = events_of(api, sid)[-1]["seq"]
    timeout = httpx.Timeout(20, connect=5)
    with (
        httpx.Client(base_url=replica.url, headers=headers, timeout=timeout) as client,
        client.stream("GET", f"{API}/{sid}/events", params={"after": last}) as stream,
    ):
        opened.set()
        deadline = time.monotonic() + 20
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                if event["kind"] == kind:
                    return dict(event)
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"no {kind} event on the stream of {sid} within 20 s")


def test_three_replicas_survive_kill_9_of_the_leader_during_a_storm_of_creates(
    replicas: ReplicaSet,
) -> None:
    began = time.monotonic()
    failover = storm_and_kill(replicas)
    storm, killed_pid, took_over = failover.storm, failover.killed_pid, failover.took_over
    storm_seconds = time.monotonic() - began
    print(f"\nstorm {storm_seconds:.1f} s, takeover {took_over:.2f} s", flush=True)
    # The bound of docs/ha.md, plus the API's own slowness as the test saw it: on a loaded
    # 2-core machine a Lease read took up to 2.5 s mid-storm, and the replicas wait as long.
    limit = ELECTION.lease + 2 * ELECTION.retry + failover.slowest_read
    assert took_over <= limit, (
        f"another replica held the Lease {took_over:.2f} s after the kill "
        f"(slowest Lease read {failover.slowest_read:.2f} s)"
    )
    survivors = replicas.live()
    assert len(survivors) == 2 and killed_pid not in [r.pid for r in survivors]
    assert storm.refused == []
    ids = storm.acknowledged
    assert len(ids) == STORM and len(set(ids)) == STORM

    api = survivors[0].server.client()
    for sid in ids:
        assert api.get(f"{API}/{sid}").status_code == 200, sid

    def states() -> Counter[str]:
        return Counter(s["state"] for s in all_sessions(api) if s["id"] in set(ids))

    def all_ready() -> bool:
        now = states()
        return now["ready"] == STORM

    ready = poll_until(all_ready, timeout=45, interval=1)
    stuck = [s for s in all_sessions(api) if s["id"] in set(ids) and s["state"] != "ready"]
    assert ready, "not every acknowledged session became ready: " + json.dumps(
        [(s, events_of(api, s["id"])) for s in stuck], indent=1
    )
    listed = [s["id"] for s in all_sessions(api)]
    assert {sid: n for sid, n in Counter(listed).items() if n > 1} == {}  # none doubled
    assert set(ids) <= set(listed)

    pods = replicas.session_objects("pods")
    claims = replicas.session_objects("persistentvolumeclaims")
    for objects, prefix in ((pods, "session-"), (claims, "session-pvc-")):
        by_session = Counter(o["metadata"]["labels"]["session-id"] for o in objects)
        assert all(by_session[sid] == 1 for sid in ids), "a session without exactly one object"
        names = {o["metadata"]["labels"]["session-id"]: o["metadata"]["name"] for o in objects}
        assert all(names[sid] == f"{prefix}{sid}" for sid in ids)
        assert {o["metadata"]["labels"]["raworc.dev/instance"] for o in objects} == {INSTANCE}

    check_culling_resumes(survivors)
    check_a_stream_sees_a_pause_made_elsewhere(survivors, ids[0])
    print(
        f"\nstorm of {STORM} creates over 3 replicas: {storm_seconds:.1f} s; "
        f"Lease taken over {took_over:.2f} s after kill -9 "
        f"(slowest Lease read {failover.slowest_read:.2f} s); "
        f"{storm.connection_errors} connection errors retried; "
        f"whole test {time.monotonic() - began:.1f} s"
    )


def check_culling_resumes(survivors: list[Replica]) -> None:
    """Short-timeout sessions created after the failover are culled, each exactly once."""
    created = []
    for i in range(CULLED_SESSIONS):
        with survivors[i % 2].server.client() as api:
            body = {"name": f"cull {i}", "waiting_timeout_seconds": CULL_TIMEOUT_SECONDS}
            response = api.post(API, json=body)
            assert response.status_code == 201, response.text
            created.append(response.json()["id"])
    api = survivors[1].server.client()

    def all_idle() -> bool:
        return all(api.get(f"{API}/{sid}").json()["state"] == "idle" for sid in created)

    assert poll_until(all_idle, timeout=30, interval=0.25), "culling did not resume"
    time.sleep(3 * CULL_INTERVAL_SECONDS)  # three more culler passes: a second cull would show now
    for sid in created:
        events = events_of(api, sid)
        kinds = Counter(e["kind"] for e in events)
        assert (kinds["culled"], kinds["ready"]) == (1, 1), json.dumps(events, indent=1)


def check_a_stream_sees_a_pause_made_elsewhere(survivors: list[Replica], sid: str) -> None:
    watcher, actor = survivors
    opened = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        seen = pool.submit(see_event, watcher, sid, "paused", opened)
        assert opened.wait(10), "the event stream did not open"
        time.sleep(0.2)  # the stream subscribes before it sends its headers; margin for flush
        with actor.server.client() as api:
            paused = api.put(f"{API}/{sid}/state", json={"state": "idle"})
        assert paused.status_code == 200, paused.text
        event = seen.result(timeout=25)
    assert (event["kind"], event["state"], event["session_id"]) == ("paused", "idle", sid)
