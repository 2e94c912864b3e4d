"""Capacity of kubesim: simple requests per second and concurrent watches.

Starts kubesim in its own process (so the load generator does not share its event loop), then

1. drives ``GET /api/v1/namespaces/default`` from ``--concurrency`` client connections for
   ``--seconds`` and reports requests/s and latency percentiles;
2. opens ``--watches`` concurrent watches on config maps, writes ``--writes`` config maps and
   reports how long every watcher took to receive every event, and the request rate while the
   watches are open.

Run: ``.venv/bin/python benchmarks/kubesim_capacity.py`` (``--json`` for machine-readable output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

from kubesim import KubeSimProcess

NS = "default"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of each request-rate run"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="client connections for the request run"
    )
    parser.add_argument("--watches", type=int, default=1000, help="concurrent watches to open")
    parser.add_argument(
        "--writes", type=int, default=50, help="objects written while the watches are open"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args()


async def _worker(
    session: aiohttp.ClientSession, url: str, deadline: float, latencies: list[float]
) -> int:
    errors = 0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
            if resp.status != 200:
                errors += 1
        latencies.append(time.perf_counter() - started)
    return errors


async def request_rate(
    base: str, token: str, *, seconds: float, concurrency: int
) -> dict[str, Any]:
    """Requests/s of simple GETs from ``concurrency`` keep-alive connections."""
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        errors = await asyncio.gather(
            *(
                _worker(session, f"/api/v1/namespaces/{NS}", deadline, latencies)
                for _ in range(concurrency)
            )
        )
        elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": sum(errors),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def _watch(
    session: aiohttp.ClientSession,
    rv: str,
    wanted: int,
    ready: asyncio.Event,
    release: asyncio.Event,
    opened: list[int],
    done: list[float],
) -> None:
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "600"}
    async with session.get(f"/api/v1/namespaces/{NS}/configmaps", params=params) as resp:
        assert resp.status == 200, resp.status
        opened.append(1)
        seen = 0
        await ready.wait()
        while seen < wanted:
            line = await resp.content.readline()
            if not line:
                raise RuntimeError("watch ended early")
            seen += 1
        done.append(time.monotonic())
        await release.wait()  # stay open while the request rate is measured


async def _all_delivered(done: list[float], watches: int) -> None:
    # Polling keeps the watchers free of shared bookkeeping on their hot path.
    while len(done) < watches:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def watch_capacity(
    sim: KubeSimProcess, *, watches: int, writes: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """Open ``watches`` watches, write ``writes`` objects, time the fan-out."""
    headers = {"Authorization": f"Bearer {sim.token}"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(
        sim.url, headers=headers, connector=connector, timeout=timeout
    ) as session:
        async with session.get(f"/api/v1/namespaces/{NS}/configmaps") as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        ready, release = asyncio.Event(), asyncio.Event()
        opened: list[int] = []
        done: list[float] = []
        tasks = [
            asyncio.ensure_future(_watch(session, rv, writes, ready, release, opened, done))
            for _ in range(watches)
        ]
        open_started = time.monotonic()
        while len(opened) < watches:
            await asyncio.sleep(0.05)
            for task in tasks:
                if task.done() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        open_seconds = time.monotonic() - open_started
        server_open = sim.state()["watches"]
        ready.set()
        write_started = time.monotonic()
        for i in range(writes):
            async with session.post(
                f"/api/v1/namespaces/{NS}/configmaps", json={"metadata": {"name": f"bench-{i}"}}
            ) as resp:
                assert resp.status == 201, await resp.text()
        await asyncio.wait_for(_all_delivered(done, watches), timeout=120)
        fanout = max(done) - write_started
        during = await request_rate(sim.url, sim.token, seconds=seconds, concurrency=concurrency)
        still_open = sim.state()["watches"]
        release.set()
        await asyncio.gather(*tasks)
    return {
        "watches": watches,
        "server_open_watches": server_open,
        "open_seconds": round(open_seconds, 2),
        "writes": writes,
        "events_delivered": watches * writes,
        "fanout_seconds": round(fanout, 2),
        "events_per_second": round(watches * writes / fanout),
        "requests_per_second_with_watches_open": during["requests_per_second"],
        "watches_open_during_requests": still_open,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with KubeSimProcess() as sim:
        await request_rate(sim.url, sim.token, seconds=1, concurrency=args.concurrency)  # warm-up
        simple = request_rate(
            sim.url, sim.token, seconds=args.seconds, concurrency=args.concurrency
        )
        results: dict[str, Any] = {"simple_requests": await simple}
        counters = sim.counters()
        results["watch"] = await watch_capacity(
            sim,
            watches=args.watches,
            writes=args.writes,
            seconds=args.seconds,
            concurrency=args.concurrency,
        )
        results["server_counted_requests"] = counters["total"]
    return results


def report(results: dict[str, Any]) -> str:
    s, w = results["simple_requests"], results["watch"]
    return "\n".join(
        [
            f"simple GETs: {s['requests_per_second']} req/s ({s['requests']} in {s['seconds']}s, "
            f"{s['errors']} errors, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms)",
            f"watches: {w['server_open_watches']} open at once (opened in {w['open_seconds']}s); "
            f"{w['events_delivered']} events fanned out in {w['fanout_seconds']}s "
            f"({w['events_per_second']} events/s)",
            f"simple GETs with {w['watches_open_during_requests']} watches open: "
            f"{w['requests_per_second_with_watches_open']} req/s",
        ]
    )


def main() -> int:
    args = parse_args()
    results = asyncio.run(run(args))
    print(json.dumps(results, indent=2) if args.json else report(results))
    ok = (
        results["simple_requests"]["requests_per_second"] >= 2000
        and results["watch"]["server_open_watches"] >= args.watches
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
