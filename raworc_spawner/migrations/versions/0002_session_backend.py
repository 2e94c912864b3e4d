"""Each session remembers the backend its workspace and compute are on, and its owner instance.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Rows written before this revision have no backend (NULL): the first server to start on the
migrated store assigns them its own backend, the one they were made on unless the backend was
switched during the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("backend", sa.String(32), nullable=True))
        batch.add_column(sa.Column("instance", sa.String(63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("instance")
        batch.drop_column("backend")
