"""The SQL store: sessions and their events, in SQLite (the default) or PostgreSQL.

:class:`SessionStore` is the only thing other layers use; no SQLAlchemy type leaks out of it.
The schema is owned by the alembic migrations in ``raworc_spawner/migrations``, which
:meth:`SessionStore.open` runs to head on every start.

Concurrency: every write runs in one transaction. On SQLite, write transactions start with
``BEGIN IMMEDIATE`` so they queue on the database lock (``busy_timeout``) instead of failing
half-way; on PostgreSQL, :meth:`SessionStore.update` is one conditional ``UPDATE`` and
:meth:`SessionStore.add_event` locks the session's row, so both are safe across processes.

Example::

    store = SessionStore.sqlite_in("data")
    await store.open()
    saved = await store.insert(Session(id=new_session_id(), name="demo", owner="alice"))
    saved = await store.update(saved.evolve(state=SessionState.READY))
    await store.close()

Modules: ``session_store`` (the class), ``schema`` (tables, row mapping), ``queries`` (filters,
activity times, cursors), ``engine`` (URLs, connections, migrations).
"""

from raworc_spawner.store.engine import ALLOWED_DRIVERS, alembic_config
from raworc_spawner.store.queries import MAX_PAGE_SIZE
from raworc_spawner.store.schema import metadata
from raworc_spawner.store.session_store import SQLITE_FILENAME, SessionStore

__all__ = [
    "ALLOWED_DRIVERS",
    "MAX_PAGE_SIZE",
    "SQLITE_FILENAME",
    "SessionStore",
    "alembic_config",
    "metadata",
]
