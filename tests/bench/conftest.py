"""Runs ``python -m benchmarks`` in a process group of its own and reads what it wrote."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class BenchRun:
    """A finished benchmark run: exit status, output, results.json and the output directory."""

    returncode: int
    stdout: str
    stderr: str
    results: dict[str, Any]
    out: Path
    leftover_processes: bool


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def run_bench(tmp_path: Path) -> Iterator[Callable[..., BenchRun]]:
    """Call with the CLI arguments; every process of the run is killed at teardown regardless."""
    groups: list[int] = []

    def run(*args: str, timeout: float = 100) -> BenchRun:
        out = tmp_path / "bench-out"
        cmd = [sys.executable, "-m", "benchmarks", *args, "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, text=True, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        groups.append(proc.pid)
        stdout, stderr = proc.communicate(timeout=timeout)
        deadline = time.monotonic() + 5
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        leftover = _group_alive(proc.pid)
        results_file = out / "results.json"
        results = json.loads(results_file.read_text()) if results_file.exists() else {}
        return BenchRun(proc.returncode, stdout, stderr, results, out, leftover)

    try:
        yield run
    finally:
        for pgid in groups:
            _kill_group(pgid)
