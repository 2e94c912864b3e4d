"""Whatever a local session is accepted with can start: values too big for ``execve`` are
refused up front, naming the value and the limit, and the largest allowed ones reach the
process intact."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from raworc_spawner.backends.base import SessionSpec
from raworc_spawner.backends.local import LocalBackend
from raworc_spawner.errors import ValidationError
from raworc_spawner.sessions.manager import SessionManager
from raworc_spawner.sessions.model import Principal, SessionState
from raworc_spawner.sessions.requests import parse_create
from raworc_spawner.sessions.spec import SpecOverrides
from tests.api.conftest import Server, make_config, running_server
from tests.waiting import until_state, until_state_http

ALICE = Principal("alice")
SID = "00000000-0000-4000-8000-000000000004"
#: Linux's MAX_ARG_STRLEN with 4 KiB pages, less its NUL: the longest NAME=value.
LONGEST_ENTRY = 131_071
#: Writes the byte size of $BIG to ./size.txt, then waits.
SIZE_OF_BIG = ["sh", "-c", 'printf %s "$BIG" | wc -c > size.txt; exec sleep 600']

pytestmark = pytest.mark.skipif(
    os.sysconf("SC_PAGE_SIZE") != 4096, reason="the expected limits are those of 4 KiB pages"
)


@pytest_asyncio.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """The REST server on the local backend, with room in its bodies for big prompts."""
    monkeypatch.chdir(tmp_path)
    config = make_config(tmp_path)
    config.RaworcApp.max_body_bytes = 1024 * 1024
    async with running_server(config, tmp_path / "data") as server:
        yield server


async def text_of(path: Path, timeout: float = 5.0) -> str:
    """The text of a file a session writes, once it has some (fails after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not (path.exists() and path.read_text().strip()):
            await asyncio.sleep(0.02)
    return path.read_text().strip()


def environment_of(workspace: Path) -> dict[str, str]:
    """The session's environment as its command recorded it (``env > env.txt``)."""
    lines = (workspace / "env.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.mark.asyncio
async def test_a_100000_byte_prompt_starts_and_a_100000_character_one_is_refused_up_front(
    api: Server,
) -> None:
    client = api.client()
    for prompt in ("é" * 50_000, "é" * 49_995 + "a" * 10):  # 100,000 bytes each
        response = await client.post(
            "/api/v0/sessions", json={"name": "big", "starting_prompt": prompt}
        )
        assert response.status_code == 201, response.text
        created = response.json()
        await until_state_http(client, created["id"], "ready", timeout=10)
        assert environment_of(api.workspace(created["id"]))["STARTING_PROMPT"] == prompt
    too_long = "é" * 99_990 + "a" * 10  # 100,000 characters, 199,990 bytes
    response = await client.post(
        "/api/v0/sessions", json={"name": "too big", "starting_prompt": too_long}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "starting_prompt"
    listed = (await client.get("/api/v0/sessions")).json()["items"]
    assert sorted(s["name"] for s in listed) == ["big", "big"]


@pytest.mark.asyncio
async def test_a_hub_value_a_byte_too_big_is_refused_before_any_record_and_one_at_the_limit_starts(
    local_manager: SessionManager, local_backend: LocalBackend
) -> None:
    local_backend.command = SIZE_OF_BIG
    request = parse_create({"name": "hub"})
    too_big = SpecOverrides(env={"BIG": "é" * 65_532 + "abcd"})  # "BIG=" and it: 131,072 bytes
    with pytest.raises(ValidationError) as refused:
        await local_manager.create(ALICE, request, overrides=too_big)
    assert refused.value.field == "env"
    assert refused.value.message == (
        "env: environment variable BIG (as NAME=value) is 131,072 bytes in UTF-8; "
        "one argument or environment entry may be at most 131,071 bytes (Linux MAX_ARG_STRLEN)"
    )
    assert (await local_manager.list(ALICE)).items == []
    at_limit = SpecOverrides(env={"BIG": "é" * 65_532 + "abc"})  # 131,071 bytes with "BIG="
    session = await local_manager.create(ALICE, request, overrides=at_limit)
    await until_state(local_manager, session.id, "ready")
    assert await text_of(local_backend.workspace(session.id) / "size.txt") == "131067"
    await local_manager.delete(ALICE, session.id)


def test_an_argument_too_big_for_execve_is_refused_naming_it(local_backend: LocalBackend) -> None:
    local_backend.command = ["sh", "-c", "x" * 200_000]
    with pytest.raises(ValidationError) as refused:
        local_backend.validate(SessionSpec(session_id=SID, name="n", owner="alice"))
    assert refused.value.message == (
        "command: argument 2 of the command is 200,000 bytes in UTF-8; one argument or "
        "environment entry may be at most 131,071 bytes (Linux MAX_ARG_STRLEN)"
    )


def test_values_that_no_process_can_receive_are_refused_naming_them(
    local_backend: LocalBackend,
) -> None:
    spec = SessionSpec(session_id=SID, name="n", owner="alice", env={"TOKEN": "a\x00b"})
    with pytest.raises(ValidationError) as refused:
        local_backend.validate(spec)
    assert refused.value.message == "env: environment variable TOKEN contains a NUL character"
    spec = SessionSpec(session_id=SID, name="n", owner="alice", env={"A=B": "c"})
    with pytest.raises(ValidationError) as refused:
        local_backend.validate(spec)
    assert refused.value.message == "env: 'A=B' is not a valid environment variable name"


def test_an_environment_too_big_in_all_is_refused_with_the_systems_limit(
    local_backend: LocalBackend,
) -> None:
    many = {f"HUB_{i:02}": "x" * 120_000 for i in range(20)}  # each fits, 2.4 MB together
    spec = SessionSpec(session_id=SID, name="n", owner="alice", env=many)
    with pytest.raises(ValidationError) as refused:
        local_backend.validate(spec)
    limit = os.sysconf("SC_ARG_MAX") - 4096
    assert refused.value.field == "env"
    assert refused.value.message.startswith("env: the command and environment take 2,4")
    assert refused.value.message.endswith(
        f"bytes; the system allows at most {limit:,} bytes in all (ARG_MAX, a quarter of the "
        "stack size limit)"
    )


@pytest.mark.asyncio
async def test_a_resume_that_can_no_longer_start_fails_with_the_reason_once(
    local_manager: SessionManager, local_backend: LocalBackend
) -> None:
    session = await local_manager.create(ALICE, parse_create({"name": "grows"}))
    await until_state(local_manager, session.id, "ready")
    await local_manager.set_state(ALICE, session.id, SessionState.IDLE)
    local_backend.extra_env = {"BIG": "x" * 200_000}  # the operator's setting grew meanwhile
    await local_manager.set_state(ALICE, session.id, SessionState.READY)
    failed = await until_state(local_manager, session.id, "error")
    assert failed.error == (
        "StartError: cannot start: env: environment variable BIG (as NAME=value) is 200,004 "
        "bytes in UTF-8; one argument or environment entry may be at most 131,071 bytes "
        "(Linux MAX_ARG_STRLEN)"
    )
    await local_manager.delete(ALICE, session.id)
