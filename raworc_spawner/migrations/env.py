"""Alembic environment for the store's schema.

:meth:`raworc_spawner.store.SessionStore.open` runs the migrations itself and hands over its
connection in ``config.attributes["connection"]``. For development (``alembic revision
--autogenerate``, ``--sql``), the packaged ``alembic.ini`` works too; the database URL then comes
from ``-x url=…``, else ``RAWORC_DB_URL``, else ``sqlalchemy.url``.
"""

import asyncio
import os

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from raworc_spawner.store.schema import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or os.environ.get("RAWORC_DB_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(
            "give the database URL: alembic -x url=sqlite+aiosqlite:///data/raworc.sqlite …"
        )
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_on_connection(connection: Connection) -> None:
    """Run the migrations on ``connection`` (the caller owns its transaction)."""
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    """Connect to ``url`` and run the migrations in one transaction (command-line use)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on_connection)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    """Print the migration SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline(_url())
elif (given := config.attributes.get("connection")) is not None:
    run_on_connection(given)
else:
    asyncio.run(run_from_url(_url()))
