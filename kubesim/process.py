"""kubesim in its own process, for benchmarks: start it, learn its URL, read its counters.

>>> with KubeSimProcess() as sim:                      # doctest: +SKIP
...     print(sim.url, sim.kubeconfig)
...     sim.reset_counters()
...     ...                                            # drive load against sim.url
...     print(sim.counters()["total"])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


class KubeSimProcess:
    """Runs ``python -m kubesim`` and talks to its control endpoints.

    ``module`` may name another launcher with the same command line and ready line (the
    benchmarks use one that sets kubelet timings and request latency).
    """

    def __init__(
        self,
        *,
        args: list[str] | None = None,
        tls: bool = False,
        startup_timeout: float = 30.0,
        module: str = "kubesim",
    ) -> None:
        self.args = list(args or [])
        self.module = module
        self.tls = tls
        self.startup_timeout = startup_timeout
        self.url = ""
        self.token = ""
        self.kubeconfig = ""
        self._proc: subprocess.Popen[str] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> KubeSimProcess:
        """Start the server and wait for its ready line."""
        self._tmp = tempfile.TemporaryDirectory(prefix="kubesim-proc-")
        kubeconfig = str(Path(self._tmp.name) / "kubeconfig")
        cmd = [
            sys.executable,
            "-m",
            self.module,
            "--port",
            "0",
            "--kubeconfig",
            kubeconfig,
            *([] if self.tls else ["--no-tls"]),
            *self.args,
        ]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"kubesim exited before it was ready: {' '.join(cmd)}")
        ready = json.loads(line)
        self.url, self.token, self.kubeconfig = ready["url"], ready["token"], ready["kubeconfig"]
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc else 0

    def _control(self, method: str, what: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(verify=False, timeout=10) as client:
            response = client.request(
                method, f"{self.url}/_kubesim/{what}", headers=headers, json=body
            )
        response.raise_for_status()
        return response.json()

    def counters(self) -> dict[str, Any]:
        """The request counters (see :meth:`Counters.snapshot`)."""
        return dict(self._control("GET", "counters"))

    def reset_counters(self) -> dict[str, Any]:
        """Zero the counters; returns what they held."""
        return dict(self._control("DELETE", "counters"))

    def configure_faults(self, **faults: Any) -> None:
        """Send a fault description (see :meth:`Faults.configure`), e.g. ``compact=True``."""
        self._control("POST", "faults", faults)

    def state(self) -> dict[str, Any]:
        return dict(self._control("GET", "state"))

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> KubeSimProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
