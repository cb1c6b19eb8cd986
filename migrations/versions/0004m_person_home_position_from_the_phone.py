"""persons.home_source and the home position proposed by the phone at activation (issue 19)

Revision ID: 0004m
Revises: 0003e
Create Date: 2026-12-03 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004m'
down_revision: str | Sequence[str] | None = '0003e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('home_source', sa.String(length=8), server_default='typed', nullable=False)
        )
        batch_op.add_column(sa.Column('home_proposed_lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('home_proposed_lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('home_proposed_accuracy_m', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('home_proposed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_column('home_proposed_at')
        batch_op.drop_column('home_proposed_accuracy_m')
        batch_op.drop_column('home_proposed_lon')
        batch_op.drop_column('home_proposed_lat')
        batch_op.drop_column('home_source')
