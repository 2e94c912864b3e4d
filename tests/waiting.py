"""Waiting in tests: for a session to reach a state (through the manager or over HTTP), and for
any condition from synchronous code (process-level tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.sessions.model import Principal, Session, SessionState

POLL_SECONDS = 0.02
T = TypeVar("T")


def poll_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.05
) -> T | None:
    """Call ``probe`` until it returns something truthy; that value, or None after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_for(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1
) -> T:
    """:func:`poll_until`, failing the test (naming ``what``) when ``timeout`` s pass first."""
    result = poll_until(probe, timeout=timeout, interval=interval)
    if result is None:
        pytest.fail(f"timed out after {timeout}s waiting for {what}")
    return result


async def until_state(
    manager: SessionManager,
    session_id: str,
    state: str | SessionState,
    *,
    timeout: float = 5.0,
    principal: Principal = SYSTEM,
) -> Session:
    """The session once it is in ``state``; fails the test after ``timeout`` seconds."""
    session: Session | None = None
    try:
        async with asyncio.timeout(timeout):
            while (session := await manager.get(principal, session_id)).state != state:
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        last = session.state.value if session else "unknown"
        detail = f" ({session.error})" if session and session.error else ""
        pytest.fail(f"session {session_id} not {state} after {timeout} s: {last}{detail}")
    return session


async def until_state_http(
    client: httpx.AsyncClient, session_id: str, state: str, *, timeout: float = 5.0
) -> dict[str, Any]:
    """Poll ``GET /api/v0/sessions/{id}`` until the session is in ``state``; fail after
    ``timeout`` seconds."""
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                response = await client.get(f"/api/v0/sessions/{session_id}")
                body = response.json()
                if response.status_code == 200 and body["state"] == state:
                    return body
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        pytest.fail(f"session {session_id} not {state} after {timeout} s: {body}")
