"""Sessions remember their backend; records older than that field are assigned one once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raworc_spawner.sessions.model import Session
from raworc_spawner.store import SessionStore

MakeSession = Callable[..., Session]


@pytest.mark.asyncio
async def test_sessions_without_a_backend_are_assigned_one_and_others_keep_theirs(
    store: SessionStore, make_session: MakeSession
) -> None:
    old = await store.insert(make_session(backend=None))
    on_kubernetes = await store.insert(make_session(backend="kubernetes"))

    assert await store.assign_backend("local", "raworc-one") == 1
    assert await store.assign_backend("local", "raworc-two") == 0

    assigned = await store.get(old.id)
    kept = await store.get(on_kubernetes.id)
    assert assigned is not None and kept is not None
    assert (assigned.backend, assigned.instance) == ("local", "raworc-one")
    assert assigned.version == old.version
    assert kept.backend == "kubernetes"
