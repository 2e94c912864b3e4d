"""The CLI tests talk to the same in-process server as the API tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from raworc_spawner.cli_sessions import main
from tests.api.conftest import Server, server  # noqa: F401  (the fixture, re-exported)


@dataclass
class Result:
    """What one CLI run printed and returned."""

    status: int
    out: str
    err: str


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """Run ``raworc-spawner sessions <argv>`` in a thread (the server shares this loop)."""
    capsys.readouterr()
    status = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return Result(status, captured.out, captured.err)


def connect(srv: Server, token: str | None = None) -> list[str]:
    """The options that point the CLI at ``srv``."""
    return ["--url", srv.url, "--token", token or srv.admin_token]
