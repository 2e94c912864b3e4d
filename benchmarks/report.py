"""Turning results into the stdout table, the targets verdicts, the JSON file and the CDF plot."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

OURS = ("raworc-spawner", "raworc-manager")
THEIRS = "kubespawner"
Row = tuple[str, dict[str, Any]]


def machine() -> dict[str, Any]:
    """nproc, memory, CPU model, Python and the versions that matter."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    with open("/proc/meminfo") as f:
        info["memory_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    with open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    info["cpu"] = models[0] if models else platform.processor()
    for dist in ("raworc-spawner", "jupyterhub-kubespawner", "jupyterhub", "tornado",
                 "kubernetes_asyncio", "SQLAlchemy", "aiosqlite"):  # fmt: skip
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        info["wrk"] = (out.stdout or out.stderr).split("[")[0].strip()
    return info


def _get(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


SPAWN_ROWS: list[tuple[str, str]] = [
    ("storm: servers ready", "storm.ready"),
    ("storm: wall time to all ready (s)", "storm.wall_s"),
    ("storm: spawn latency p50 (ms)", "storm.latency.p50_ms"),
    ("storm: spawn latency p95 (ms)", "storm.latency.p95_ms"),
    ("storm: spawn latency p99 (ms)", "storm.latency.p99_ms"),
    ("storm: API requests per spawn (all)", "storm.requests_total_per_spawn"),
    ("storm:   create per spawn", "storm.requests_per_spawn.create"),
    ("storm:   get per spawn", "storm.requests_per_spawn.get"),
    ("storm:   list per spawn", "storm.requests_per_spawn.list"),
    ("storm:   watch per spawn", "storm.requests_per_spawn.watch"),
    ("storm: spawner CPU (s)", "storm.cpu_s"),
    ("storm: spawner CPU per spawn (ms)", "storm.cpu_ms_per_spawn"),
    ("storm: spawner peak RSS (MB)", "storm.peak_rss_mb"),
    ("storm: largest event-loop lag (ms)", "storm.max_loop_lag_ms"),
    ("storm: Running -> spawn returned p50 (ms)", "running_to_return.p50_ms"),
    ("storm: Running -> spawn returned p99 (ms)", "running_to_return.p99_ms"),
    ("steady: LIST per minute", "steady.requests_per_minute.list"),
    ("steady: WATCH per minute", "steady.requests_per_minute.watch"),
    ("steady: GET per minute", "steady.requests_per_minute.get"),
    ("steady: spawner CPU-s per minute", "steady.cpu_s_per_minute"),
    ("steady: largest event-loop lag (ms)", "steady.max_loop_lag_ms"),
    ("bad image: seconds to failure", "bad_image.seconds"),
    ("bad image: outcome", "bad_image.outcome"),
    ("bad image: message names image+reason", "bad_image.names_both"),
    ("flood: RSS growth (MB)", "flood.rss_growth_mb"),
    ("flood: largest event-loop lag (ms)", "flood.max_loop_lag_ms"),
    ("flood: LIST during flood", "flood.requests.list"),
    ("flood: spawns after the flood ready", "flood.spawns_after_ready"),
]


def enrich(results: dict[str, Any]) -> None:
    """Derived figures used by the table and the targets."""
    for result in results.values():
        storm = result.get("storm") or {}
        if storm:
            storm["requests_total_per_spawn"] = round(
                sum(storm["requests"].values()) / max(1, storm["ready"]), 3
            )
        bad = result.get("bad_image")
        if bad:
            bad["names_both"] = bool(bad["names_image"] and bad["names_reason"])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def _ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float):
        return "-"
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return "-"
    if theirs == 0:
        return "-" if ours else "="
    return f"{ours / theirs:.2f}"


def spawn_table(results: dict[str, Any]) -> str:
    """The side-by-side table, with ours/theirs ratios where KubeSpawner ran."""
    sides = list(results)
    ratios = [s for s in OURS if s in results] if THEIRS in results else []
    header = ["metric", *sides, *(f"{s}/ks" for s in ratios)]
    rows = []
    for label, path in SPAWN_ROWS:
        values = {s: _get(results[s], path) for s in sides}
        if all(v is None for v in values.values()):
            continue
        theirs = values.get(THEIRS)
        rows.append(
            [label, *(_fmt(values[s]) for s in sides), *(_ratio(values[s], theirs) for s in ratios)]
        )
    return _render([header, *rows])


def rest_table(rest: dict[str, Any]) -> str:
    header = ["REST endpoint", "requests/s", "p50 (ms)", "p99 (ms)", "non-2xx", "vs hello"]
    rows = []
    ratio = {"get_session": rest["get_vs_hello"], "list_page": rest["list_vs_hello"]}
    for name in ("hello_before", "get_session", "list_page", "hello_after"):
        r = rest[name]
        rows.append([name, _fmt(r["requests_per_s"]), _fmt(r["p50_ms"]), _fmt(r["p99_ms"]),
                     str(r["non_2xx"]), _fmt(ratio.get(name))])  # fmt: skip
    return _render([header, *rows])


def _render(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in table
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _verdict(name: str, value: Any, target: str, met: bool | None) -> dict[str, Any]:
    return {"target": name, "value": value, "goal": target, "met": met}


def _storm_targets(side: str, r: dict[str, Any], ks: dict[str, Any] | None) -> list[dict[str, Any]]:
    storm, r2r = r.get("storm") or {}, r.get("running_to_return") or {}
    if not storm:
        return []
    codes = storm.get("requests_by_code", {})
    retries = sum(n for key, n in codes.items() if not key.endswith((" 200", " 201")))
    per_spawn = storm["requests_total_per_spawn"]
    out = [
        _verdict(f"{side}: API requests per spawn", per_spawn, "<= 2.01",
                 per_spawn <= 2.01 and storm["ready"] == storm["servers"]),
        _verdict(f"{side}: requests answered other than 200/201 (retries, conflicts)", retries,
                 "0", retries == 0),
        _verdict(f"{side}: Running -> spawn returned p99 (ms)", r2r.get("p99_ms"), "<= 50",
                 (r2r.get("p99_ms") or math.inf) <= 50),
    ]  # fmt: skip
    if ks and ks.get("storm"):
        theirs = ks["storm"]
        cpu = storm["cpu_ms_per_spawn"] / max(1e-9, theirs["cpu_ms_per_spawn"])
        p99 = storm["latency"]["p99_ms"] / max(1e-9, theirs["latency"]["p99_ms"])
        out += [
            _verdict(
                f"{side}: CPU per spawn / KubeSpawner's", round(cpu, 2), "<= 0.33", cpu <= 1 / 3
            ),
            _verdict(
                f"{side}: p99 spawn latency / KubeSpawner's", round(p99, 2), "<= 0.5", p99 <= 0.5
            ),
        ]
    return out


def _other_targets(side: str, r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    if steady := r.get("steady"):
        lists, cpu = steady["requests_per_minute"]["list"], steady["cpu_s_per_minute"]
        out += [
            _verdict(f"{side}: steady LIST per minute", lists, "0", lists == 0),
            _verdict(f"{side}: steady CPU-s per minute ({steady['servers']} servers)", cpu,
                     "<= 0.1 (with 100)", cpu <= 0.1),
        ]  # fmt: skip
    if flood := r.get("flood"):
        growth, lag = flood["rss_growth_mb"], flood["max_loop_lag_ms"]
        ok = flood["spawns_after_ready"] == flood["spawns_after"]
        out += [
            _verdict(f"{side}: flood RSS growth (MB)", growth, "<= 20", growth <= 20),
            _verdict(f"{side}: flood event-loop lag (ms)", lag, "<= 50", lag <= 50),
            _verdict(f"{side}: spawns after the flood", f"{flood['spawns_after_ready']}/"
                     f"{flood['spawns_after']}", "all ready", ok),
        ]  # fmt: skip
    if bad := r.get("bad_image"):
        ok = bad["outcome"] == "failed" and bad["seconds"] <= 5 and bad["names_both"]
        out.append(
            _verdict(
                f"{side}: bad image fails (s)", bad["seconds"], "<= 5, names image and reason", ok
            )
        )
    return out


def wake_line(wake: dict[str, Any]) -> str:
    lat = wake["latency"]
    return (
        f"wake through the proxy: {wake['woken']}/{wake['sessions']} woken; "
        f"p50 {_fmt(lat['p50_ms'])} ms, p99 {_fmt(lat['p99_ms'])} ms, max {_fmt(lat['max_ms'])} ms"
        f" (kubelet start delay {_fmt(wake['kubelet_start_delay_ms'])} ms)"
    )


def targets(
    results: dict[str, Any], rest: dict[str, Any] | None, wake: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every target of the issue, for each raworc side measured."""
    out: list[dict[str, Any]] = []
    ks = results.get(THEIRS)
    for side in OURS:
        if side in results:
            out += _storm_targets(side, results[side], ks) + _other_targets(side, results[side])
    if rest:
        ratio = rest["get_vs_hello"]
        out.append(
            _verdict("REST: GET session / raw Tornado requests/s", ratio, ">= 0.7", ratio >= 0.7)
        )
    if wake:
        p99, goal = wake["latency"]["p99_ms"], wake["target_p99_ms"]
        ok = p99 <= goal and wake["woken"] == wake["sessions"]
        out.append(
            _verdict("wake via proxy: p99 (ms)", p99, f"<= {_fmt(goal)} (kubelet + 150)", ok)
        )
    return out


def targets_table(verdicts: list[dict[str, Any]]) -> str:
    verdict = {True: "met", False: "MISSED", None: "-"}
    rows = [[v["target"], _fmt(v["value"]), v["goal"], verdict[v["met"]]] for v in verdicts]
    return _render([["target", "measured", "goal", "verdict"], *rows])


def plot_cdf(results: dict[str, Any], path: Path, *, title: str) -> bool:
    """The spawn-latency CDF of every side (PNG, Agg backend); False if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    plotted = False
    for side, result in results.items():
        latencies = sorted((result.get("storm") or {}).get("latencies_s") or [])
        if not latencies:
            continue
        ys = [(i + 1) / len(latencies) for i in range(len(latencies))]
        ax.step(latencies, ys, where="post", label=f"{side} (n={len(latencies)})")
        plotted = True
    ax.set_xlabel("spawn latency (s), all servers started at once")
    ax.set_ylabel("fraction of spawns finished")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    if plotted:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return plotted
