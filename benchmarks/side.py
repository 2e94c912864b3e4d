"""One spawner side in a process of its own: ``python -m benchmarks.side PLAN.json OUT.json``.

Runs, in order, against the kubesim named in the plan: set-up (caches filled, not measured),
the spawn storm, the steady state, the bad image, then the event flood (last, because it leaves
caches as large as the flood made them). Writes the figures as JSON to ``OUT.json``. Every
measurement is this process's own: CPU time, RSS and event-loop lag.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.control import Control, by_verb, by_verb_and_code, per
from benchmarks.measure import MB, LoopLag, Window, rss_bytes, summary_ms
from benchmarks.sides import NAMESPACE, Side, Spawned, make_side

LAG_INTERVAL = 0.01
STEADY_LAG_INTERVAL = 0.25


@dataclass
class Plan:
    """What the harness asks a side to do (written as JSON by the harness)."""

    side: str
    url: str
    token: str
    servers: int
    steady_seconds: float
    flood_events: int
    flood_spawns: int
    flood_related: float
    start_timeout: float
    bad_image_timeout: float
    settle_seconds: float = 1.0
    profile: str = ""
    """If set, a cProfile of the whole side process is written to this file."""


class Runner:
    """Drives one side through the scenarios and collects the figures."""

    def __init__(self, plan: Plan, side: Side) -> None:
        self.plan = plan
        self.side = side
        self.control = Control(plan.url, plan.token)
        self.lag = LoopLag(interval=LAG_INTERVAL)
        self.pods: list[str] = []

    async def run(self) -> dict[str, Any]:
        window = Window()
        await self.side.setup()
        result: dict[str, Any] = {"side": self.plan.side, "setup": window.close()}
        self.lag.start()
        try:
            result["storm"] = await self.storm()
            if self.plan.steady_seconds > 0:
                result["steady"] = await self.steady()
            if self.plan.bad_image_timeout > 0:
                result["bad_image"] = await self.bad_image()
            if self.plan.flood_events > 0:
                result["flood"] = await self.flood()
        finally:
            await self.lag.stop()
        return result

    async def _begin(self) -> Window:
        await asyncio.to_thread(self.control.reset)
        self.lag.take()
        return Window()

    async def _counters(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.control.counters)

    async def _spawn_all(self, users: list[str]) -> tuple[list[Spawned], list[str]]:
        outcomes = await asyncio.gather(
            *(self.side.spawn(user) for user in users), return_exceptions=True
        )
        spawned = [o for o in outcomes if isinstance(o, Spawned)]
        errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
        return spawned, errors

    async def storm(self) -> dict[str, Any]:
        """N servers started at once."""
        users = [f"user-{i:05d}" for i in range(self.plan.servers)]
        window = await self._begin()
        spawned, errors = await self._spawn_all(users)
        figures = window.close() | self.lag.take()
        counters = await self._counters()
        self.pods = [s.pod for s in spawned]
        n = max(1, len(spawned))
        return figures | {
            "servers": self.plan.servers,
            "ready": len(spawned),
            "errors": errors[:10],
            "error_count": len(errors),
            "latency": summary_ms([s.seconds for s in spawned]),
            "latencies_s": [round(s.seconds, 4) for s in spawned],
            "spawns": [asdict(s) | {"seconds": round(s.seconds, 4)} for s in spawned],
            "requests": by_verb(counters),
            "requests_per_spawn": per(by_verb(counters), n),
            "requests_by_code": by_verb_and_code(counters),
            "cpu_ms_per_spawn": round(figures["cpu_s"] * 1000 / n, 2),
        }

    async def steady(self) -> dict[str, Any]:
        """The ready servers held; what the side costs the API server and itself meanwhile.

        The lag sampler wakes every 250 ms here instead of 10 ms: at 100 wake-ups a second it
        would cost more CPU than an idle spawner, and idle CPU is what this scenario measures.
        """
        self.lag.interval = STEADY_LAG_INTERVAL
        window = await self._begin()
        await asyncio.sleep(self.plan.steady_seconds)
        figures = window.close() | self.lag.take()
        self.lag.interval = LAG_INTERVAL
        counters = by_verb(await self._counters())
        minutes = figures["wall_s"] / 60
        return figures | {
            "servers": len(self.pods),
            "seconds": self.plan.steady_seconds,
            "requests": counters,
            "requests_per_minute": per(counters, minutes, digits=2),
            "cpu_s_per_minute": round(figures["cpu_s"] / minutes, 4),
        }

    async def bad_image(self) -> dict[str, Any]:
        """A server whose image cannot be pulled: how fast and how clearly does it fail?"""
        began = time.monotonic()
        try:
            async with asyncio.timeout(self.plan.bad_image_timeout + 5):
                await self.side.spawn("user-bad-image", bad_image=True)
            outcome, message = "started (unexpected)", ""
        except TimeoutError as e:  # the spawner's own start timeout, or the harness's bound
            outcome = "failed (timeout)" if str(e) else "timed out (harness)"
            message = f"{type(e).__name__}: {e}"
        except Exception as e:
            outcome, message = "failed", f"{type(e).__name__}: {e}"
        seconds = time.monotonic() - began
        return {
            "outcome": outcome,
            "seconds": round(seconds, 2),
            "message": message[:600],
            "names_image": "does-not-exist" in message,
            "names_reason": any(r in message for r in ("ErrImagePull", "ImagePullBackOff")),
        }

    async def flood(self) -> dict[str, Any]:
        """Events flood the namespace; memory growth, loop lag, and spawns meanwhile."""
        gc.collect()
        rss_before = rss_bytes()
        generator = await self._start_generator()
        window = await self._begin()
        await generator.wait()
        generated = time.monotonic() - window.started
        await self._settle()
        figures = window.close() | self.lag.take()
        rss_after = rss_bytes()
        counters = by_verb(await self._counters())
        users = [f"flood-{i:03d}" for i in range(self.plan.flood_spawns)]
        spawned, errors = await self._spawn_all(users)
        return figures | {
            "events": self.plan.flood_events,
            "generator_exit": generator.returncode,
            "generate_s": round(generated, 2),
            "rss_before_mb": round(rss_before / MB, 1),
            "rss_after_mb": round(rss_after / MB, 1),
            "rss_growth_mb": round((rss_after - rss_before) / MB, 1),
            "events_seen": self.side_events_seen(),
            "requests": counters,
            "spawns_after": len(users),
            "spawns_after_ready": len(spawned),
            "spawns_after_errors": errors[:5],
            "spawns_after_latency": summary_ms([s.seconds for s in spawned]),
        }

    async def _start_generator(self) -> asyncio.subprocess.Process:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(self.pods, f)
        # "--name=value": a token may start with "-", which argparse would take for an option.
        args = [
            f"--url={self.plan.url}", f"--token={self.plan.token}", f"--namespace={NAMESPACE}",
            f"--count={self.plan.flood_events}", f"--related-pods={f.name}",
            f"--related-fraction={self.plan.flood_related}",
        ]  # fmt: skip
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "benchmarks.flood", *args)

    async def _settle(self) -> None:
        """Wait until the side has stopped receiving events (bounded)."""
        deadline = time.monotonic() + 120
        await asyncio.sleep(self.plan.settle_seconds)
        seen = self.side_events_seen()
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            now = self.side_events_seen()
            if now == seen:
                return
            seen = now

    def side_events_seen(self) -> int:
        """Events the side has taken in (raworc: informer count; KubeSpawner: cached events)."""
        seen = getattr(self.side, "events_seen", None)
        return int(seen()) if seen else -1


async def main_async(plan: Plan) -> dict[str, Any]:
    side = make_side(
        plan.side,
        plan.url,
        plan.token,
        start_timeout=plan.start_timeout,
        bad_image_timeout=plan.bad_image_timeout,
    )
    runner = Runner(plan, side)
    try:
        return await runner.run()
    finally:
        await side.close()


def main(argv: list[str]) -> int:
    plan_file, out_file = argv
    with open(plan_file) as f:
        plan = Plan(**json.load(f))
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    if plan.profile:
        import cProfile

        with cProfile.Profile() as profiler:
            result = asyncio.run(main_async(plan))
        profiler.dump_stats(plan.profile)
    else:
        result = asyncio.run(main_async(plan))
    result["pid"] = os.getpid()
    with open(out_file, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
