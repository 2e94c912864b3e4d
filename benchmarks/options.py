"""Command-line options of ``python -m benchmarks``."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.sides import SIDES

SCENARIOS = ("storm", "steady", "bad-image", "flood", "rest", "wake")


@dataclass
class Options:
    """Every knob of a run (see ``python -m benchmarks --help`` for what each means)."""

    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    sides: list[str] = field(default_factory=lambda: list(SIDES))
    servers: int = 500
    steady_seconds: float = 300.0
    latency: float = 0.005
    kubelet_delay: float = 2.0
    flood_events: int = 35_000
    flood_spawns: int = 5
    flood_related: float = 0.02
    start_timeout: float = 600.0
    bad_image_timeout: float = 10.0
    rest_sessions: int = 10_000
    rest_seconds: float = 10.0
    rest_connections: int = 32
    wake_sessions: int = 20
    out: Path = Path("bench-results")
    plot: bool = True
    profile: bool = False

    def __post_init__(self) -> None:
        if "steady" not in self.scenarios:
            self.steady_seconds = 0.0
        if "flood" not in self.scenarios:
            self.flood_events = 0
        if "bad-image" not in self.scenarios:
            self.bad_image_timeout = 0.0

    @property
    def spawn_scenarios(self) -> bool:
        return any(s in self.scenarios for s in ("storm", "steady", "bad-image", "flood"))

    @property
    def nodes(self) -> int:
        """Enough simulated nodes (8 CPUs, 110 pods each) for every pod at 100m CPU."""
        return max(1, math.ceil((self.servers + 64) / 75))

    @property
    def side_timeout(self) -> float:
        """Upper bound on one side's process, so a hung side cannot hang the run."""
        return 600 + self.start_timeout + self.steady_seconds + 2 * self.bad_image_timeout


def _csv(allowed: tuple[str, ...]) -> type:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}; got {text!r}")
        return items

    return parse  # type: ignore[return-value]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="raworc-spawner vs KubeSpawner 7.1 on kubesim, and the REST API vs Tornado.",
    )
    d = Options()
    add = p.add_argument
    add(
        "--scenarios",
        type=_csv(SCENARIOS),
        default=d.scenarios,
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all); "
        "the spawner scenarios always start with the storm, whose servers they use",
    )
    add(
        "--sides",
        type=_csv(SIDES),
        default=d.sides,
        help=f"comma-separated subset of {','.join(SIDES)} (default: all)",
    )
    add("-n", "--servers", type=int, default=d.servers, help="servers started at once (500)")
    add(
        "--steady-seconds",
        type=float,
        default=d.steady_seconds,
        help="how long the ready servers are held in the steady state (300)",
    )
    add(
        "--latency",
        type=float,
        default=d.latency,
        help="seconds kubesim adds to every API request (0.005)",
    )
    add(
        "--kubelet-delay",
        type=float,
        default=d.kubelet_delay,
        help="kubesim's kubelet start delay in seconds, binding to sandbox (2.0)",
    )
    add("--flood-events", type=int, default=d.flood_events, help="events in the flood (35000)")
    add(
        "--flood-spawns",
        type=int,
        default=d.flood_spawns,
        help="servers started after the flood, to show spawns still work (5)",
    )
    add(
        "--flood-related",
        type=float,
        default=d.flood_related,
        help="share of flood events about the side's own pods (0.02)",
    )
    add(
        "--start-timeout",
        type=float,
        default=d.start_timeout,
        help="each spawner's start_timeout in seconds (600)",
    )
    add(
        "--bad-image-timeout",
        type=float,
        default=d.bad_image_timeout,
        help="KubeSpawner's start_timeout for the bad-image spawn; it has no fail-fast (10)",
    )
    add(
        "--rest-sessions",
        type=int,
        default=d.rest_sessions,
        help="sessions in the store for the REST scenario (10000)",
    )
    add(
        "--rest-seconds",
        type=float,
        default=d.rest_seconds,
        help="load duration per REST endpoint (10)",
    )
    add(
        "--rest-connections",
        type=int,
        default=d.rest_connections,
        help="concurrent connections of the load generator (32)",
    )
    add(
        "--wake-sessions",
        type=int,
        default=d.wake_sessions,
        help="sleeping sessions woken one by one through the proxy (20)",
    )
    add(
        "-o",
        "--out",
        type=Path,
        default=d.out,
        help="output directory for results.json, spawn-latency-cdf.png and logs (bench-results)",
    )
    add("--no-plot", dest="plot", action="store_false", help="skip the PNG plot")
    add(
        "--profile",
        action="store_true",
        help="cProfile each side process into OUT/profile-<side>.prof",
    )
    return p  # fmt: skip


def parse(argv: list[str] | None = None) -> Options:
    args = parser().parse_args(argv)
    return Options(**vars(args))
