"""Tests of the SQL store, over SQLite and PostgreSQL."""
