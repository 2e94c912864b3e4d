"""``/metrics`` exposes sessions by state, create/delete counts and durations, HTTP requests."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import Server, wait_for_state

API = "/api/v0"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 if absent), matching the given labels."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(2))
    return total


@pytest.mark.asyncio
async def test_metrics_show_sessions_by_state_lifecycle_counts_and_http_requests(
    server: Server,
) -> None:
    client = server.client()
    before = (await server.client(None).get("/metrics")).text
    ids = [
        (await client.post(f"{API}/sessions", json={"name": f"m{i}"})).json()["id"]
        for i in range(3)
    ]
    for session_id in ids:
        await wait_for_state(client, session_id, "ready")
    await client.put(f"{API}/sessions/{ids[0]}/state", json={"state": "idle"})
    assert (await client.delete(f"{API}/sessions/{ids[1]}")).status_code == 204
    await client.get(f"{API}/sessions/not-a-session")

    response = await server.client(None).get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    after = response.text

    assert sample(after, "raworc_sessions", state="ready") == 1
    assert sample(after, "raworc_sessions", state="idle") == 1
    assert sample(after, "raworc_sessions", state="init") == 0
    for name in ["raworc_sessions_created_total", "raworc_sessions_deleted_total"]:
        delta = sample(after, name, backend="local") - sample(before, name, backend="local")
        assert delta == (3 if "created" in name else 1), name
    for name in [
        "raworc_session_create_duration_seconds",
        "raworc_session_delete_duration_seconds",
    ]:
        assert sample(after, f"{name}_count", backend="local") > sample(
            before, f"{name}_count", backend="local"
        )
    requests = "raworc_http_requests_total"
    created = sample(after, requests, handler="sessions", method="POST", code="201")
    assert created - sample(before, requests, handler="sessions", method="POST", code="201") == 3
    assert sample(after, requests, handler="session", method="GET", code="404") >= 1
    assert sample(after, requests, handler="session", method="DELETE", code="204") >= 1
    assert sample(after, "raworc_http_request_duration_seconds_count", handler="session_state") >= 1
    assert "/api/v0/sessions/" not in after, "raw paths must not become labels"
