"""``python -m benchmarks failover``: how long replicas run without a leader after ``kill -9``.

Three ``raworc-spawner serve`` replicas of one instance (one PostgreSQL database, one kubesim,
``KUBERNETES_ENABLED=true``), with the default election settings (lease 15 s, renew deadline
10 s, retry 2 s; docs/ha.md). Each round kills the Lease's holder with SIGKILL, measures

- **Lease**: seconds until the Lease names another replica (polled every 20 ms), and
- **loops**: seconds until that replica logs ``became leader``. It logs this after it has written
  the Lease and right before it starts the reconciler and the culler, so it is the later, and
  the stronger, observable that background loops run again; its log timestamp (ms) is used,

then restarts the killed replica and waits a random part of a retry period so that kills land
at every phase of the renewal cycle. Prints p50/p99/min/max of both and writes
``failover.json`` into ``--out``.

PostgreSQL: ``RAWORC_TEST_POSTGRES_URL`` (``source scripts/postgres-for-tests``); a database
``raworc_failover_bench`` is created on its server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import report

POSTGRES_ENV = "RAWORC_TEST_POSTGRES_URL"
INSTANCE = "raworc-failover"
BECAME_LEADER = "became leader ("


@dataclass(frozen=True)
class Round:
    """One kill: who died, who took over, and how long each observable took (seconds)."""

    killed_pid: int
    new_pid: int
    lease_seconds: float
    loops_seconds: float


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks failover", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10, help="kills to measure (default 10)")
    parser.add_argument("--lease", type=float, default=15.0, help="lease duration, s")
    parser.add_argument("--renew", type=float, default=10.0, help="renew deadline, s")
    parser.add_argument("--retry", type=float, default=2.0, help="retry period, s")
    parser.add_argument("--seed", type=int, default=13, help="seed of the kill phases")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/failover"))
    return parser.parse_args(argv)


def log_instant(line: str) -> float:
    """The epoch time of a log line (``2026-01-02 03:04:05,678 INFO …``, local time)."""
    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp()


def became_leader_at(log: Path, offset: int) -> float | None:
    """When the replica logging to ``log`` last became leader, after byte ``offset``."""
    if not log.exists():
        return None
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    found = [log_instant(line) for line in lines if BECAME_LEADER in line]
    return found[-1] if found else None


def one_round(replicas: Any, rng: random.Random, retry: float) -> Round:
    """Kill the leader, time the takeover, restart the killed replica."""
    from tests.ha.replicas import pid_of
    from tests.operator.conftest import kill
    from tests.waiting import poll_until

    time.sleep(rng.uniform(0, retry))
    leader = poll_until(replicas.leader, timeout=60, interval=0.02)
    if leader is None:
        raise RuntimeError("no live replica holds the Lease")
    offsets = {r.pid: r.log.stat().st_size for r in replicas.live() if r is not leader}
    leader.server.proc.send_signal(signal.SIGKILL)
    killed_wall, killed_at = time.time(), time.monotonic()
    kill(leader.server.proc)

    def new_holder() -> str:
        holder = str(replicas.holder())
        return holder if holder and pid_of(holder) != leader.pid else ""

    holder = poll_until(new_holder, timeout=120, interval=0.02)
    if not holder:
        raise RuntimeError("no replica took the Lease over within 120 s")
    lease_seconds = time.monotonic() - killed_at
    successor = next(r for r in replicas.live() if r.pid == pid_of(holder))
    offset = offsets[successor.pid]
    became = poll_until(lambda: became_leader_at(successor.log, offset), timeout=30)
    if became is None:
        raise RuntimeError(f"replica {successor.pid} holds the Lease but never became leader")
    replicas.start(leader.index)
    return Round(leader.pid, successor.pid, round(lease_seconds, 3), round(became - killed_wall, 3))


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank), min and max, in seconds."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, -(-99 * len(ordered) // 100) - 1))
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": ordered[rank],
        "min": ordered[0],
        "max": ordered[-1],
    }


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Start the replicas, measure ``options.rounds`` kills, stop everything."""
    from tests.ha.replicas import Election, replica_set

    base = os.environ.get(POSTGRES_ENV)
    if not base:
        raise SystemExit(f"{POSTGRES_ENV} is not set (source scripts/postgres-for-tests)")
    election = Election(options.lease, options.renew, options.retry)
    # A follower's start-up waits retry + startup_wait for an election it will not win; the
    # shorter wait only shortens restarts, not the takeover measured.
    args = (*election.flags(), "--Reconciler.startup_wait_seconds=2")
    rng = random.Random(options.seed)
    rounds: list[Round] = []
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="raworc-failover-") as tmp,
        replica_set(
            Path(tmp), base_db_url=base, database="raworc_failover_bench", instance=INSTANCE,
            args=args,
        ) as replicas,
    ):  # fmt: skip
        replicas.start_all(3)
        for n in range(options.rounds):
            done = one_round(replicas, rng, options.retry)
            rounds.append(done)
            print(f"[failover] round {n + 1}: {asdict(done)}", file=sys.stderr, flush=True)
    return {
        "election": asdict(election),
        "rounds": [asdict(r) for r in rounds],
        "lease": summary([r.lease_seconds for r in rounds]),
        "loops": summary([r.loops_seconds for r in rounds]),
        "seconds": round(time.monotonic() - began, 1),
        "machine": report.machine(),
        "argv": sys.argv[1:],
    }


def table(results: dict[str, Any]) -> str:
    e = results["election"]
    head = (
        f"failover after kill -9 of the leader, {len(results['rounds'])} rounds, "
        f"lease {e['lease']:g} s / renew {e['renew']:g} s / retry {e['retry']:g} s"
    )
    rows = [head, "| observable | p50 | p99 | min | max |", "|---|---|---|---|---|"]
    for key, label in (("lease", "Lease names another replica"), ("loops", "new leader logs")):
        s = results[key]
        rows.append(f"| {label} | {s['p50']:.2f} s | {s['p99']:.2f} s | {s['min']:.2f} s | "
                    f"{s['max']:.2f} s |")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    results = run(options)
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / "failover.json"
    path.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
