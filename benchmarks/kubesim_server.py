"""kubesim with the benchmark's timings: ``python -m benchmarks.kubesim_server``.

kubesim's own command line has no flags for timings or latency, so this launcher builds the
same :class:`KubeSimConfig` with a chosen kubelet start delay, request latency, node count and
watch history, then serves like ``python -m kubesim`` (one JSON line with
``url``, ``token``, ``kubeconfig`` and ``pid`` on stdout, then until SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys

from kubesim import KubeSim, KubeSimConfig, NodeSpec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kubesim_server")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-tls", action="store_true", help="accepted; always plain HTTP")
    parser.add_argument("--kubeconfig", required=True, help="write a kubeconfig to FILE")
    parser.add_argument("--namespace", action="append", default=[], help="extra namespace")
    parser.add_argument("--nodes", type=int, default=12, help="simulated nodes (110 pods each)")
    parser.add_argument(
        "--kubelet-start-delay", type=float, default=2.0, help="seconds, bind to sandbox"
    )
    parser.add_argument("--latency", type=float, default=0.005, help="seconds added per request")
    parser.add_argument("--history-size", type=int, default=200_000, help="watch history kept")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> KubeSimConfig:
    config = KubeSimConfig(port=args.port, tls=False, history_size=args.history_size)
    config.namespaces += [ns for ns in args.namespace if ns not in config.namespaces]
    config.nodes = [NodeSpec(name=f"kubesim-node-{i + 1}") for i in range(args.nodes)]
    config.timings.kubelet_start_delay = args.kubelet_start_delay
    return config


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with KubeSim(build_config(args), kubeconfig_path=args.kubeconfig) as sim:
        sim.faults.set_latency(args.latency)
        ready = {
            "url": sim.url,
            "token": sim.token,
            "kubeconfig": str(sim.kubeconfig_path),
            "pid": os.getpid(),
        }
        print(json.dumps(ready), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
