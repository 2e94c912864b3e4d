"""``python -m benchmarks``: raworc-spawner vs KubeSpawner on kubesim, and the REST API.

Examples::

    python -m benchmarks                                  # everything, N=500, 5 min steady state
    python -m benchmarks -n 1000 --scenarios storm        # the spawn storm only, 1,000 servers
    python -m benchmarks --scenarios rest                 # REST throughput only
    python -m benchmarks --scenarios wake                 # wake latency through the proxy
    python -m benchmarks -n 20 --steady-seconds 3 --flood-events 2000 --rest-seconds 2  # smoke
    python -m benchmarks failover --rounds 10             # leader failover of 3 replicas

Prints the tables, and writes ``results.json``, ``spawn-latency-cdf.png`` and the processes'
logs (``sides.log``) into ``--out``. Exit status 0 when every side started every server
and every sleeping session woke.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from benchmarks import report
from benchmarks.options import Options, parse
from benchmarks.rest import run_rest
from benchmarks.spawning import run_spawn_scenarios
from benchmarks.wake import run_wake


def run(options: Options) -> dict[str, Any]:
    """Run the selected scenarios; returns everything measured."""
    options.out.mkdir(parents=True, exist_ok=True)
    began = time.time()
    results: dict[str, Any] = {"options": _options_json(options), "machine": report.machine()}
    if options.spawn_scenarios:
        with open(options.out / "sides.log", "ab") as log:
            results["sides"] = asyncio.run(run_spawn_scenarios(options, log))
        report.enrich(results["sides"])
    if "rest" in options.scenarios:
        print("[bench] REST API ...", file=sys.stderr, flush=True)
        results["rest"] = run_rest(options)
    if "wake" in options.scenarios:
        print("[bench] wake latency ...", file=sys.stderr, flush=True)
        results["wake"] = asyncio.run(run_wake(options))
    results["targets"] = report.targets(
        results.get("sides", {}), results.get("rest"), results.get("wake")
    )
    results["seconds"] = round(time.time() - began, 1)
    return results


def _options_json(options: Options) -> dict[str, Any]:
    data = dict(vars(options))
    data["out"] = str(options.out)
    data["argv"] = sys.argv[1:]
    return data


def write_outputs(results: dict[str, Any], options: Options) -> None:
    """Tables on stdout; JSON and the CDF plot in the output directory."""
    if sides := results.get("sides"):
        print(report.spawn_table(sides))
        print()
    if rest := results.get("rest"):
        print(report.rest_table(rest))
        print()
    if wake := results.get("wake"):
        print(report.wake_line(wake))
        print()
    if results["targets"]:
        print(report.targets_table(results["targets"]))
        print()
    json_path = options.out / "results.json"
    json_path.write_text(json.dumps(results, indent=1))
    print(f"results: {json_path}")
    if sides and options.plot:
        png = options.out / "spawn-latency-cdf.png"
        title = f"Spawn storm, N={options.servers}, kubelet start {options.kubelet_delay:g} s"
        if report.plot_cdf(sides, png, title=title):
            print(f"plot: {png}")


def all_ready(results: dict[str, Any]) -> bool:
    """Every server of every side started, and every sleeping session woke."""
    wake = results.get("wake") or {"woken": 0, "sessions": 0}
    return wake["woken"] == wake["sessions"] and all(
        side["storm"]["ready"] == side["storm"]["servers"]
        for side in results.get("sides", {}).values()
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["failover"]:  # its own set-up and options: benchmarks/failover.py
        from benchmarks import failover

        return failover.main(args[1:])
    options = parse(args)
    results = run(options)
    write_outputs(results, options)
    return 0 if all_ready(results) else 1


if __name__ == "__main__":
    sys.exit(main())
