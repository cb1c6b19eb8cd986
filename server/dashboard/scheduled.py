"""What the scheduler runs for the dashboard: the daily statistics rollup (issue 18; the table
and its rules: :mod:`server.dashboard.rollup`, the aggregation: :mod:`server.dashboard.statistics`).
"""

from __future__ import annotations

import statistics
import time
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from server.core.enums import AreaKind
from server.dashboard.rollup import (
    ALERT_COLUMNS,
    LOCK_KEY,
    StatsDaily,
    StatsDailyArea,
    days_to_roll_up,
    unfinished_days,
)
from server.dashboard.statistics import StatRow, aggregate_days
from server.people.models import Area, path_ids


def roll_up_day(*, session: Session, day: date, now: datetime, zone: ZoneInfo) -> int:
    """(Re)write the rows of ``day`` for every ward; returns the rows written."""
    wards = list(session.scalars(select(Area).where(Area.kind == AreaKind.ward)))
    rows = {(day, w.id): StatRow(day, w) for w in wards}
    totals = {day: StatRow(day, None)}
    aggregate_days(
        session=session, ward_ids=[w.id for w in wards], day_list=[day], now=now, zone=zone,
        rows=rows, totals=totals, median_in_sql=False,
    )  # fmt: skip
    session.execute(delete(StatsDaily).where(StatsDaily.zone == zone.key, StatsDaily.day == day))
    values: list[dict[str, Any]] = []
    minutes_of: dict[int, list[float]] = {}
    for (_, ward_id), r in rows.items():
        minutes = minutes_of[ward_id] = sorted(round(m, 3) for m in r.ack_minutes)
        values.append({
            "ward_id": ward_id, "day": day, "zone": zone.key, "monitored": r.monitored,
            "due": r.due, "completed": r.completed, "ack_minutes": minutes,
            "ack_median": statistics.median(minutes) if minutes else None, "computed_at": now,
            **{column: r.alerts.get(kind, 0) for kind, column in ALERT_COLUMNS.items()},
        })  # fmt: skip
    if values:
        session.execute(insert(StatsDaily), values)
    _roll_up_areas(session=session, day=day, now=now, zone=zone, wards=wards,
                   minutes_of=minutes_of)  # fmt: skip
    return len(values)


def _roll_up_areas(*, session, day, now, zone, wards, minutes_of) -> None:
    """The median over each district's and city's wards that day (``stats_daily_areas``), from
    the wards' rounded minutes (``minutes_of``: ward id -> the minutes its row stores)."""
    minutes: dict[int, list[float]] = {}
    for w in wards:
        for area_id in path_ids(w.path)[:-1]:
            minutes.setdefault(area_id, []).extend(minutes_of[w.id])
    session.execute(
        delete(StatsDailyArea).where(StatsDailyArea.zone == zone.key, StatsDailyArea.day == day)
    )
    if minutes:
        session.execute(insert(StatsDailyArea), [
            {"area_id": area_id, "day": day, "zone": zone.key, "acknowledged": len(values),
             "ack_median": statistics.median(values) if values else None, "computed_at": now}
            for area_id, values in minutes.items()
        ])  # fmt: skip


def roll_up(*, session: Session, now: datetime, zone: ZoneInfo, budget_s: float) -> int:
    """The scheduler's sweep, in one transaction (under an advisory lock on PostgreSQL, so two
    schedulers do not write the same day): first the snapshots of the days not finished yet
    (today so far; :func:`~server.dashboard.rollup.unfinished_days`), then the finished days that
    need it, until done or ``budget_s`` is spent (the next run continues). Returns the rows
    written."""
    started, written = time.perf_counter(), 0
    if session.get_bind().dialect.name == "postgresql":
        got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        if not got:
            return 0  # another scheduler is on it
    for day in unfinished_days(now=now, zone=zone):
        written += roll_up_day(session=session, day=day, now=now, zone=zone)
    for day in days_to_roll_up(session=session, now=now, zone=zone):
        written += roll_up_day(session=session, day=day, now=now, zone=zone)
        if time.perf_counter() - started > budget_s:
            break
    session.commit()
    return written
