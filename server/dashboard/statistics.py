"""The dashboard's numbers: a person's compliance (prompts completed / due so far) and the
statistics page per ward and local day (people monitored, compliance, alerts by kind, minutes
to acknowledge), within the caller's scope.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.core.enums import AlertKind, AreaKind, PromptState
from server.dashboard.rollup import rolled_up_days
from server.people.models import Area, Person, StaffUser
from server.scope import areas_in_scope

#: Prompt states that count as "due" in compliance (cancelled and system-missed ones do not).
NOT_COUNTED = (PromptState.cancelled, PromptState.missed_system)
#: Prompts whose outcome is known before their due time: counted as due the moment they are
#: decided (issue 19: a prompt failed at 07:40 with its window open till 08:00 was left out,
#: so compliance read "1/1 (100 %)").
DECIDED = (PromptState.completed, PromptState.failed, PromptState.missed)


@dataclass
class Compliance:
    completed: int
    due: int

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.completed / self.due, 1) if self.due else None


def compliance(*, session: Session, person: Person, now: datetime) -> Compliance:
    """Prompts completed / prompts due so far (due time passed, or already decided: completed,
    failed or missed); cancelled prompts and those missed while the scheduler was down do not
    count."""
    counted = and_(
        CheckinPrompt.person_id == person.id,
        CheckinPrompt.state.not_in(NOT_COUNTED),
        or_(CheckinPrompt.due_at <= now, CheckinPrompt.state.in_(DECIDED)),
    )
    due, done = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((CheckinPrompt.state == PromptState.completed, 1), else_=0)), 0
            ),
        ).where(counted)
    ).one()
    return Compliance(completed=int(done or 0), due=int(due or 0))


# --- statistics by area -------------------------------------------------------------------------


@dataclass
class StatRow:
    day: date
    area: Area | None  # None: the total over the areas shown
    monitored: int = 0
    due: int = 0
    completed: int = 0
    alerts: Counter = field(default_factory=Counter)
    ack_minutes: list[float] = field(default_factory=list)
    #: the median computed by the database (PostgreSQL), when it was
    ack_median_value: float | None = None

    @property
    def compliance(self) -> float | None:
        return round(100.0 * self.completed / self.due, 1) if self.due else None

    @property
    def ack_median(self) -> float | None:
        if self.ack_median_value is not None:
            return round(self.ack_median_value, 1)
        return round(statistics.median(self.ack_minutes), 1) if self.ack_minutes else None


@dataclass
class Stats:
    days: list[date]
    wards: list[Area]
    rows: list[StatRow]  # per ward and day, wards in path order, days ascending
    totals: list[StatRow]  # per day over every ward shown


def statistics_by_area(
    *,
    session: Session,
    staff: StaffUser,
    root: Area | None,
    days: int,
    now: datetime,
    zone: ZoneInfo,
) -> Stats:
    """Per ward (in ``root``'s subtree, within scope) and local day (the last ``days`` days,
    today included): people monitored (isolation overlapping the day), prompts due by now and
    completed, alerts raised by kind, minutes from raising to acknowledging (median).

    Finished days come from the daily rollup the scheduler keeps (``stats_daily``,
    :mod:`server.dashboard.rollup`) when it was taken after the day ended; the others (today,
    and any day not rolled up yet) are aggregated in SQL here (issue 18: the city's week was
    700,000 prompt rows carried into Python, 1.5 s at 10,000 persons)."""
    today = now.astimezone(zone).date()
    day_list = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    wards = [a for a in areas_in_scope(session=session, staff=staff) if a.kind is AreaKind.ward]
    if root is not None:
        wards = [w for w in wards if w.path.startswith(root.path)]
    rows = {(d, w.id): StatRow(d, w) for w in wards for d in day_list}
    totals = {d: StatRow(d, None) for d in day_list}
    if not wards:
        return Stats(day_list, wards, [], list(totals.values()))
    rolled = rolled_up_days(session=session, wards=wards, days=day_list[:-1], zone=zone)
    # live from the first day without a complete rollup to today
    first_live = next((i for i, d in enumerate(day_list) if d not in rolled), len(day_list) - 1)
    for d in day_list[:first_live]:
        for ward_id, r in rolled[d].items():
            row, total = rows[(d, ward_id)], totals[d]
            for target in (row, total):
                target.monitored += r.monitored
                target.due += r.due
                target.completed += r.completed
                target.alerts.update(r.alerts or {})
                target.ack_minutes.extend(r.ack_minutes or [])
    aggregate_days(
        session=session,
        ward_ids=[w.id for w in wards],
        day_list=day_list[first_live:],
        now=now,
        zone=zone,
        rows=rows,
        totals=totals,
        median_in_sql=session.get_bind().dialect.name == "postgresql",
    )
    ordered = [rows[(d, w.id)] for w in wards for d in day_list]
    return Stats(day_list, wards, ordered, [totals[d] for d in day_list])


def aggregate_days(
    *,
    session: Session,
    ward_ids: list[int],
    day_list: list[date],
    now: datetime,
    zone: ZoneInfo,
    rows: dict[tuple[date, int], StatRow],
    totals: dict[date, StatRow],
    median_in_sql: bool,
) -> None:
    """Add the statistics of the consecutive local days ``day_list`` for ``ward_ids`` to
    ``rows`` (by (day, ward id)) and ``totals`` (by day), aggregated in SQL, grouped by ward and
    day: a day is the index of the first local midnight after the moment (a ``CASE`` over the
    boundaries, computed here in the zone, so daylight-saving days are right on every backend).
    ``median_in_sql``: the acknowledgement median by ``percentile_cont`` (PostgreSQL); else the
    minutes are collected in ``ack_minutes`` (SQLite has no median; the rollup keeps them)."""
    if not day_list or not ward_ids:
        return
    days = len(day_list)
    bounds = [datetime.combine(d, datetime.min.time(), tzinfo=zone) for d in day_list]
    bounds.append(
        datetime.combine(day_list[-1] + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    )
    start, end = bounds[0], bounds[-1]

    def day_of(column):
        return case(*[(column < bounds[i + 1], i) for i in range(days)], else_=days - 1)

    def add(index: int, ward_id: int, fn) -> None:
        day = day_list[index]
        if (day, ward_id) in rows:
            fn(rows[(day, ward_id)])
            fn(totals[day])

    overlaps = [
        func.sum(
            case((and_(Person.isolation_start < bounds[i + 1], Person.isolation_end >= bounds[i]),
                  1), else_=0)
        )
        for i in range(days)
    ]  # fmt: skip
    for ward_id, *counts in session.execute(
        select(Person.ward_id, *overlaps)
        .where(Person.ward_id.in_(ward_ids))
        .where(Person.isolation_start < end, Person.isolation_end >= start)
        .group_by(Person.ward_id)
    ):
        for i, n in enumerate(counts):
            if n:
                add(i, ward_id, lambda r, n=int(n): setattr(r, "monitored", r.monitored + n))
    day = day_of(CheckinPrompt.due_at).label("day")
    for ward_id, index, due, done in session.execute(
        select(
            Person.ward_id,
            day,
            func.count(),
            func.sum(case((CheckinPrompt.state == PromptState.completed, 1), else_=0)),
        )
        .join(Person, Person.id == CheckinPrompt.person_id)
        .where(
            Person.ward_id.in_(ward_ids),
            CheckinPrompt.due_at >= start,
            CheckinPrompt.due_at < end,
            CheckinPrompt.state.not_in(NOT_COUNTED),
            or_(CheckinPrompt.due_at <= now, CheckinPrompt.state.in_(DECIDED)),
        )
        .group_by(Person.ward_id, day)
    ):

        def bump(r: StatRow, due: int = int(due), done: int = int(done or 0)) -> None:
            r.due += due
            r.completed += done

        add(index, ward_id, bump)
    in_period = (
        Alert.area_id.in_(ward_ids), Alert.created_at >= start, Alert.created_at < end
    )  # fmt: skip
    day = day_of(Alert.created_at).label("day")
    for ward_id, index, kind, n in session.execute(
        select(Alert.area_id, day, Alert.kind, func.count())
        .where(*in_period)
        .group_by(Alert.area_id, day, Alert.kind)
    ):
        # Counter.update adds: the day's total sums its wards
        add(index, ward_id, lambda r, k=kind.value, n=int(n): r.alerts.update({k: n}))
    acked = (*in_period, Alert.acknowledged_at.is_not(None))
    if median_in_sql:
        minutes = func.extract("epoch", Alert.acknowledged_at - Alert.created_at) / 60
        median = func.percentile_cont(0.5).within_group(minutes)
        for ward_id, index, value in session.execute(
            select(Alert.area_id, day, median).where(*acked).group_by(Alert.area_id, day)
        ):
            rows[(day_list[index], ward_id)].ack_median_value = float(value)
        for index, value in session.execute(select(day, median).where(*acked).group_by(day)):
            totals[day_list[index]].ack_median_value = float(value)
    else:
        for ward_id, index, created_at, acked_at in session.execute(
            select(Alert.area_id, day, Alert.created_at, Alert.acknowledged_at).where(*acked)
        ):
            value = (acked_at - created_at).total_seconds() / 60
            add(index, ward_id, lambda r, v=value: r.ack_minutes.append(v))


def alert_kind_series(stats: Stats) -> dict[str, list[int]]:
    """Alerts per kind per day (totals), for the stacked bar chart."""
    series: dict[str, list[int]] = defaultdict(list)
    for kind in AlertKind:
        for row in stats.totals:
            series[kind.value].append(row.alerts.get(kind.value, 0))
    return dict(series)
