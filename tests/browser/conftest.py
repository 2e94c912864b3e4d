"""In-process servers for the page tests, plain HTTP clients, and headless Chromium via Playwright.

Browser tests skip, visibly, when Chromium is missing (``bash scripts/test-prereqs`` as root
installs Debian's); under ``CI=true`` they fail instead. Screenshots go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from traitlets.config import Config

from kubesim import KubeSim
from raworc_spawner.app import RaworcApp
from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.sessions.manager import SYSTEM
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_TOKEN = "admin-page-token"
ALICE_TOKEN = "alice-page-token"
BOB_TOKEN = "bob-page-token"
#: The default session command: says hello (with its name, to test escaping in logs), waits.
HELLO_COMMAND = ["sh", "-c", 'echo "hello from $SESSION_NAME"; exec sleep 600']
FAILING_COMMAND = ["sh", "-c", "echo boom; exit 3"]
XSRF_INPUT = re.compile(r'name="_xsrf" value="([^"]+)"')


@dataclass
class PageServer:
    """A running server with the local backend, and HTTP clients for it."""

    app: RaworcApp
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The base URL."""
        return self.app.url

    def client(
        self, token: str | None = None, *, headers: dict[str, str] | None = None
    ) -> httpx.AsyncClient:
        """An HTTP client (with a bearer header if ``token``); closed at teardown."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=15)
        self.clients.append(client)
        return client

    async def create(self, name: str, *, token: str = ALICE_TOKEN, **fields: Any) -> dict[str, Any]:
        """Create a session through the REST API."""
        response = await self.client(token).post("/api/v0/sessions", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for_state(self, session_id: str, state: str, *, timeout: float = 5.0) -> None:
        """Wait until the session is in ``state`` (seen through the manager)."""
        async with asyncio.timeout(timeout):
            while (await self.app.manager.get(SYSTEM, session_id)).state != state:
                await asyncio.sleep(0.02)

    def session_pids(self) -> list[int]:
        """Pids of every session process the local backend knows of."""
        backend = self.app.core.backend
        return list(backend.process_ids().values()) if isinstance(backend, LocalBackend) else []


#: Profiles of the Kubernetes-backed server; ``broken`` names an image kubesim cannot pull.
PROFILES = {
    "small": {"description": "Light work", "cpu_request": "100m", "memory_limit": "512Mi"},
    "broken": {"description": "An image that does not exist", "image": "does-not-exist:1"},
}


def kubernetes_config(config: Config, sim: KubeSim) -> None:
    """Run sessions on Kubernetes, against kubesim, with fast timings and two profiles."""
    config.RaworcApp.kubernetes_enabled = True
    config.KubernetesBackend.api_url = sim.url
    config.KubernetesBackend.api_token = sim.token
    config.KubernetesBackend.api_backoff_seconds = 0.01
    config.KubernetesBackend.api_backoff_max_seconds = 0.2
    config.KubernetesBackend.delete_grace_seconds = 1
    config.KubernetesSettings.profiles = PROFILES
    if sim.ca_file is not None:
        config.KubernetesBackend.ca_file = str(sim.ca_file)


def make_config(*, command: list[str], ready_after: float) -> Config:
    """Settings for a fast, isolated server with an admin, alice and bob."""
    config = Config()
    config.RaworcApp.admin_token = ADMIN_TOKEN
    config.RaworcApp.api_tokens = {
        ALICE_TOKEN: "alice",
        BOB_TOKEN: "bob",
    }
    config.RaworcApp.env_file = ""
    config.RaworcApp.log_spec = "warn"
    config.LocalBackend.ready_after_seconds = ready_after
    config.LocalBackend.stop_grace_seconds = 2.0
    config.LocalBackend.command = command
    config.Reconciler.interval_seconds = 0.0
    return config


Launch = Callable[..., Awaitable[PageServer]]


@pytest_asyncio.fixture
async def launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leaked_tasks: None
) -> AsyncIterator[Launch]:
    """Start servers on free ports; all stopped after the test.

    Sessions run ``command`` on the local backend and count as ready after ``ready_after``
    seconds, or run as pods on ``kubesim`` when one is given.
    """
    monkeypatch.chdir(tmp_path)
    servers: list[PageServer] = []

    async def start(
        *,
        command: list[str] = HELLO_COMMAND,
        ready_after: float = 0.05,
        kubesim: KubeSim | None = None,
    ) -> PageServer:
        data_dir = tmp_path / f"data{len(servers)}"
        config = make_config(command=command, ready_after=ready_after)
        if kubesim is not None:
            kubernetes_config(config, kubesim)
        app = RaworcApp(config=config)
        app.initialize(["--port=0", "--ip=127.0.0.1", f"--data-dir={data_dir}"])
        await app.start_services()
        app.web_app.settings["sse_heartbeat_seconds"] = 0.5
        servers.append(PageServer(app))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            await _stop(server)


async def _stop(server: PageServer) -> None:
    for client in server.clients:
        await client.aclose()
    page = await server.app.manager.list(SYSTEM, limit=1000)
    await asyncio.gather(
        *(server.app.manager.delete(SYSTEM, s.id) for s in page.items), return_exceptions=True
    )
    pids = server.session_pids()
    await server.app.stop_services()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@pytest_asyncio.fixture
async def server(launch: Launch) -> PageServer:
    """One server with quick-starting sessions."""
    return await launch()


# -- plain HTTP: logging in as a browser would -------------------------------------------------


def xsrf_from(html: str) -> str:
    """The XSRF token of the first form in a page."""
    match = XSRF_INPUT.search(html)
    assert match, "no XSRF field in the page"
    return match.group(1)


async def browser_login(server: PageServer, token: str) -> httpx.AsyncClient:
    """An HTTP client holding the login cookie (and the XSRF cookie), like a browser."""
    client = server.client()
    form = await client.get("/login")
    response = await client.post(
        "/login", data={"token": token, "next": "/sessions", "_xsrf": xsrf_from(form.text)}
    )
    assert response.status_code == 303, response.text
    return client


# -- Chromium ------------------------------------------------------------------------------------


@dataclass
class Browsing:
    """A browser page with what it reported: console errors, page errors, dialogs."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    async def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as ``test-artifacts/screenshots/<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def log_in(self, token: str) -> None:
        """Log in through the login page and land on the sessions list."""
        await self.page.goto("/sessions")
        await self.page.wait_for_url("**/login?next=%2Fsessions")
        await self.page.get_by_label("API token").fill(token)
        await self.page.get_by_role("button", name="Log in").click()
        await self.page.wait_for_url("**/sessions")

    def assert_clean(self, *, allow_statuses: tuple[int, ...] = ()) -> None:
        """No script errors, no CSP violations, no dialogs (``allow_statuses``: expected
        error responses, which Chromium also reports on the console)."""
        expected = tuple(f"status of {status} " for status in allow_statuses)
        errors = [
            m for m in self.console_errors if not expected or not any(e in m for e in expected)
        ]
        assert not self.page_errors, self.page_errors
        assert not errors, errors
        assert not self.dialogs, self.dialogs


@pytest_asyncio.fixture
async def chromium() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's) driven by Playwright; skipped visibly when missing."""
    require(
        Path(CHROMIUM).exists(),
        f"Chromium is not installed at {CHROMIUM} (as root: bash scripts/test-prereqs)",
    )
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - the venv installs it
        require(False, "the playwright package is not installed")
        raise
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


OpenPage = Callable[..., Awaitable[Browsing]]


@pytest_asyncio.fixture
async def open_page(chromium: Any) -> AsyncIterator[OpenPage]:
    """Open a page on a server (``viewport`` optional); each checked clean after the test."""
    opened: list[tuple[Any, Browsing]] = []

    async def open_(server: PageServer, *, viewport: dict[str, int] | None = None) -> Browsing:
        context = await chromium.new_context(
            base_url=server.url, viewport=viewport or {"width": 1280, "height": 860}
        )
        page = await context.new_page()
        page.set_default_timeout(8000)
        browsing = Browsing(page)
        page.on(
            "console",
            lambda m: browsing.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: browsing.page_errors.append(str(e)))

        async def on_dialog(dialog: Any) -> None:
            browsing.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        opened.append((context, browsing))
        return browsing

    try:
        yield open_
    finally:
        for context, _ in opened:
            await context.close()
