"""A real JupyterHub (with configurable-http-proxy) for end-to-end tests of RaworcSpawner.

Each hub runs in its own temporary directory on 127.0.0.1 with ephemeral ports, as a separate
process group; teardown stops it, its proxy and every session process it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def find_proxy() -> str | None:
    """configurable-http-proxy from ./node_modules (scripts/test-prereqs) or PATH."""
    local = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(local) if local.exists() else shutil.which("configurable-http-proxy")


def require_hub_tools() -> str:
    """The proxy's path; skip (or fail under CI) when the hub's tools are missing."""
    proxy = find_proxy()
    require(
        proxy is not None,
        "configurable-http-proxy is not installed (run: bash scripts/test-prereqs)",
    )
    require((VENV_BIN / "jupyterhub").exists(), f"jupyterhub is not installed in {VENV_BIN}")
    assert proxy is not None
    return proxy


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BASE_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{public_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.pid_file = "{workdir}/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = "{workdir}/proxy.pid"
c.JupyterHub.authenticator_class = "null"
c.JupyterHub.spawner_class = "raworc"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.JupyterHub.services = [{{"name": "tester", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["tester"]}}]
c.JupyterHub.last_activity_interval = 3600
c.RaworcSpawner.data_dir = "{workdir}/data"
c.RaworcSpawner.start_timeout = 60
c.RaworcSpawner.http_timeout = 60
c.LocalBackend.ready_after_seconds = 0.1
c.LocalBackend.stop_grace_seconds = 5
import os  # noqa
if os.getuid() == 0:  # jupyter_server refuses to run as root without it (containers, CI)
    c.Spawner.args = ["--allow-root"]
"""


class HubProcess:
    """A JupyterHub process configured for RaworcSpawner, driven over its REST API."""

    def __init__(
        self,
        workdir: Path,
        *,
        extra_config: str = "",
        env: dict[str, str] | None = None,
        config_file: Path | None = None,
    ):
        self.workdir = workdir
        self.token = secrets.token_hex(16)
        self.public_port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.proxy_token = secrets.token_hex(16)
        self.config_file = config_file or workdir / "jupyterhub_config.py"
        self.log_file = workdir / "jupyterhub.log"
        self.extra_env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        text = BASE_CONFIG.format(
            public_port=self.public_port,
            hub_port=self.hub_port,
            proxy_api_port=self.proxy_api_port,
            proxy=require_hub_tools(),
            proxy_token=self.proxy_token,
            workdir=workdir,
            token=self.token,
        )
        if config_file is None:
            self.config_file.write_text(text + extra_config)

    @property
    def url(self) -> str:
        """The public URL (through the proxy)."""
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def data_dir(self) -> Path:
        """RaworcSpawner's data directory."""
        return self.workdir / "data"

    def client(self) -> httpx.AsyncClient:
        """A client for the public URL, authenticated as an admin service."""
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=60
        )

    def environment(self) -> dict[str, str]:
        """The hub's environment: ours, the venv's bin first on PATH, then the extras."""
        return {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **self.extra_env,
        }

    async def start(self, *, timeout: float = 60) -> None:
        """Start the hub and wait until its API answers through the proxy."""
        env = self.environment()
        with self.log_file.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(VENV_BIN / "jupyterhub"),
                "-f",
                str(self.config_file),
                cwd=self.workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        async with self.client() as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise AssertionError(f"the hub exited at start-up:\n{self.log_tail()}")
                try:
                    if (await client.get("/hub/api/")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"the hub did not answer within {timeout} s:\n{self.log_tail()}")

    async def stop(self) -> None:
        """Stop the hub gracefully (its proxy with it); servers keep running."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            _killpg(proc.pid)
            await proc.wait()

    async def kill_everything(self) -> None:
        """Teardown: the hub, its proxy and every session process, whatever their state."""
        await self.stop()  # gracefully first: the hub stops the proxy it started
        for pid in _pids_matching(lambda entry: _proxy_marker(self) in _cmdline(entry)):
            _kill(pid)
        for pid in session_pids(self.data_dir):
            _killpg(pid)
        for pid in self.server_pids():
            _killpg(pid)

    def server_pids(self) -> list[int]:
        """Processes anyone started for this hub's users (they carry its API URL)."""
        marker = f"JUPYTERHUB_API_URL=http://127.0.0.1:{self.hub_port}/hub/api".encode()
        return _pids_matching(lambda entry: marker in _environ(entry))

    def log_tail(self, lines: int = 60) -> str:
        """The end of the hub's log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def session_pids(self) -> list[int]:
        """The pids of the local session processes the backend recorded."""
        return session_pids(self.data_dir)


def session_pids(data_dir: Path) -> list[int]:
    """The pids of the local session processes recorded in a data directory."""
    pids = [_read_pid(f) for f in (data_dir / "run").glob("*.json")]
    return [pid for pid in pids if pid]


def _proxy_marker(hub: HubProcess) -> bytes:
    return f"--api-port\0{hub.proxy_api_port}\0".encode()


def _pids_matching(check: Callable[[Path], bool]) -> list[int]:
    """Pids of the processes whose /proc entry passes ``check``."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and check(entry)
    ]


def _environ(entry: Path) -> list[bytes]:
    try:
        return (entry / "environ").read_bytes().split(b"\0")
    except OSError:
        return []


def _cmdline(entry: Path) -> bytes:
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""


def _read_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


class HubFactory:
    """Makes hubs in temporary directories and tears all of them down."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hubs: list[HubProcess] = []

    def __call__(self, name: str = "hub", **kwargs: Any) -> HubProcess:
        workdir = self.root / name
        workdir.mkdir()
        hub = HubProcess(workdir, **kwargs)
        self.hubs.append(hub)
        return hub

    async def kill_all(self) -> None:
        """Kill every hub, proxy and session process made so far."""
        for hub in self.hubs:
            await hub.kill_everything()


@pytest_asyncio.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Make hubs; all of them are torn down after the test (in its event loop)."""
    factory = HubFactory(tmp_path)
    yield factory
    await factory.kill_all()


async def wait_for_server(client: httpx.AsyncClient, user: str, server: str = "") -> dict[str, Any]:
    """Wait until the hub reports the server ready; fail if it stops being there."""
    model: dict[str, Any] = {}
    for _ in range(600):
        model = (await client.get(f"/hub/api/users/{user}")).json()
        info = model.get("servers", {}).get(server)
        if info is None:
            raise AssertionError(f"server {user}/{server!r} is not running or starting: {model}")
        if info.get("ready"):
            return dict(info)
        await asyncio.sleep(0.1)
    raise AssertionError(f"server {user}/{server!r} not ready: {model}")


async def progress_events(
    client: httpx.AsyncClient, user: str, server: str = ""
) -> AsyncIterator[dict[str, Any]]:
    """The spawn's progress events (the hub's EventSource stream), until it ends."""
    path = f"/hub/api/users/{user}/server/progress"
    if server:
        path = f"/hub/api/users/{user}/servers/{server}/progress"
    async with client.stream("GET", path) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:])


async def spawn(api: httpx.AsyncClient, user: str, server: str = "") -> dict[str, Any]:
    """Ask the hub to start a server and wait until it is ready."""
    path = f"/hub/api/users/{user}/servers/{server}" if server else f"/hub/api/users/{user}/server"
    response = await api.post(path)
    assert response.status_code in (201, 202), response.text
    return await wait_for_server(api, user, server)


async def stop(
    api: httpx.AsyncClient, user: str, server: str = "", *, remove: bool = False
) -> None:
    """Ask the hub to stop (or remove) a server and wait until it is gone."""
    path = f"/hub/api/users/{user}/servers/{server}" if server else f"/hub/api/users/{user}/server"
    response = await api.request("DELETE", path, json={"remove": True} if remove else None)
    assert response.status_code in (202, 204), response.text
    for _ in range(300):
        servers = (await api.get(f"/hub/api/users/{user}")).json()["servers"]
        if server not in servers:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"server {user}/{server!r} did not stop")


async def eventually(check: Callable[[], bool], what: str, *, seconds: float = 15) -> None:
    """Wait until ``check()`` holds (the hub finishes some work after answering)."""
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true after {seconds} s: {what}")
