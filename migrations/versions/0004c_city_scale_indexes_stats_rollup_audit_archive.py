"""city scale: indexes from EXPLAIN ANALYZE, the daily statistics rollup, the audit archive

Revision ID: 0004c
Revises: 0004m
Create Date: 2026-12-03 15:20:00

Issue 18 (docs/performance.md, "Dashboard at city scale"). Each index names the page or sweep
it serves. ``ix_persons_risk_sort`` is an expression index (the persons list's risk order,
written with the same constants as ``server.dashboard.service.risk_rank``); reflection skips
expression indexes, so it is created here and not declared on the model.

On a large live database build these with ``CREATE INDEX CONCURRENTLY`` by hand first (the
migration then finds them: ``if_not_exists``), since a plain CREATE INDEX blocks writes to the
table while it runs (about 10 s for checkin_attempts at 2.5 M rows).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004c'
down_revision: str | Sequence[str] | None = '0004m'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_WAITING = (
    "review_outcome IS NULL AND (decision = 'review' OR (decision = 'rejected' AND "
    "code IN ('face_mismatch', 'liveness_failed', 'replayed_image')))"
)
#: as server.people.models.RISK_SORT_EXPRESSIONS (a migration does not import the models)
RISK_SORT = (
    "(-\nCASE\n    WHEN risk_level = 'red' THEN 4\n    WHEN risk_level = 'orange' THEN 3\n"
    "    WHEN risk_level = 'yellow' THEN 2\n    WHEN risk_level = 'green' THEN 1\n    ELSE 0\nEND), "
    "(CASE\n    WHEN is_high_risk IS TRUE THEN 0\n    ELSE 1\nEND), full_name, id"
)


def _partial(where: str) -> dict:
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def upgrade() -> None:
    op.create_table('stats_daily',
    sa.Column('ward_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('monitored', sa.Integer(), nullable=False),
    sa.Column('due', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.Column('alerts', sa.JSON(), nullable=False),
    sa.Column('ack_minutes', sa.JSON(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ward_id'], ['areas.id'], name=op.f('fk_stats_daily_ward_id_areas')),
    sa.PrimaryKeyConstraint('ward_id', 'day', 'zone', name=op.f('pk_stats_daily'))
    )
    op.create_table('audit_events_archive',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_kind', sa.String(length=32), nullable=True),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('area_id', sa.Integer(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events_archive'))
    )
    with op.batch_alter_table('audit_events_archive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_archive_at'), ['at'], unique=False)

    # persons list: keyset pages by name, by isolation end, and by risk (expression index)
    op.create_index('ix_persons_name_sort', 'persons', ['full_name', 'id'], if_not_exists=True)
    op.create_index('ix_persons_end_sort', 'persons', ['isolation_end', 'id'], if_not_exists=True)
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_persons_risk_sort ON persons ({RISK_SORT})")
    # review queue: only what waits for a person (a 2.5 M-row table otherwise scanned)
    op.create_index('ix_checkin_attempts_review_queue', 'checkin_attempts',
                    ['received_at', 'id'], if_not_exists=True, **_partial(REVIEW_WAITING))
    # alert queue: open and acknowledged only; statistics and the rollup: alerts and prompts by day
    op.create_index('ix_alerts_queue', 'alerts', ['severity', 'created_at', 'id'],
                    if_not_exists=True, **_partial("state IN ('open', 'acknowledged')"))
    op.create_index('ix_alerts_created_at', 'alerts', ['created_at'], if_not_exists=True)
    op.create_index('ix_checkin_prompts_due_at', 'checkin_prompts', ['due_at'],
                    if_not_exists=True)
    # retention sweep: delivered outbox rows, oldest first
    op.create_index('ix_notifications_sent_at', 'notifications', ['sent_at'],
                    if_not_exists=True, **_partial("state = 'sent'"))


def downgrade() -> None:
    op.drop_index('ix_notifications_sent_at', table_name='notifications')
    op.drop_index('ix_checkin_prompts_due_at', table_name='checkin_prompts')
    op.drop_index('ix_alerts_created_at', table_name='alerts')
    op.drop_index('ix_alerts_queue', table_name='alerts')
    op.drop_index('ix_checkin_attempts_review_queue', table_name='checkin_attempts')
    op.execute("DROP INDEX ix_persons_risk_sort")
    op.drop_index('ix_persons_end_sort', table_name='persons')
    op.drop_index('ix_persons_name_sort', table_name='persons')
    with op.batch_alter_table('audit_events_archive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_archive_at'))
    op.drop_table('audit_events_archive')
    op.drop_table('stats_daily')
