"""Waiting for a session to reach a state: one helper for the manager, one over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from raworc_spawner.sessions.manager import SYSTEM, SessionManager
from raworc_spawner.sessions.model import Principal, Session, SessionState

POLL_SECONDS = 0.02


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
