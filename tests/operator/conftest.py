"""Operator tests: the real kubectl, the ``raworc-spawner`` command and a standalone kubesim,
each in its own process, talking over 127.0.0.1 on ephemeral ports.

Every process started here is killed in teardown, whatever the test's outcome.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubesim import KubeSimProcess
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NS = "raworc-sessions"
SA = "raworc-controller"
DEPLOY_FILES = ("namespace.yaml", "rbac.yaml", "networkpolicy.yaml")
#: A labelled claim and pod for session ``sid``, as raworc would create them.
ORPHAN = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: session-pvc-{sid}
  namespace: raworc-sessions
  labels: {{app: raworc, component: session, session-id: "{sid}"}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: session-{sid}
  namespace: raworc-sessions
  labels: {{app: raworc, component: session, session-id: "{sid}"}}
spec:
  containers:
  - name: session
    image: python:3.11-slim
    command: ["sleep", "infinity"]
    volumeMounts: [{{name: workspace, mountPath: /workspace}}]
  volumes:
  - name: workspace
    persistentVolumeClaim: {{claimName: session-pvc-{sid}}}
"""


@dataclass
class Cluster:
    """A standalone kubesim with kubectl and ``raworc-spawner`` runners pointed at it."""

    sim: KubeSimProcess
    home: Path
    ca_file: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.sim.url

    def kubectl(
        self, *args: str, token: str | None = None, stdin: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl (admin kubeconfig, or ``--token``)."""
        extra = [f"--token={token}"] if token else []
        env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(self.home)}
        env["KUBECONFIG"] = self.sim.kubeconfig
        done = subprocess.run(
            [KUBECTL, *extra, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

    def apply_deploy(self, *names: str) -> str:
        files = [arg for name in names or DEPLOY_FILES for arg in ("-f", str(DEPLOY / name))]
        return self.kubectl("apply", *files).stdout

    def create_token(self, account: str = SA, namespace: str = NS) -> str:
        return self.kubectl("create", "token", account, "-n", namespace).stdout.strip()

    def backend_flags(self, token: str) -> list[str]:
        return [
            f"--KubernetesBackend.api_url={self.url}",
            f"--KubernetesBackend.api_token={token}",
            f"--KubernetesBackend.ca_file={self.ca_file}",
        ]

    def spawner(
        self,
        *args: str,
        token: str,
        cwd: Path,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``raworc-spawner VERB args`` to completion against this cluster."""
        verb, rest = args[0], list(args[1:])
        return subprocess.run(
            [*SPAWNER, verb, *rest, *self.backend_flags(token)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=spawner_env(env),
            input=stdin,
            timeout=90,
        )

    def requests(self) -> list[dict[str, Any]]:
        return list(self.sim.counters()["requests"])


SPAWNER = [sys.executable, "-m", "raworc_spawner.cli"]


def spawner_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAWORC_", "KUBERNETES_"))}
    env.update(extra or {})
    return env


def _write_ca(kubeconfig: str, target: Path) -> Path:
    document = yaml.safe_load(Path(kubeconfig).read_text())
    data = document["clusters"][0]["cluster"]["certificate-authority-data"]
    target.write_bytes(base64.b64decode(data))
    return target


@contextlib.contextmanager
def running_cluster(tmp: Path, *args: str) -> Iterator[Cluster]:
    require(os.access(KUBECTL, os.X_OK), f"kubectl not found at {KUBECTL}")
    tmp.mkdir(parents=True, exist_ok=True)
    with KubeSimProcess(tls=True, args=list(args)) as sim:
        cluster = Cluster(sim, tmp, _write_ca(sim.kubeconfig, tmp / "kubesim-ca.crt"))
        try:
            yield cluster
        finally:
            for proc in cluster.started:
                kill(proc)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh standalone kubesim (no raworc namespace yet)."""
    with running_cluster(tmp_path / "cluster") as running:
        yield running


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A kubesim with deploy/namespace.yaml, rbac.yaml and networkpolicy.yaml applied."""
    with running_cluster(tmp_path_factory.mktemp("deployed")) as running:
        running.apply_deploy()
        yield running


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a process started by a test and reap it (no-op when it already ended)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@dataclass
class Server:
    """A ``raworc-spawner serve`` process with its URL and admin token."""

    proc: subprocess.Popen[str]
    url: str
    token: str

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


LISTENING = re.compile(r"listening on (http://\S+)")


def start_server(
    cluster: Cluster,
    *,
    token: str,
    data_dir: Path,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    admin_token: str = "operator-admin-token",
) -> Server:
    """Start ``raworc-spawner serve`` with KUBERNETES_ENABLED=true on a free port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        *SPAWNER,
        "serve",
        "--port=0",
        f"--data-dir={data_dir}",
        *cluster.backend_flags(token),
        "--KubernetesBackend.api_backoff_seconds=0.05",
        "--KubernetesBackend.api_backoff_max_seconds=0.5",
        "--KubernetesBackend.delete_grace_seconds=1",
        *args,
    ]
    full_env = spawner_env(
        {"KUBERNETES_ENABLED": "true", "RAWORC_ADMIN_TOKEN": admin_token, **(env or {})}
    )
    log = open(data_dir / "server.log", "a")  # noqa: SIM115 - handed to the process
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=data_dir, env=full_env
    )
    log.close()
    cluster.started.append(proc)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if match := LISTENING.search(line):
            return Server(proc, match.group(1), admin_token)
    kill(proc)
    log_text = (data_dir / "server.log").read_text()[-3000:]
    raise AssertionError(f"raworc-spawner serve did not start:\n{log_text}")


def labelled(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    """Objects of ``kind`` labelled ``app=raworc`` in the sessions namespace."""
    out = cluster.kubectl("get", kind, "-l", "app=raworc", "-n", NS, "-o", "json").stdout
    return list(json.loads(out)["items"])


def forbidden_requests(cluster: Cluster) -> list[dict[str, Any]]:
    return [row for row in cluster.requests() if row["code"] == 403]
