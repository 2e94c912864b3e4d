"""The spawner scenarios, side after side, each side in its own process on a fresh kubesim."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.cluster import KubeSimServer, PodListeners, PodWatch
from benchmarks.measure import summary_ms
from benchmarks.options import Options
from benchmarks.side import Plan

#: Pod IPs to listen on beyond N: the warm-up, the bad image and the spawns during the flood.
SPARE_PODS = 64


async def run_side(name: str, options: Options, log: Any) -> dict[str, Any]:
    """One side against a fresh kubesim: the side's figures plus Running→return times."""
    with KubeSimServer(
        kubelet_start_delay=options.kubelet_delay, latency=options.latency, nodes=options.nodes
    ) as sim:
        watch = PodWatch(sim.url, sim.token)
        await watch.start()
        try:
            result = await _side_process(name, sim, options, log)
        finally:
            await watch.stop()
    result["running_to_return"] = running_to_return(result, watch.ready_at)
    return result


def running_to_return(result: dict[str, Any], ready_at: dict[str, float]) -> dict[str, Any]:
    """From the harness seeing a pod Running and Ready to the side's spawn returning."""
    spawns = result.get("storm", {}).get("spawns", [])
    gaps = [s["returned_at"] - ready_at[s["pod"]] for s in spawns if s["pod"] in ready_at]
    figures: dict[str, Any] = summary_ms(gaps)
    figures["unmatched"] = len(spawns) - len(gaps)
    figures["min_ms"] = round(min(gaps, default=float("nan")) * 1000, 1)
    return figures


def _plan(name: str, sim: KubeSimServer, options: Options) -> Plan:
    return Plan(
        side=name,
        url=sim.url,
        token=sim.token,
        servers=options.servers,
        steady_seconds=options.steady_seconds,
        flood_events=options.flood_events,
        flood_spawns=options.flood_spawns,
        flood_related=options.flood_related,
        start_timeout=options.start_timeout,
        bad_image_timeout=options.bad_image_timeout,
        profile=str((options.out / f"profile-{name}.prof").resolve()) if options.profile else "",
    )


async def _side_process(
    name: str, sim: KubeSimServer, options: Options, log: Any
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        plan_file, out_file = Path(tmp) / "plan.json", Path(tmp) / "out.json"
        plan_file.write_text(json.dumps(asdict(_plan(name, sim, options))))
        env = {**os.environ, "KUBECONFIG": sim.kubeconfig}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.side", str(plan_file), str(out_file),
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            code = await asyncio.wait_for(proc.wait(), options.side_timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if code != 0 or not out_file.exists():
            raise RuntimeError(f"side {name} exited with {code}; see its log")
        return dict(json.loads(out_file.read_text()))


async def run_spawn_scenarios(options: Options, log: Any) -> dict[str, Any]:
    """Every selected side, one after the other, with pod listeners for all of them."""
    results: dict[str, Any] = {}
    with PodListeners(options.servers + SPARE_PODS):
        for name in options.sides:
            print(f"[bench] {name}: N={options.servers} ...", file=sys.stderr, flush=True)
            results[name] = await run_side(name, options, log)
    return results
