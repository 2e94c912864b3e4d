"""Run kubesim standalone: ``python -m kubesim --port N --kubeconfig FILE``.

Prints one JSON line (``{"url", "token", "kubeconfig", "pid"}``) on stdout once it listens,
and on stderr the shell line that points kubectl at it (``export KUBECONFIG=<absolute path>``),
then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
from pathlib import Path

from .config import KubeSimConfig, NodeSpec, Timings
from .server import KubeSim


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kubesim",
        description="A simulated Kubernetes API server on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this server to FILE")
    parser.add_argument(
        "--no-tls",
        action="store_true",
        help="serve plain HTTP (kubectl then sends no token and gets 401)",
    )
    parser.add_argument("--token", help="admin bearer token (random when omitted)")
    parser.add_argument(
        "--namespace", action="append", default=[], help="extra namespace to create (repeatable)"
    )
    parser.add_argument("--nodes", type=int, default=1, help="number of simulated nodes")
    parser.add_argument("--node-cpu", default="8", help="cpu capacity of each node")
    parser.add_argument("--node-memory", default="32Gi", help="memory capacity of each node")
    parser.add_argument(
        "--realistic", action="store_true", help="use second-scale timings, like a real cluster"
    )
    parser.add_argument(
        "--timing",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="set one control-plane delay (a Timings field, e.g. image_pull_delay=2); repeatable",
    )
    parser.add_argument(
        "--run-processes", action="store_true", help="run container commands as local processes"
    )
    parser.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="process mode: run containers in bubblewrap (auto: when it works)",
    )
    parser.add_argument(
        "--state-dir",
        help="process mode: keep volume directories here (default: a temporary directory)",
    )
    parser.add_argument("--seed", type=int, help="seed for fault injection")
    return parser.parse_args(argv)


def realistic_timings() -> Timings:
    return Timings(
        schedule_delay=0.05,
        pv_bind_delay=1.0,
        kubelet_start_delay=0.3,
        image_pull_delay=2.0,
        container_start_delay=0.5,
        image_pull_backoff=5.0,
        crash_backoff=10.0,
        crash_backoff_max=300.0,
        termination_delay=1.0,
        log_interval=0.0,
    )


def build_config(args: argparse.Namespace) -> KubeSimConfig:
    config = KubeSimConfig(
        host=args.host,
        port=args.port,
        tls=not args.no_tls,
        run_processes=args.run_processes,
        seed=args.seed,
        sandbox=args.sandbox,
        state_dir=args.state_dir,
    )
    if args.token:
        config.admin_token = args.token
    config.namespaces += [ns for ns in args.namespace if ns not in config.namespaces]
    config.nodes = [
        NodeSpec(name=f"kubesim-node-{i + 1}", cpu=args.node_cpu, memory=args.node_memory)
        for i in range(args.nodes)
    ]
    if args.realistic:
        config.timings = realistic_timings()
    for item in args.timing:
        name, _, seconds = item.partition("=")
        if name not in Timings.__dataclass_fields__:
            raise SystemExit(f"kubesim: --timing {item}: unknown timing {name!r}")
        setattr(config.timings, name, float(seconds))
    return config


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with KubeSim(build_config(args), kubeconfig_path=args.kubeconfig) as sim:
        ready = {
            "url": sim.url,
            "token": sim.token,
            "kubeconfig": str(sim.kubeconfig_path),
            "pid": _pid(),
        }
        print(json.dumps(ready), flush=True)
        if sim.kubeconfig_path is not None:
            print(export_line(sim.kubeconfig_path), file=sys.stderr, flush=True)
        await stop.wait()


def export_line(kubeconfig: str | Path) -> str:
    """``export KUBECONFIG=<absolute path>``, quoted for a POSIX shell."""
    return f"export KUBECONFIG={shlex.quote(str(Path(kubeconfig).resolve()))}"


def _pid() -> int:
    import os

    return os.getpid()


def main(argv: list[str] | None = None) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
