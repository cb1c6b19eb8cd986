"""sweep_cursors: where a keyset sweep stopped (the non-reporting sweep, issue 18)

Revision ID: 0004e
Revises: 0004d
Create Date: 2026-12-04 02:00:00

The non-reporting sweep walked the persons from the first id in every batch of every run; it now
goes on after the last id it finished with (kept here between batches and runs) and wraps
around at the end of the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004e"
down_revision: str | Sequence[str] | None = "0004d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sweep_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sweep_cursors")),
    )


def downgrade() -> None:
    op.drop_table("sweep_cursors")
