"""stats_daily: the alert counts as integer columns, the row's acknowledgement median, and the
districts' and cities' medians (stats_daily_areas)

Revision ID: 0004d
Revises: 0004c
Create Date: 2026-12-04 01:40:00

Issue 18: the city's statistics read 9,300 rollup rows and decoded two JSON columns of each in
Python. The counts by kind become one integer column per kind (summed in SQL by GROUP BY), the
row's median minutes to acknowledge is kept in ``ack_median`` (a ward's row is shown without
decoding its minutes); ``ack_minutes`` stays, for the medians over any other set of wards.
``stats_daily_areas`` holds the median over each district's and city's wards (the city's view
by district). Existing rows are backfilled from the JSON; the downgrade writes the JSON back
from the columns.
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
    op.create_table(
        "stats_daily_areas",
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("acknowledged", sa.Integer(), nullable=False),
        sa.Column("ack_median", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_stats_daily_areas_area_id_areas")
        ),
        sa.PrimaryKeyConstraint("area_id", "day", "zone", name=op.f("pk_stats_daily_areas")),
    )
    _backfill_areas(conn)


def _backfill_areas(conn) -> None:
    """The districts' and cities' medians of the days already rolled up: the minutes of their
    wards' rows (the areas above a ward are the ids of its path but its own)."""
    paths = dict(conn.execute(sa.text("SELECT id, path FROM areas")).all())
    rows = _table(sa.column("ack_minutes"), sa.column("computed_at"))
    minutes: dict[tuple, list[float]] = {}
    taken: dict[tuple, object] = {}
    for row in conn.execute(sa.select(*rows.c)):
        path = paths.get(row.ward_id) or ""
        for area_id in [int(x) for x in path.split("/") if x][:-1]:
            key = (area_id, row.day, row.zone)
            minutes.setdefault(key, []).extend(_decoded(row.ack_minutes) or [])
            taken[key] = min(taken.get(key, row.computed_at), row.computed_at)
    if minutes:
        areas = sa.table("stats_daily_areas", *[sa.column(c) for c in (
            "area_id", "day", "zone", "acknowledged", "ack_median", "computed_at")])  # fmt: skip
        conn.execute(areas.insert(), [
            {"area_id": a, "day": d, "zone": z, "acknowledged": len(v),
             "ack_median": statistics.median(v) if v else None, "computed_at": taken[(a, d, z)]}
            for (a, d, z), v in minutes.items()
        ])  # fmt: skip


def downgrade() -> None:
    op.drop_table("stats_daily_areas")
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
