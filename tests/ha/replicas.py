"""Several ``raworc-spawner serve`` replicas of one instance: one PostgreSQL database, one kubesim.

Used by the process-level HA test and by ``benchmarks/failover.py``. Each replica is a real
subprocess on its own port with ``KUBERNETES_ENABLED=true``, the same ``RAWORC_DB_URL`` and the
same ``RAWORC_INSTANCE_NAME``; the leader holds the Lease ``raworc-leader-<instance>`` in the
session namespace (docs/ha.md). Every process started here is killed by :meth:`ReplicaSet.close`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.operator.conftest import NS, Cluster, Server, kill, running_cluster, start_server
from tests.postgres import create_database, drop_database

#: kubesim nodes big enough that hundreds of session pods all schedule.
BIG_NODES = ("--nodes", "2", "--node-cpu", "1000", "--node-memory", "4000Gi")
API = "/api/v0/sessions"


@dataclass(frozen=True)
class Election:
    """``LeaderElection`` settings, in seconds."""

    lease: float = 15.0
    renew: float = 10.0
    retry: float = 2.0

    def flags(self) -> list[str]:
        return [
            f"--LeaderElection.lease_duration_seconds={self.lease:g}",
            f"--LeaderElection.renew_deadline_seconds={self.renew:g}",
            f"--LeaderElection.retry_period_seconds={self.retry:g}",
        ]


@dataclass
class Replica:
    """One serve process of the set."""

    index: int
    server: Server
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log(self) -> Path:
        return self.data_dir / "server.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.server.proc.poll() is None


def pid_of(identity: str) -> int:
    """The process id in an election identity ``<host>-<pid>-<suffix>`` (see ``core.py``)."""
    return int(identity.rsplit("-", 2)[1])


@dataclass
class ReplicaSet:
    """Replicas of instance ``instance`` on one database and one kubesim."""

    cluster: Cluster
    token: str
    db_url: str
    instance: str
    root: Path
    args: tuple[str, ...] = ()
    replicas: list[Replica] = field(default_factory=list)
    _api: httpx.Client | None = None

    @property
    def lease_name(self) -> str:
        return f"raworc-leader-{self.instance}"

    def start(self, index: int) -> Replica:
        """Start (or restart) replica ``index``; returns once it listens."""
        data_dir = self.root / f"replica-{index}"
        server = start_server(
            self.cluster,
            token=self.token,
            data_dir=data_dir,
            env={"RAWORC_DB_URL": self.db_url, "RAWORC_INSTANCE_NAME": self.instance},
            args=self.args,
        )
        replica = Replica(index, server, data_dir)
        self.replicas = [r for r in self.replicas if r.index != index] + [replica]
        self.replicas.sort(key=lambda r: r.index)
        return replica

    def start_all(self, count: int) -> list[Replica]:
        """Start ``count`` replicas: the first alone (it creates the schema), then the rest."""
        self.start(0)
        with concurrent.futures.ThreadPoolExecutor(max(count - 1, 1)) as pool:
            list(pool.map(self.start, range(1, count)))
        return self.replicas

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive()]

    # -- the Lease, read straight from kubesim ----------------------------------------------------

    def kube(self) -> httpx.Client:
        if self._api is None:
            self._api = httpx.Client(
                base_url=self.cluster.url,
                headers={"Authorization": f"Bearer {self.cluster.sim.token}"},
                verify=ssl.create_default_context(cafile=str(self.cluster.ca_file)),
                timeout=10,
            )
        return self._api

    def kube_get(self, path: str, **params: str) -> dict[str, Any]:
        response = self.kube().get(path, params=params)
        response.raise_for_status()
        return dict(response.json())

    def holder(self) -> str:
        """The Lease's holderIdentity ("" when released or absent)."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{self.lease_name}"
        response = self.kube().get(path)
        if response.status_code == 404:
            return ""
        response.raise_for_status()
        return str((response.json().get("spec") or {}).get("holderIdentity") or "")

    def leader(self) -> Replica | None:
        """The live replica the Lease names, if any."""
        holder = self.holder()
        if not holder:
            return None
        pid = pid_of(holder)
        return next((r for r in self.live() if r.pid == pid), None)

    def session_objects(self, plural: str) -> list[dict[str, Any]]:
        """Pods or claims labelled as sessions of this instance."""
        selector = f"app=raworc,component=session,raworc.dev/instance={self.instance}"
        listed = self.kube_get(f"/api/v1/namespaces/{NS}/{plural}", labelSelector=selector)
        return list(listed["items"])

    def close(self) -> None:
        for replica in self.replicas:
            kill(replica.server.proc)
        if self._api is not None:
            self._api.close()


@contextlib.contextmanager
def replica_set(
    root: Path,
    *,
    base_db_url: str,
    database: str,
    instance: str,
    args: tuple[str, ...],
    kubesim_args: tuple[str, ...] = BIG_NODES,
) -> Iterator[ReplicaSet]:
    """A kubesim with deploy/ applied and a fresh database; the replicas are started by the
    caller (:meth:`ReplicaSet.start_all`); all are killed and the database dropped after."""
    db_url = asyncio.run(create_database(base_db_url, database))
    try:
        with running_cluster(root / "cluster", *kubesim_args) as cluster:
            cluster.apply_deploy()
            token = cluster.create_token()
            replicas = ReplicaSet(cluster, token, db_url, instance, root, args)
            try:
                yield replicas
            finally:
                replicas.close()
    finally:
        asyncio.run(drop_database(base_db_url, database))
