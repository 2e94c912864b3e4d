"""PostgreSQL for tests: databases made and dropped on the server of ``RAWORC_TEST_POSTGRES_URL``.

``source scripts/postgres-for-tests`` starts the machine's PostgreSQL and exports that URL.
Every helper is a coroutine; run it where no event loop runs with :func:`run_alone`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from raworc_spawner.store.leader import asyncpg_dsn

POSTGRES_ENV = "RAWORC_TEST_POSTGRES_URL"


def database_url(base_url: str, name: str) -> str:
    """``base_url`` with its database replaced by ``name``."""
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


async def create_database(base_url: str, name: str, *, durable: bool = True) -> str:
    """(Re)create database ``name`` on the server of ``base_url``; return its URL.

    ``durable=False`` turns off ``synchronous_commit`` (faster; durability not under test).
    """
    conn = await asyncpg.connect(asyncpg_dsn(base_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        if not durable:
            await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
    finally:
        await conn.close()
    return database_url(base_url, name)


async def drop_database(base_url: str, name: str) -> None:
    """Drop database ``name`` (every connection to it is ended first)."""
    conn = await asyncpg.connect(asyncpg_dsn(base_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def empty_schema(url: str) -> str:
    """Drop everything in the database at ``url`` (its ``public`` schema); return ``url``."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    return url


def run_alone(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine on a private event loop in a thread (leaving any running loop alone)."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as e:  # re-raised in the caller's thread
            failure.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
