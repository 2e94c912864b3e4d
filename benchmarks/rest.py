"""The REST scenario: raworc's API next to a raw Tornado hello-world, load from another process.

Both servers run at once, each in its own process; the load generator (``wrk`` when installed,
else :mod:`benchmarks.loadgen`) is a third. Endpoints are measured one after the other, the
hello-world before and after raworc's, so drift on a shared machine shows.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.options import Options

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@contextmanager
def server(kind: str, sessions: int, *extra: str) -> Iterator[dict[str, Any]]:
    """A REST server process; yields its ready line; stops it however the block ends."""
    cmd = [sys.executable, "-m", "benchmarks.rest_server", kind, "--sessions", str(sessions)]
    cmd += extra
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} server exited before it was ready")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return round(float(number) * UNITS[unit], 3)


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50/p99 (ms) and non-2xx answers from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return {
        "requests": int(total.group(1)),
        "requests_per_s": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def load(url: str, token: str, options: Options, *, seconds: float) -> dict[str, Any]:
    """Drive ``url`` for ``seconds`` from a separate process; wrk if available."""
    header = f"Authorization: Bearer {token}"
    conns = str(options.rest_connections)
    wrk = shutil.which("wrk")
    if wrk:
        cmd = [wrk, "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", "-H", header, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
        return parse_wrk(out.stdout) | {"tool": "wrk"}
    cmd = [sys.executable, "-m", "benchmarks.loadgen", url, "--seconds", f"{seconds:g}"]
    cmd += ["--connections", conns, "--header", header]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return dict(json.loads(out.stdout)) | {"tool": "benchmarks.loadgen"}


def run_rest(options: Options) -> dict[str, Any]:
    """Requests/s and p99 for hello-world, GET session, list page; the ratios to hello-world."""
    seconds = options.rest_seconds
    with server("hello", 0) as hello, server("raworc", options.rest_sessions) as raworc:
        api = f"{raworc['url']}/api/v0/sessions"
        targets = {
            "hello_before": (hello["url"] + "/", ""),
            "get_session": (f"{api}/{raworc['session_id']}", raworc["token"]),
            "list_page": (api, raworc["token"]),
            "hello_after": (hello["url"] + "/", ""),
        }
        for url, token in targets.values():
            load(url, token, options, seconds=min(2.0, seconds))  # warm-up
        results = {
            name: load(url, token, options, seconds=seconds)
            for name, (url, token) in targets.items()
        }
    hello_rps = (
        results["hello_before"]["requests_per_s"] + results["hello_after"]["requests_per_s"]
    ) / 2
    results["sessions_in_store"] = options.rest_sessions
    results["connections"] = options.rest_connections
    results["get_vs_hello"] = round(results["get_session"]["requests_per_s"] / hello_rps, 3)
    results["list_vs_hello"] = round(results["list_page"]["requests_per_s"] / hello_rps, 3)
    return results
