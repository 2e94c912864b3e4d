"""The sessions and session_events tables.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("starting_prompt", sa.Text, nullable=False),
        sa.Column("agent_ids", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("profile", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("waiting_timeout_seconds", sa.Integer, nullable=True),
        sa.Column("container_id", sa.Text, nullable=True),
        sa.Column("persistent_volume_id", sa.Text, nullable=True),
        sa.Column("parent_session_id", sa.Text, nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at"),
        _timestamp("last_activity_at"),
        _timestamp("terminated_at"),
        sa.Column("termination_reason", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_owner_created_at", "sessions", ["owner", "created_at"])
    op.create_index("ix_sessions_state_last_activity_at", "sessions", ["state", "last_activity_at"])
    op.create_index("ix_sessions_namespace", "sessions", ["namespace"])
    op.create_index("ix_sessions_created_at_id", "sessions", ["created_at", "id"])
    op.create_table(
        "session_events",
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        _timestamp("timestamp", nullable=False),
        sa.PrimaryKeyConstraint("session_id", "seq", name="pk_session_events"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_session_events_session_id_sessions",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("session_events")
    op.drop_table("sessions")
