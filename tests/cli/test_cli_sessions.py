"""``raworc-spawner sessions`` against a running server: every verb, tables and JSON, errors."""

from __future__ import annotations

import json
import socket

import pytest

from tests.api.conftest import Server, wait_for_state
from tests.cli.conftest import connect, run_cli


async def create(capsys: pytest.CaptureFixture[str], srv: Server, *extra: str) -> dict:
    result = await run_cli(capsys, "create", *connect(srv), "--json", *extra)
    assert result.status == 0, result.err
    return json.loads(result.out)


@pytest.mark.asyncio
async def test_create_sends_every_field_and_prints_the_session(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    session = await create(
        capsys,
        server,
        "--name",
        "cli one",
        "--namespace",
        "ml",
        "--prompt",
        "hi",
        "--agent-id",
        "a1",
        "--agent-id",
        "a2",
        "--metadata",
        '{"team": "x"}',
        "--timeout",
        "60",
    )
    assert session["name"] == "cli one" and session["namespace"] == "ml"
    assert session["starting_prompt"] == "hi" and session["agent_ids"] == ["a1", "a2"]
    assert session["metadata"] == {"team": "x"} and session["waiting_timeout_seconds"] == 60
    table = await run_cli(capsys, "create", *connect(server), "--name", "cli two", "--wait")
    assert table.status == 0
    header, row = table.out.splitlines()
    assert header.split() == ["ID", "NAME", "NAMESPACE", "OWNER", "STATE", "CREATED_AT"]
    assert "cli two" in row and " ready " in row


@pytest.mark.asyncio
async def test_list_prints_a_table_or_json_and_follows_every_page_with_all(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [(await create(capsys, server, "--name", f"listed-{i}"))["id"] for i in range(3)]
    table = await run_cli(capsys, "list", *connect(server))
    assert table.status == 0 and all(i in table.out for i in ids)
    one_page = await run_cli(capsys, "list", *connect(server), "--limit", "2")
    assert len(one_page.out.splitlines()) == 3 and "--cursor" in one_page.err
    everything = await run_cli(capsys, "list", *connect(server), "--limit", "2", "--all", "--json")
    listed = json.loads(everything.out)
    assert sorted(s["id"] for s in listed["items"]) == sorted(ids)
    assert listed["next_cursor"] is None
    filtered = await run_cli(capsys, "list", *connect(server), "--state", "idle", "--json")
    assert json.loads(filtered.out)["items"] == []


@pytest.mark.asyncio
async def test_get_pause_resume_and_delete_act_on_the_session(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    session = await create(capsys, server, "--name", "verbs")
    sid = session["id"]
    await wait_for_state(server.client(), sid, "ready")
    got = await run_cli(capsys, "get", *connect(server), sid)
    assert got.status == 0 and f"id                       {sid}" in got.out
    assert "state                    ready" in got.out

    paused = await run_cli(capsys, "pause", *connect(server), sid, "--json")
    assert paused.status == 0 and json.loads(paused.out)["state"] == "idle"
    resumed = await run_cli(capsys, "resume", *connect(server), sid, "--wait", "--json")
    assert resumed.status == 0 and json.loads(resumed.out)["state"] == "ready"

    deleted = await run_cli(capsys, "delete", *connect(server), sid)
    assert deleted.status == 0 and deleted.out.strip() == f"deleted {sid}"
    again = await run_cli(capsys, "get", *connect(server), sid)
    assert again.status == 1 and "not found" in again.err and "HTTP 404" in again.err


@pytest.mark.asyncio
async def test_a_bad_token_is_reported_with_the_servers_message_and_status_1(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run_cli(capsys, "list", "--url", server.url, "--token", "nope")
    assert result.status == 1 and result.out == ""
    assert "invalid bearer token" in result.err and "RAWORC_TOKEN" in result.err


@pytest.mark.asyncio
async def test_an_unreachable_server_is_named_with_a_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = await run_cli(capsys, "list", "--url", url, "--token", "t")
    assert result.status == 1
    assert f"cannot reach {url}: is `raworc-spawner serve` running?" in result.err


@pytest.mark.asyncio
async def test_usage_errors_exit_2(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert (await run_cli(capsys, "create", *connect(server))).status == 2
    bad_json = await run_cli(capsys, "create", *connect(server), "--name", "x", "--metadata", "{")
    assert bad_json.status == 2 and "--metadata" in bad_json.err
    assert (await run_cli(capsys, "frobnicate")).status == 2
    assert (await run_cli(capsys, "--help")).status == 0


@pytest.mark.asyncio
async def test_url_and_token_come_from_the_environment_or_the_admin_token_file(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAWORC_URL", server.url)
    monkeypatch.setenv("RAWORC_TOKEN", "alicetok")
    await create(capsys, server, "--name", "admins")  # --token admintok wins over the env
    mine = await run_cli(capsys, "list", "--json")
    assert mine.status == 0 and json.loads(mine.out)["items"] == []
    monkeypatch.delenv("RAWORC_TOKEN")
    monkeypatch.setenv("RAWORC_DATA_DIR", str(server.data_dir))
    (server.data_dir / "admin-token").write_text(server.admin_token + "\n")
    admins = await run_cli(capsys, "list", "--json")
    assert admins.status == 0 and len(json.loads(admins.out)["items"]) == 1
