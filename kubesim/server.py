"""KubeSim: the simulated API server, its control plane and its control handles, in-process."""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .auth import Policy
from .config import KubeSimConfig, Rule
from .control.base import Context, Timers
from .control.binder import Binder
from .control.events import EventRecorder
from .control.gc import GarbageCollector
from .control.kubelet import Kubelet
from .control.logs import LogBook
from .control.metrics import Usage
from .control.nodes import NodeInventory
from .control.scheduler import Scheduler, set_condition
from .deletion import Deleter
from .errors import ApiError, bad_request, conflict
from .faults import Counters, Faults
from .http.app import build_app
from .kubeconfig import write_kubeconfig
from .openapi import openapi_response
from .rbac import RBACAuthorizer, bootstrap
from .registry import Registry
from .resources import CATALOG
from .store import Change, Store
from .tls import serving_cert
from .tokens import ServiceAccountTokens
from .watch import WatchHub


class KubeSim:
    """A simulated Kubernetes API server on 127.0.0.1, with a scheduler, PV binder and kubelet.

    Use it as an async context manager::

        async with KubeSim() as sim:
            async with ApiClient(sim.client_configuration()) as api:
                ...

    ``sim.faults`` injects failures, ``sim.counters`` counts requests, ``sim.kubelet.inject``
    makes containers crash, ``sim.config.timings`` sets how fast the cluster moves.
    """

    def __init__(
        self, config: KubeSimConfig | None = None, *, kubeconfig_path: str | Path | None = None
    ) -> None:
        self.config = config or KubeSimConfig()
        self.config.validate()
        self.store = Store(history_size=self.config.history_size)
        self.registry = Registry(self.store, rng=random.Random(self.config.seed))
        self.deleter = Deleter(self.registry)
        self.hub = WatchHub(self.store)
        self.service_accounts = ServiceAccountTokens(self.store)
        self.policy = Policy(
            self.config.admin_token,
            self.config.tokens,
            rbac=RBACAuthorizer(self.store),
            service_accounts=self.service_accounts,
        )
        self.faults = Faults(seed=self.config.seed)
        self.faults._compact = self.store.compact
        self.faults._restart = self.hub.drop_all
        self.counters = Counters()
        self.logs = LogBook()
        self.usage = Usage(self.store)
        self.timers = Timers()
        recorder = EventRecorder(self.registry, limit=self.config.event_limit)
        self.ctx = Context(
            self.config, self.store, self.registry, self.deleter, recorder, self.timers
        )
        self.nodes = NodeInventory(self.ctx)
        self.kubelet = Kubelet(self.ctx, self.nodes, self.logs)
        self._kubeconfig_request = Path(kubeconfig_path) if kubeconfig_path else None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.kubeconfig_path: Path | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> KubeSim:
        """Create the initial objects, start the controllers and listen; returns self."""
        self.store.subscribe(self._on_namespace)
        for name in self.config.namespaces:
            if self.store.get("namespaces", "", name) is None:
                self.registry.create_internal("namespaces", {"metadata": {"name": name}})
        bootstrap(self.registry)
        self.nodes.start()
        Binder(self.ctx).start()
        Scheduler(self.ctx, self.nodes).start()
        self.kubelet.start()
        GarbageCollector(self.ctx).start()
        self._drop_tick()
        self._runner = web.AppRunner(build_app(self), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        self._tmpdir = tempfile.TemporaryDirectory(prefix="kubesim-")
        context = (
            serving_cert().server_context(Path(self._tmpdir.name)) if self.config.tls else None
        )
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, backlog=2048, ssl_context=context
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._write_kubeconfig()
        return self

    async def stop(self) -> None:
        """End every watch and log stream, stop the controllers and the server."""
        self.hub.shutdown()
        self.logs.close()
        self.timers.close()
        await self.kubelet.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    async def __aenter__(self) -> KubeSim:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _write_kubeconfig(self) -> None:
        assert self._tmpdir is not None
        path = self._kubeconfig_request or Path(self._tmpdir.name) / "kubeconfig"
        self.kubeconfig_path = write_kubeconfig(path, self.url, self.token, ca_pem=self.ca_pem)

    def _drop_tick(self) -> None:
        every = self.faults.drop_watches_every
        if every > 0:
            self.hub.drop_all()
        self.timers.later(every if every > 0 else 0.1, self._drop_tick)

    def _on_namespace(self, change: Change) -> None:
        """The service-account controller: every new namespace gets a ``default`` account."""
        if change.resource == "namespaces" and change.type == "ADDED":
            name = change.obj["metadata"]["name"]
            self.timers.later(0, self._default_account, name)

    def _default_account(self, namespace: str) -> None:
        if self.store.get("serviceaccounts", namespace, "default") is None:
            # The namespace may have gone away again in the meantime.
            with contextlib.suppress(ApiError):
                self.registry.create_internal(
                    "serviceaccounts", {"metadata": {"name": "default", "namespace": namespace}}
                )

    # -- connection details ------------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The PEM certificate clients must trust when TLS is on (None otherwise)."""
        return serving_cert().cert_pem if self.config.tls else None

    @property
    def ca_file(self) -> Path | None:
        """A file holding :attr:`ca_pem`, for clients that want a path."""
        if not self.config.tls or self._tmpdir is None:
            return None
        return Path(self._tmpdir.name) / "kubesim.crt"

    @property
    def token(self) -> str:
        """The admin bearer token."""
        return self.config.admin_token

    def client_configuration(self, token: str | None = None) -> Any:
        """A ``kubernetes_asyncio.client.Configuration`` for this server (admin token default)."""
        from kubernetes_asyncio.client import Configuration

        configuration = Configuration(host=self.url)
        if self.ca_file is not None:
            configuration.ssl_ca_cert = str(self.ca_file)
        configuration.api_key = {"BearerToken": f"Bearer {token or self.token}"}
        return configuration

    def add_token(self, token: str, user: str, rules: list[Rule]) -> None:
        """Allow another bearer token, limited to ``rules`` (and to what RBAC grants its user)."""
        self.policy.add_token(token, user, rules)

    def issue_token(self, namespace: str, service_account: str, *, seconds: int = 3600) -> str:
        """A token for an existing ServiceAccount, as ``kubectl create token`` gets one."""
        request = {"spec": {"expirationSeconds": seconds}}
        return str(
            self.service_accounts.issue(namespace, service_account, request)["status"]["token"]
        )

    # -- API extras ------------------------------------------------------------------------------
    def bind_pod(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """``pods/<name>/binding``: set the node of an unscheduled pod, as a scheduler would."""
        target = ((body or {}).get("target") or {}).get("name")
        if not target:
            raise bad_request("binding target name is required")
        pod = self.registry.get(CATALOG.by_key("pods"), namespace, name)
        if pod["spec"].get("nodeName"):
            raise conflict(
                CATALOG.by_key("pods"),
                name,
                f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"',
            )

        def bind(p: dict[str, Any]) -> None:
            p["spec"]["nodeName"] = target
            set_condition(p, "PodScheduled", "True")

        self.registry.mutate("pods", namespace, name, bind)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return openapi_response(request)

    async def wait_idle(self, seconds: float = 0.0) -> None:
        """Give the simulated controllers ``seconds`` (and one loop turn) to act."""
        await asyncio.sleep(seconds)
