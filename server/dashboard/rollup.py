"""The daily statistics rollup (issue 18): one row per ward and local day, kept by the
scheduler, so the statistics page reads 300 rows a day instead of aggregating the city's
90,000 prompts of each day again on every view.

A day's rows are written together (every ward of the city, zeros included). A finished day's
rows are final when taken at least :data:`CLOSED_AFTER` after its end (every prompt due that
day closed by the close sweep). Acknowledgements can still come in late, so a day is
recomputed every :data:`REFRESH` until :data:`SETTLED` after its end; after that its rows stay
as they are, unless a ward was added since (its rows are missing: the day is rolled up again).
The rows are per zone (the settings' zone, the one the dashboard shows).

The days not finished yet (today, and yesterday until :data:`CLOSED_AFTER` past midnight) are
rolled up too, on every sweep (every 5 minutes), as a **snapshot** ("today so far", counted as of
the sweep): the page uses a snapshot while it is younger than :data:`FRESH` and says when it was
taken, and aggregates the day live when there is none (the scheduler stopped or behind). The
city's live day was most of the 31-day CSV's time (issue 18: 90,000 of today's prompts joined to
100,000 persons on every view). A finished day's own rows replace its snapshot. A page reads
in a few statements at READ COMMITTED: a sweep committing between them can give a day's sums
from one snapshot and its median from the next, five minutes apart (the "as of" is the first).
The sweep that writes them is :mod:`server.dashboard.scheduled`; this module is the table and
its reading.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    case,
    cast,
    func,
    select,
    true,
)
from sqlalchemy import null as sa_null
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.core.db import Base
from server.core.enums import AlertKind, AreaKind
from server.people.models import Area

#: Days back the rollup covers (the statistics page shows at most 31).
DAYS_KEPT = 31
#: A rollup taken this long after the day's end is used by the statistics page.
CLOSED_AFTER = timedelta(hours=1)
#: Recompute a day at most this often …
REFRESH = timedelta(hours=1)
#: … until this long after its end (late acknowledgements change the median).
SETTLED = timedelta(days=2)
#: A snapshot of an unfinished day is used while younger than this (the sweep runs every 5
#: minutes: one missed run is tolerated, then the page aggregates the day live again).
FRESH = timedelta(minutes=11)
#: PostgreSQL advisory lock: one scheduler at a time writes the rollup.
LOCK_KEY = 1800418


class StatsDaily(Base):
    __tablename__ = "stats_daily"

    ward_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    monitored: Mapped[int] = mapped_column(Integer)
    due: Mapped[int] = mapped_column(Integer)
    completed: Mapped[int] = mapped_column(Integer)
    #: alerts raised that day by kind (one integer column per kind: summed in SQL, migration
    #: 0004d; :data:`ALERT_COLUMNS` names them)
    alerts_missed_checkin: Mapped[int] = mapped_column(Integer, server_default="0")
    alerts_failed_verification: Mapped[int] = mapped_column(Integer, server_default="0")
    alerts_outside_home: Mapped[int] = mapped_column(Integer, server_default="0")
    alerts_severe_symptoms: Mapped[int] = mapped_column(Integer, server_default="0")
    alerts_high_risk: Mapped[int] = mapped_column(Integer, server_default="0")
    alerts_non_reporting: Mapped[int] = mapped_column(Integer, server_default="0")
    #: minutes from raising to acknowledging of that day's acknowledged alerts (for medians
    #: over several wards)
    ack_minutes: Mapped[list[float]] = mapped_column(JSON)
    #: their median (None: nothing acknowledged), so a ward's row is shown without decoding them
    ack_median: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime]


class StatsDailyArea(Base):
    """The median minutes to acknowledge over a district's or city's wards, per day (written
    with the day's ward rows, snapshots included), so the city's view by district does not take the
    median of 60,000 acknowledgements a week again (migration 0004d)."""

    __tablename__ = "stats_daily_areas"

    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    acknowledged: Mapped[int] = mapped_column(Integer)
    ack_median: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime]


#: the column of each alert kind, in :class:`AlertKind` order
ALERT_COLUMNS: dict[str, str] = {k.value: f"alerts_{k.value}" for k in AlertKind}


def _day_end(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def unfinished_days(*, now: datetime, zone: ZoneInfo) -> list[date]:
    """The days whose rollup can only be a snapshot: today, and yesterday until
    :data:`CLOSED_AFTER` after its end (its last prompts may still be open); oldest first."""
    today = now.astimezone(zone).date()
    yesterday = today - timedelta(days=1)
    return ([yesterday] if now < _day_end(yesterday, zone) + CLOSED_AFTER else []) + [today]


def usable_days(
    *, session: Session, ward_ids: list[int], days: list[date], now: datetime, zone: ZoneInfo
) -> dict[date, datetime | None]:
    """Those of ``days`` whose rollup the page may use for ``ward_ids`` (one grouped statement):
    a row for every ward, and either final — taken at least :data:`CLOSED_AFTER` after the day's
    end (value None) — or a snapshot younger than :data:`FRESH` (value: when it was taken)."""
    if not days or not ward_ids:
        return {}
    t = StatsDaily.__table__.c
    found = session.execute(
        select(t.day, func.count(), func.min(t.computed_at))
        .where(t.zone == zone.key, t.day >= min(days), t.day <= max(days),
               t.ward_id.in_(ward_ids))
        .group_by(t.day)
    )  # fmt: skip
    wanted, usable = set(days), {}
    for day, n, taken in found:
        if day not in wanted or n != len(ward_ids):
            continue
        if taken >= _day_end(day, zone) + CLOSED_AFTER:
            usable[day] = None
        elif abs(now - taken) <= FRESH:  # either way: the scheduler's host clock may lead
            usable[day] = taken
    return usable


def _rows_of(ward_ids: list[int], days: list[date], zone: ZoneInfo):
    t = StatsDaily.__table__.c
    return (t.zone == zone.key, t.day.in_(days), t.ward_id.in_(ward_ids))


def alert_sums() -> list[Any]:
    """``sum(alerts_<kind>)`` of every kind, in :data:`ALERT_COLUMNS` order."""
    t = StatsDaily.__table__.c
    return [func.sum(t[c]) for c in ALERT_COLUMNS.values()]


def rolled_sums(
    *, session: Session, ward_ids: list[int], days: list[date], zone: ZoneInfo,
    by_district: bool,
) -> Iterator[Any]:  # fmt: skip
    """The rollup summed in SQL by day and group (the ward, or its district): rows of (day,
    group id, monitored, due, completed, alerts of each kind …, median or None). A ward's median
    is its row's; a district's is :func:`rolled_medians`' (None here)."""
    if not days or not ward_ids:
        return iter(())
    t = StatsDaily.__table__.c
    if by_district:
        group = func.coalesce(Area.parent_id, Area.id)
        median: Any = sa_null()
    else:
        group, median = t.ward_id, func.max(t.ack_median)
    query = (
        select(t.day, group, func.sum(t.monitored), func.sum(t.due), func.sum(t.completed),
               *alert_sums(), median)
        .select_from(_with_areas())
        .where(*_rows_of(ward_ids, days, zone))
        .group_by(t.day, group)
    )  # fmt: skip
    return iter(session.execute(query))


def _with_areas():
    return StatsDaily.__table__.join(Area.__table__, Area.id == StatsDaily.__table__.c.ward_id)


def rolled_medians(
    *, session: Session, ward_ids: list[int], days: list[date], zone: ZoneInfo,
    by_district: bool,
) -> dict[tuple[date, int | None], float]:  # fmt: skip
    """Median minutes to acknowledge over several wards' rollup rows, by (day, district id), or
    by (day, None) over all ``ward_ids`` when not ``by_district``. PostgreSQL takes the median
    of the rows' minutes in SQL (``percentile_cont`` over ``json_array_elements_text``); SQLite
    has no median, the minutes are decoded here."""
    if not days or not ward_ids:
        return {}
    t = StatsDaily.__table__.c
    groups: list[Any] = [t.day]
    if by_district:
        groups.append(func.coalesce(Area.parent_id, Area.id))
    where = _rows_of(ward_ids, days, zone)

    def key(row) -> tuple[date, int | None]:
        return (row[0], row[1] if by_district else None)

    if session.get_bind().dialect.name == "postgresql":
        minutes = func.json_array_elements_text(t.ack_minutes).table_valued("value")
        median = func.percentile_cont(0.5).within_group(cast(minutes.c.value, Float))
        query = (
            select(*groups, median)
            .select_from(_with_areas().join(minutes, true()))
            .where(*where)
            .group_by(*groups)
        )
        return {key(r): float(r[-1]) for r in session.execute(query)}
    collected: dict[tuple[date, int | None], list[float]] = {}
    for r in session.execute(
        select(*groups, t.ack_minutes).select_from(_with_areas()).where(*where)
    ):
        collected.setdefault(key(r), []).extend(r[-1] or [])
    return {k: statistics.median(v) for k, v in collected.items() if v}


def area_medians(
    *, session: Session, area_ids: list[int], days: list[date], zone: ZoneInfo
) -> dict[tuple[date, int], float | None]:
    """The rolled-up medians of whole areas (districts, cities) by (day, area id); a missing
    key: no row (rolled up before the area existed), take :func:`rolled_medians`."""
    if not days or not area_ids:
        return {}
    t = StatsDailyArea.__table__.c
    found = session.execute(
        select(t.day, t.area_id, t.ack_median).where(
            t.zone == zone.key, t.day.in_(days), t.area_id.in_(area_ids)
        )
    )
    return {(day, area_id): median for day, area_id, median in found}


def stream_ward_rows(
    *, session: Session, wards: list[Area], days: list[date], zone: ZoneInfo, batch: int = 1000
) -> Iterator[tuple]:
    """The rollup rows of ``wards`` (in that order) and ``days`` (ascending) as plain tuples
    (ward id, day, monitored, due, completed, alerts of each kind …, median), from a
    server-side cursor (``yield_per``: PostgreSQL's named cursor), for the CSV."""
    if not days or not wards:
        return
    t = StatsDaily.__table__.c
    position = case({w.id: i for i, w in enumerate(wards)}, value=t.ward_id)
    query = (
        select(t.ward_id, t.day, t.monitored, t.due, t.completed,
               *[t[c] for c in ALERT_COLUMNS.values()], t.ack_median)
        .where(*_rows_of([w.id for w in wards], days, zone))
        .order_by(position, t.day)
        .execution_options(yield_per=batch)
    )  # fmt: skip
    for part in session.execute(query).partitions():
        yield from part


def days_to_roll_up(*, session: Session, now: datetime, zone: ZoneInfo) -> list[date]:
    """Finished days of the last :data:`DAYS_KEPT` that need their final rows, oldest first:
    none yet, only a snapshot taken before the day closed, still settling and older than
    :data:`REFRESH`, or fewer rows than there are wards (a ward added since: without its row
    the page would aggregate the day, and every later one, live)."""
    today = now.astimezone(zone).date()
    candidates = [today - timedelta(days=i) for i in range(DAYS_KEPT, 0, -1)]
    wards = session.scalar(select(func.count()).where(Area.kind == AreaKind.ward)) or 0
    taken = {
        day: (at, n)
        for day, at, n in session.execute(
            select(StatsDaily.day, func.min(StatsDaily.computed_at), func.count())
            .where(StatsDaily.zone == zone.key, StatsDaily.day >= candidates[0])
            .group_by(StatsDaily.day)
        )
    }
    due = []
    for d in candidates:
        end = _day_end(d, zone)
        at, rows = taken.get(d, (None, 0))
        if now < end + CLOSED_AFTER:
            continue  # the day's last prompts may still be open
        snapshot = at is not None and at < end + CLOSED_AFTER  # taken before the day closed
        settling = at is not None and at < end + SETTLED and now - at >= REFRESH
        if at is None or snapshot or settling or rows != wards:
            due.append(d)
    return due
