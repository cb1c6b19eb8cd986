"""The daily statistics rollup (issue 18): one row per ward and finished local day, kept by the
scheduler, so the statistics page reads 300 rows a day instead of aggregating the city's
90,000 prompts of each day again on every view.

A day's rows are written together (every ward of the city, zeros included), after the day has
ended. The statistics page uses a day's rows only when they were taken at least
:data:`CLOSED_AFTER` after its end (every prompt due that day closed by the close sweep);
until then, and for today, it aggregates live. Acknowledgements can still come in late, so a
day is recomputed every :data:`REFRESH` until :data:`SETTLED` after its end; after that its
rows stay as they are. The rows are per zone (the settings' zone, the one the dashboard shows).
The sweep that writes them is :mod:`server.dashboard.scheduled`; this module is the table and
its reading.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.core.db import Base
from server.people.models import Area

#: Days back the rollup covers (the statistics page shows at most 31).
DAYS_KEPT = 31
#: A rollup taken this long after the day's end is used by the statistics page.
CLOSED_AFTER = timedelta(hours=1)
#: Recompute a day at most this often …
REFRESH = timedelta(hours=1)
#: … until this long after its end (late acknowledgements change the median).
SETTLED = timedelta(days=2)
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
    #: alerts raised that day by kind ({"missed_checkin": 3, …})
    alerts: Mapped[dict[str, int]] = mapped_column(JSON)
    #: minutes from raising to acknowledging of that day's acknowledged alerts (for medians
    #: over any set of wards)
    ack_minutes: Mapped[list[float]] = mapped_column(JSON)
    computed_at: Mapped[datetime]


def _day_end(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def rolled_up_days(
    *, session: Session, wards: list[Area], days: list[date], zone: ZoneInfo
) -> dict[date, dict[int, Any]]:
    """The rollup rows of ``wards`` for those of ``days`` that are complete (a row for every
    ward, taken at least :data:`CLOSED_AFTER` after the day's end), by day and ward id. Plain
    rows, not ORM objects: a city's month is 9,300 of them."""
    if not days or not wards:
        return {}
    ids = {w.id for w in wards}
    found: dict[date, dict[int, Any]] = {}
    t = StatsDaily.__table__.c
    ends = {d: _day_end(d, zone) + CLOSED_AFTER for d in days}
    for r in session.execute(
        select(t.ward_id, t.day, t.monitored, t.due, t.completed, t.alerts, t.ack_minutes,
               t.computed_at).where(
            t.zone == zone.key, t.day >= days[0], t.day <= days[-1], t.ward_id.in_(ids)
        )
    ):  # fmt: skip
        if r.day in ends and r.computed_at >= ends[r.day]:
            found.setdefault(r.day, {})[r.ward_id] = r
    return {d: by_ward for d, by_ward in found.items() if set(by_ward) == ids}


def days_to_roll_up(*, session: Session, now: datetime, zone: ZoneInfo) -> list[date]:
    """Finished days of the last :data:`DAYS_KEPT` with no rollup, or one still settling and
    older than :data:`REFRESH`; oldest first."""
    today = now.astimezone(zone).date()
    candidates = [today - timedelta(days=i) for i in range(DAYS_KEPT, 0, -1)]
    taken = dict(
        session.execute(
            select(StatsDaily.day, func.min(StatsDaily.computed_at))
            .where(StatsDaily.zone == zone.key, StatsDaily.day >= candidates[0])
            .group_by(StatsDaily.day)
        ).all()
    )
    due = []
    for d in candidates:
        end = _day_end(d, zone)
        at = taken.get(d)
        if now < end + CLOSED_AFTER:
            continue  # the day's last prompts may still be open
        if at is None or (at < end + SETTLED and now - at >= REFRESH):
            due.append(d)
    return due
