"""``make kubesim`` runs kubesim standalone and prints the ``export KUBECONFIG=…`` line to use."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
MAKE = shutil.which("make")
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lines_of(stream: object) -> queue.Queue[str]:
    """Lines of a pipe, read by a daemon thread so waits for them can time out."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_line(lines: queue.Queue[str], prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line.startswith(prefix):
            return line.strip()
    pytest.fail(f"no line starting with {prefix!r} within {timeout}s")


@pytest.fixture
def make_kubesim(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    if MAKE is None or not os.access(KUBECTL, os.X_OK):
        pytest.skip("make or kubectl is not installed")
    port, kubeconfig = free_port(), tmp_path / "kubesim.yaml"
    # -o: the venv is the one running this test; the target's recipe is what is checked.
    proc = subprocess.Popen(
        [
            MAKE,
            "--no-print-directory",
            "-C",
            str(ROOT),
            "-o",
            ".venv/.installed",
            "kubesim",
            f"KUBESIM_PORT={port}",
            f"KUBESIM_KUBECONFIG={kubeconfig}",
            "ARGS=--namespace raworc-sessions",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc, kubeconfig, port
    finally:
        proc.terminate()  # make passes SIGTERM on to kubesim
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_make_kubesim_prints_the_kubeconfig_line_kubectl_then_uses(
    make_kubesim: tuple[subprocess.Popen[str], Path, int], tmp_path: Path
) -> None:
    proc, kubeconfig, port = make_kubesim
    stdout, stderr = lines_of(proc.stdout), lines_of(proc.stderr)
    ready = wait_for_line(stdout, "{", STARTUP_SECONDS)
    assert f'"url": "https://127.0.0.1:{port}"' in ready
    export = wait_for_line(stderr, "export KUBECONFIG=", STARTUP_SECONDS)
    assert export == f"export KUBECONFIG={kubeconfig}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", f"{export} && {KUBECTL} get namespaces -o name"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "namespace/default",
        "namespace/kube-system",
        "namespace/raworc-sessions",
    ]


def test_make_kubesim_stops_the_server_when_make_is_stopped(
    make_kubesim: tuple[subprocess.Popen[str], Path, int],
) -> None:
    proc, _, port = make_kubesim
    wait_for_line(lines_of(proc.stderr), "export KUBECONFIG=", STARTUP_SECONDS)
    proc.terminate()
    assert proc.wait(timeout=15) != 0
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "kubesim still listens"
