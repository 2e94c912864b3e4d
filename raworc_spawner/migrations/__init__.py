"""Alembic migrations of the store's schema, run by ``SessionStore.open()``."""
