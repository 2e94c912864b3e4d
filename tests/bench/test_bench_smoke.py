"""The benchmark harness keeps working: a small run of every scenario on every side.

Asserts correctness (every server ready on every side, counters read, JSON and plot written,
every process gone afterwards), never timing: the figures depend on the machine.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.bench.conftest import BenchRun

pytestmark = pytest.mark.slow

SIDES = ("raworc-spawner", "raworc-manager", "kubespawner")
SMOKE_ARGS = (
    "-n", "20", "--kubelet-delay", "0.5", "--steady-seconds", "2", "--flood-events", "1000",
    "--flood-spawns", "2", "--bad-image-timeout", "2", "--rest-seconds", "1",
    "--rest-sessions", "500", "--rest-connections", "8", "--wake-sessions", "3",
)  # fmt: skip


def test_a_small_run_starts_every_server_on_every_side_and_writes_its_results(
    run_bench: Callable[..., BenchRun],
) -> None:
    run = run_bench(*SMOKE_ARGS)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not run.leftover_processes, "kubesim, a side or a load generator outlived the run"
    sides = run.results["sides"]
    assert set(sides) == set(SIDES)
    for name, side in sides.items():
        storm = side["storm"]
        assert storm["ready"] == storm["servers"] == 20, (name, storm["errors"])
        assert storm["requests"]["create"] >= 40, name  # a PVC and a pod per server
        assert side["running_to_return"]["count"] == 20, name
        assert side["steady"]["requests_per_minute"]["list"] >= 0, name
        assert side["flood"]["generator_exit"] == 0, name
        assert side["flood"]["spawns_after_ready"] == 2, (name, side["flood"])
        assert side["bad_image"]["outcome"] != "started (unexpected)", name
    for name in ("raworc-spawner", "raworc-manager"):
        assert sides[name]["bad_image"]["outcome"] == "failed", sides[name]["bad_image"]
    rest = run.results["rest"]
    for endpoint in ("hello_before", "get_session", "list_page", "hello_after"):
        assert rest[endpoint]["requests"] > 0 and rest[endpoint]["non_2xx"] == 0, endpoint
    wake = run.results["wake"]
    assert wake["woken"] == wake["sessions"] == 3, wake["errors"]
    assert run.results["targets"], "no target verdicts"
    assert (run.out / "spawn-latency-cdf.png").stat().st_size > 0
    assert "storm: spawn latency p99 (ms)" in run.stdout
