"""A Python HTTP load generator, used when ``wrk`` is not installed.

``python -m benchmarks.loadgen URL --seconds 10 --connections 32 [--header "K: V"]`` keeps
``--connections`` keep-alive connections busy for ``--seconds`` and prints one JSON line:
requests/s, latency p50/p99 in ms, and the count of non-2xx answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp

from benchmarks.measure import percentile


async def _worker(
    session: aiohttp.ClientSession, url: str, deadline: float, latencies: list[float]
) -> int:
    bad = 0
    while time.monotonic() < deadline:
        began = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            bad += not 200 <= response.status < 300
        latencies.append(time.perf_counter() - began)
    return bad


async def run(args: argparse.Namespace) -> dict[str, float]:
    headers = dict(h.split(": ", 1) for h in args.header)
    connector = aiohttp.TCPConnector(limit=args.connections)
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        began = time.monotonic()
        deadline = began + args.seconds
        workers = [_worker(session, args.url, deadline, latencies) for _ in range(args.connections)]
        bad = sum(await asyncio.gather(*workers))
        elapsed = time.monotonic() - began
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "non_2xx": bad,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--header", action="append", default=[], help='"Name: value"')
    print(json.dumps(asyncio.run(run(parser.parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
