"""What the session manager needs from the layers below it, and what it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from raworc_spawner.sessions.model import Session, SessionEvent, SessionState
from raworc_spawner.store.changes import ChangeFeed, SessionChange

# Aliases: the classes below have a method named ``list``, which shadows the builtin there.
SessionList = list[Session]
EventList = list[SessionEvent]


class Store(Protocol):
    """What the manager needs from persistence (implemented by ``raworc_spawner.store``)."""

    async def insert(self, session: Session) -> Session: ...
    async def get(self, session_id: str) -> Session | None: ...
    async def update(self, session: Session) -> Session: ...
    async def delete(self, session_id: str) -> bool: ...
    async def list(
        self,
        *,
        owner: str | None = None,
        states: Collection[SessionState] | None = None,
        namespace: str | None = None,
        text: str | None = None,
        profile: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[SessionList, str | None]: ...
    async def count_by_state(self) -> dict[SessionState, int]: ...
    async def add_event(self, event: SessionEvent, *, keep: int = 200) -> SessionEvent: ...
    async def insert_and_record(
        self,
        session: Session,
        event: SessionEvent,
        *,
        keep: int = 200,
        owner_limit: int | None = None,
    ) -> tuple[Session, SessionEvent]: ...
    async def update_and_record(
        self, session: Session, event: SessionEvent, *, keep: int = 200
    ) -> tuple[Session, SessionEvent]: ...
    async def events(
        self, session_id: str, *, after_seq: int = 0, limit: int = 200
    ) -> EventList: ...
    async def touch(self, activity: Mapping[str, datetime]) -> None: ...
    async def assign_backend(self, backend: str, instance: str) -> int: ...
    async def idle_candidates(
        self, *, now: datetime, default_timeout: int, limit: int = 100
    ) -> SessionList: ...
    async def retention_candidates(
        self, *, older_than: datetime, state: SessionState = ..., limit: int = 100
    ) -> SessionList: ...

    @property
    def shared(self) -> bool:
        """Whether other servers may write this store at the same time (PostgreSQL)."""
        ...

    def change_feed(
        self,
        on_change: Callable[[SessionChange], Awaitable[None]],
        *,
        on_resync: Callable[[], Awaitable[None]],
        keepalive_seconds: float = ...,
    ) -> ChangeFeed:
        """Changes other servers make (``start()``/``close()``; delivers nothing on SQLite)."""
        ...


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a session listing and the cursor of the next page (None on the last)."""

    items: SessionList
    next_cursor: str | None
