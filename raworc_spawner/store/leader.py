"""A leader-election lock in PostgreSQL: a session-level advisory lock on a dedicated connection.

For replicas on the local backend, which have no Kubernetes Lease to share. The lock
(``pg_try_advisory_lock``) is held as long as the connection that took it lives: PostgreSQL
frees it the moment that connection ends (the holder exits, is killed, or its backend is
terminated), so nobody has to wait for an expiry.

Freed at once, though, also means a successor can get it while the old holder has not yet
noticed that its connection is gone (it learns so at its next renewal, and steps down only
after its renew deadline). So a new holder leads only once it has held the lock for
``lease_seconds`` — longer than any holder's renew deadline — and two leaders never act at
once; a clean :meth:`AdvisoryLockElector.release` does not need that wait to be safe, but the
successor cannot tell the two apart and waits anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable

import asyncpg
import sqlalchemy as sa


def advisory_key(name: str) -> int:
    """The 64-bit signed advisory-lock key of a lock name (stable across processes).

    >>> advisory_key("raworc-leader-a") == advisory_key("raworc-leader-a")
    True
    >>> -(2**63) <= advisory_key("x") < 2**63
    True
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def asyncpg_dsn(url: str | sa.URL) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, from the store's SQLAlchemy URL."""
    parsed = sa.make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class AdvisoryLockElector:
    """Hold ``pg_advisory_lock(advisory_key(name))`` on a connection of its own.

    ``url`` is the store's database URL. Renewing means checking, with a query bounded by
    ``attempt_timeout`` seconds, that the connection still answers; a broken connection means
    the lock is lost (not leader), and the next attempt reconnects and tries again.
    """

    def __init__(
        self,
        url: str | sa.URL,
        *,
        name: str,
        identity: str,
        lease_seconds: float,
        attempt_timeout: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = identity
        self.name = name
        self.key = advisory_key(name)
        self.lease_seconds = lease_seconds
        self.attempt_timeout = attempt_timeout
        self._dsn = asyncpg_dsn(url)
        self._clock = clock
        self._conn: asyncpg.Connection | None = None
        self._held_since: float | None = None

    def describe(self) -> str:
        """``PostgreSQL advisory lock <name> (key <key>)``."""
        return f"PostgreSQL advisory lock {self.name} (key {self.key})"

    @property
    def holds_lock(self) -> bool:
        """Whether this elector's connection holds the lock (maybe still settling)."""
        return self._held_since is not None

    async def try_acquire_or_renew(self) -> bool:
        """True once the lock is held and has been for ``lease_seconds``; raises when the
        database cannot be reached (the lock is then considered lost)."""
        try:
            held = await asyncio.wait_for(self._try(), self.attempt_timeout)
        except BaseException:
            await self._drop()
            raise
        if not held:
            return False
        assert self._held_since is not None
        return self._clock() - self._held_since >= self.lease_seconds

    async def release(self) -> None:
        """Unlock and close the connection (a no-op when not held)."""
        conn, self._conn, self._held_since = self._conn, None, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(
                conn.execute("SELECT pg_advisory_unlock($1)", self.key), self.attempt_timeout
            )
        finally:
            await self._close(conn)

    async def close(self) -> None:
        """Close the connection (which frees the lock)."""
        await self._drop()

    async def _try(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._held_since = None
            self._conn = await asyncpg.connect(self._dsn)
        if self._held_since is not None:
            await self._conn.fetchval("SELECT 1")  # the session, and so the lock, is alive
            return True
        if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
            self._held_since = self._clock()
            return True
        return False

    async def _drop(self) -> None:
        conn, self._conn, self._held_since = self._conn, None, None
        if conn is not None:
            await self._close(conn)

    @staticmethod
    async def _close(conn: asyncpg.Connection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 1.0)
        if not conn.is_closed():
            conn.terminate()
