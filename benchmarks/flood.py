"""Create core/v1 Events through the API from a process of its own.

``python -m benchmarks.flood --url URL --token T --namespace NS --count 35000`` writes ``count``
events into the namespace from ``--concurrency`` connections. Most are about pods that have
nothing to do with any spawner (``unrelated-<n>``); ``--related-fraction`` of them are about the
pods listed in ``--related-pods`` (a JSON list), as a busy cluster would report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from typing import Any

import aiohttp

MESSAGES = [
    ("Normal", "Pulled", 'Successfully pulled image "quay.io/org/app:{n}" in 1.2s. Size: 5242880.'),
    ("Normal", "Created", "Created container: app-{n}"),
    ("Normal", "Started", "Started container app-{n}"),
    ("Warning", "BackOff", "Back-off restarting failed container app-{n} in pod unrelated-{n}"),
    ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flood")
    parser.add_argument("--url", required=True, help="kubesim URL (127.0.0.1 only)")
    parser.add_argument("--token", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--count", type=int, default=35_000, help="events to create")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--related-pods", help="JSON file: pod names the spawner side owns")
    parser.add_argument("--related-fraction", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def event_body(i: int, namespace: str, pod: str, rng: random.Random) -> dict[str, Any]:
    """A kubelet-style event about ``pod``."""
    kind, reason, message = rng.choice(MESSAGES)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod}.flood{i:06d}", "namespace": namespace},
        "involvedObject": {
            "kind": "Pod", "namespace": namespace, "name": pod, "uid": str(uuid.UUID(int=i)),
            "apiVersion": "v1", "fieldPath": "spec.containers{app}",
        },
        "reason": reason,
        "message": message.format(n=i % 997),
        "type": kind,
        "source": {"component": "kubelet", "host": f"worker-{i % 17}"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }  # fmt: skip


def pod_for(i: int, related: list[str], fraction: float, rng: random.Random) -> str:
    if related and rng.random() < fraction:
        return rng.choice(related)
    return f"unrelated-{i % 2000}"


async def _worker(
    session: aiohttp.ClientSession, path: str, bodies: list[dict[str, Any]], failures: list[int]
) -> None:
    while bodies:
        body = bodies.pop()
        async with session.post(path, json=body) as response:
            await response.read()
            if response.status != 201:
                failures.append(response.status)


def read_related(path: str | None) -> list[str]:
    if not path:
        return []
    with open(path) as f:
        return list(json.load(f))


async def flood(args: argparse.Namespace, related: list[str]) -> dict[str, Any]:
    rng = random.Random(args.seed)
    bodies = [
        event_body(i, args.namespace, pod_for(i, related, args.related_fraction, rng), rng)
        for i in range(args.count)
    ]
    bodies.reverse()  # popped from the end: created in index order
    path = f"/api/v1/namespaces/{args.namespace}/events"
    headers = {"Authorization": f"Bearer {args.token}"}
    failures: list[int] = []
    began = time.monotonic()
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(args.url, headers=headers, connector=connector) as session:
        workers = [_worker(session, path, bodies, failures) for _ in range(args.concurrency)]
        await asyncio.gather(*workers)
    seconds = time.monotonic() - began
    return {"created": args.count - len(failures), "failures": len(failures), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(flood(args, read_related(args.related_pods)))
    print(json.dumps(result), file=sys.stderr)
    return 0 if result["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
