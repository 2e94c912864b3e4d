"""Listing sessions: newest first, filtered, in keyset pages."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import pytest

from raworc_spawner import errors
from raworc_spawner.sessions.model import Session, SessionState
from raworc_spawner.store import SessionStore

MakeSession = Callable[..., Session]
STATES = [SessionState.INIT, SessionState.READY, SessionState.IDLE, SessionState.ERROR]


async def _walk(
    store: SessionStore, *, limit: int, cursor: str | None = None, **filters: Any
) -> list[Session]:
    """Every page of a listing from ``cursor`` on, concatenated; checks the pages' sizes."""
    seen: list[Session] = []
    for _ in range(1000):
        page, cursor = await store.list(limit=limit, cursor=cursor, **filters)
        assert len(page) <= limit
        seen.extend(page)
        if cursor is None:
            return seen
        assert len(page) == limit
    raise AssertionError("the cursor never ran out")


def _newest_first(sessions: Collection[Session]) -> list[str]:
    return [s.id for s in sorted(sessions, key=lambda s: (s.created_at, s.id), reverse=True)]


@pytest.fixture
def population(make_session: MakeSession, t0: datetime) -> list[Session]:
    """250 sessions; several share a creation time, so ordering must break ties by id."""
    return [
        make_session(
            name=f"session {i:03d}",
            owner=["alice", "bob", "carol"][i % 3],
            namespace=["default", "research"][i % 2],
            state=STATES[i % len(STATES)],
            profile=["small", None][i % 2],
            created_at=t0 + timedelta(seconds=i // 7),
        )
        for i in range(250)
    ]


@pytest.mark.asyncio
async def test_pages_over_250_sessions_have_no_duplicates_or_gaps(
    store: SessionStore, population: list[Session]
) -> None:
    for session in population:
        await store.insert(session)

    seen = await _walk(store, limit=23)

    assert [s.id for s in seen] == _newest_first(population)


FILTERS: list[dict[str, Any]] = [
    {"owner": "alice"},
    {"states": {SessionState.READY, SessionState.IDLE}},
    {"namespace": "research", "owner": "bob"},
    {"owner": "carol", "states": [SessionState.ERROR], "namespace": "default"},
    {"profile": "small", "states": [SessionState.INIT]},
    {"states": []},
]


def _matches(session: Session, filters: dict[str, Any]) -> bool:
    states = filters.get("states")
    return (
        session.owner == filters.get("owner", session.owner)
        and session.namespace == filters.get("namespace", session.namespace)
        and session.profile == filters.get("profile", session.profile)
        and (states is None or session.state in states)
    )


@pytest.mark.asyncio
async def test_filtered_pages_return_exactly_the_matching_sessions_in_order(
    store: SessionStore, population: list[Session]
) -> None:
    for session in population:
        await store.insert(session)

    for filters in FILTERS:
        seen = await _walk(store, limit=10, **filters)

        expected = _newest_first([s for s in population if _matches(s, filters)])
        assert [s.id for s in seen] == expected, filters


@pytest.mark.asyncio
async def test_a_session_created_while_paging_does_not_shift_later_pages(
    store: SessionStore, population: list[Session], make_session: MakeSession, t0: datetime
) -> None:
    for session in population[:30]:
        await store.insert(session)

    first, cursor = await store.list(limit=10)
    await store.insert(make_session(created_at=t0 + timedelta(days=1)))
    rest = await _walk(store, limit=10, cursor=cursor)

    assert [s.id for s in first + rest] == _newest_first(population[:30])


@pytest.mark.asyncio
async def test_text_matches_a_substring_of_name_or_id_ignoring_case(
    store: SessionStore, make_session: MakeSession
) -> None:
    build = await store.insert(make_session(name="Nightly Build"))
    by_id = await store.insert(make_session(id="abcdef-0000-feed-face", name="other"))
    percent = await store.insert(make_session(name="100% done_now"))
    unicode = await store.insert(make_session(name="Übung Straße"))

    async def names(text: str) -> set[str]:
        page, _ = await store.list(text=text)
        return {s.id for s in page}

    assert await names("nIGHTLY") == {build.id}
    assert await names("FEED-FACE") == {by_id.id}
    assert await names("%") == {percent.id}
    assert await names("e_n") == {percent.id}
    assert await names("Straße") == {unicode.id}
    assert await names("no such thing") == set()


@pytest.mark.asyncio
async def test_an_empty_store_lists_nothing(store: SessionStore) -> None:
    assert await store.list() == ([], None)


def _encode(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _encode({"created_at": "2030-01-01T00:00:00+00:00"}),
        _encode(["yesterday", "id"]),
        _encode(["2030-01-01T00:00:00", "id"]),
        _encode(["2030-01-01T00:00:00+00:00", 42]),
        _encode(["2030-01-01T00:00:00+00:00", "id", "extra"]),
    ],
)
async def test_a_malformed_cursor_raises_validation_error(store: SessionStore, cursor: str) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await store.list(cursor=cursor)

    assert caught.value.field == "cursor"


@pytest.mark.asyncio
async def test_a_cursor_is_url_safe(store: SessionStore, population: list[Session]) -> None:
    for session in population[:5]:
        await store.insert(session)

    _, cursor = await store.list(limit=2)

    assert cursor is not None
    assert cursor.replace("-", "").replace("_", "").isalnum()


@pytest.mark.asyncio
@pytest.mark.parametrize("limit", [0, -1, 10_001])
async def test_a_page_size_out_of_range_raises_validation_error(
    store: SessionStore, limit: int
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await store.list(limit=limit)

    assert caught.value.field == "limit"
