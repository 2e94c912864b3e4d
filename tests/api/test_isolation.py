"""Users see and touch only their own sessions; admins see all."""

from __future__ import annotations

import pytest

from tests.api.conftest import Server, wait_for_state

API = "/api/v0"


@pytest.mark.asyncio
async def test_a_second_user_can_neither_see_nor_modify_the_first_users_session(
    server: Server,
) -> None:
    alice, bob = server.client("alicetok"), server.client("bobtok")
    created = (await alice.post(f"{API}/sessions", json={"name": "private"})).json()
    assert created["owner"] == "alice"
    await wait_for_state(alice, created["id"], "ready")
    one = f"{API}/sessions/{created['id']}"

    assert (await bob.get(f"{API}/sessions")).json()["items"] == []
    assert (await bob.get(f"{API}/sessions", params={"q": created["id"]})).json()["items"] == []
    for method, url, body in [
        ("GET", one, None),
        ("GET", f"{one}/status", None),
        ("GET", f"{one}/events", None),
        ("GET", f"{one}/logs", None),
        ("PATCH", one, {"name": "stolen"}),
        ("PUT", f"{one}/state", {"state": "idle"}),
        ("DELETE", one, None),
    ]:
        response = await bob.request(method, url, json=body)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"]["code"] == "not_found"

    still = (await alice.get(one)).json()
    assert still["name"] == "private" and still["state"] == "ready"


@pytest.mark.asyncio
async def test_users_list_only_their_own_and_admins_list_everyones(server: Server) -> None:
    alice, bob, admin = server.client("alicetok"), server.client("bobtok"), server.client()
    for client, name in [(alice, "a1"), (alice, "a2"), (bob, "b1")]:
        assert (await client.post(f"{API}/sessions", json={"name": name})).status_code == 201
    names = lambda page: sorted(item["name"] for item in page.json()["items"])  # noqa: E731
    assert names(await alice.get(f"{API}/sessions")) == ["a1", "a2"]
    assert names(await bob.get(f"{API}/sessions")) == ["b1"]
    assert names(await bob.get(f"{API}/sessions", params={"owner": "alice"})) == ["b1"]
    assert names(await admin.get(f"{API}/sessions")) == ["a1", "a2", "b1"]
    assert names(await admin.get(f"{API}/sessions", params={"owner": "alice"})) == ["a1", "a2"]


@pytest.mark.asyncio
async def test_an_admin_can_read_change_and_delete_a_users_session(server: Server) -> None:
    alice, admin = server.client("alicetok"), server.client()
    created = (await alice.post(f"{API}/sessions", json={"name": "theirs"})).json()
    one = f"{API}/sessions/{created['id']}"
    assert (await admin.get(one)).json()["owner"] == "alice"
    assert (await admin.patch(one, json={"name": "renamed"})).json()["name"] == "renamed"
    assert (await admin.delete(one)).status_code == 204
    assert (await alice.get(one)).status_code == 404
