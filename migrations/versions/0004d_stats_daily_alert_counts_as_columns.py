"""stats_daily: the alert counts as integer columns and the row's acknowledgement median

Revision ID: 0004d
Revises: 0004c
Create Date: 2026-12-04 01:40:00

Issue 18: the city's statistics read 9,300 rollup rows and decoded two JSON columns of each in
Python. The counts by kind become one integer column per kind (summed in SQL by GROUP BY), the
row's median minutes to acknowledge is kept in ``ack_median`` (a ward's row is shown without
decoding its minutes); ``ack_minutes`` stays, for the medians over several wards. Existing rows
are backfilled from the JSON; the downgrade writes the JSON back from the columns.
"""

import json
import statistics
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004d"
down_revision: str | Sequence[str] | None = "0004c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: as server.core.enums.AlertKind (a migration does not import the models)
KINDS = ("missed_checkin", "failed_verification", "outside_home", "severe_symptoms",
         "high_risk", "non_reporting")  # fmt: skip
KEY = ("ward_id", "day", "zone")


def _table(*columns: sa.Column) -> sa.Table:
    return sa.table("stats_daily", sa.column("ward_id"), sa.column("day"), sa.column("zone"),
                    *columns)  # fmt: skip


def _decoded(value):
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        for kind in KINDS:
            batch_op.add_column(
                sa.Column(f"alerts_{kind}", sa.Integer(), server_default="0", nullable=False)
            )
        batch_op.add_column(sa.Column("ack_median", sa.Float(), nullable=True))
    conn = op.get_bind()
    old = _table(sa.column("alerts"), sa.column("ack_minutes"))
    new = _table(*[sa.column(f"alerts_{k}") for k in KINDS], sa.column("ack_median"))
    updates = []
    for row in conn.execute(sa.select(*old.c)):
        alerts = _decoded(row.alerts) or {}
        minutes = _decoded(row.ack_minutes) or []
        values = {f"alerts_{k}": int(alerts.get(k, 0)) for k in KINDS}
        values["ack_median"] = statistics.median(minutes) if minutes else None
        updates.append({**{f"k_{c}": getattr(row, c) for c in KEY}, **values})
    if updates:
        conn.execute(
            new.update().where(*[new.c[c] == sa.bindparam(f"k_{c}") for c in KEY]), updates
        )
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.drop_column("alerts")


def downgrade() -> None:
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alerts", sa.JSON(), server_default="{}", nullable=False))
    conn = op.get_bind()
    cols = _table(*[sa.column(f"alerts_{k}") for k in KINDS])
    target = _table(sa.column("alerts", sa.JSON()))
    updates = [
        {**{f"k_{c}": getattr(row, c) for c in KEY},
         "alerts": {k: n for k in KINDS if (n := getattr(row, f"alerts_{k}"))}}
        for row in conn.execute(sa.select(*cols.c))
    ]  # fmt: skip
    if updates:
        conn.execute(
            target.update().where(*[target.c[c] == sa.bindparam(f"k_{c}") for c in KEY]), updates
        )
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.alter_column("alerts", server_default=None)
        batch_op.drop_column("ack_median")
        for kind in reversed(KINDS):
            batch_op.drop_column(f"alerts_{kind}")
