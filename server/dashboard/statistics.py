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

    @property
    def compliance(self) -> float | None:
        return round(100.0 * self.completed / self.due, 1) if self.due else None

    @property
    def ack_median(self) -> float | None:
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

    Computed in Python over the rows of the period: a ward's week is a few thousand prompts.
    A city-wide reporting replica would aggregate in SQL instead (docs/dashboard.md)."""
    today = now.astimezone(zone).date()
    day_list = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    start = datetime.combine(day_list[0], datetime.min.time(), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    wards = [a for a in areas_in_scope(session=session, staff=staff) if a.kind is AreaKind.ward]
    if root is not None:
        wards = [w for w in wards if w.path.startswith(root.path)]
    ward_ids = [w.id for w in wards]
    rows = {(d, w.id): StatRow(d, w) for w in wards for d in day_list}
    totals = {d: StatRow(d, None) for d in day_list}

    def add(day: date, ward_id: int, fn) -> None:
        if (day, ward_id) in rows:
            fn(rows[(day, ward_id)])
            fn(totals[day])

    if not ward_ids:
        return Stats(day_list, wards, [], list(totals.values()))
    persons = session.execute(
        select(Person.id, Person.ward_id, Person.isolation_start, Person.isolation_end).where(
            Person.ward_id.in_(ward_ids),
            Person.isolation_start < end,
            Person.isolation_end >= start,
        )
    ).all()
    for _pid, ward_id, iso_start, iso_end in persons:
        first = max(iso_start.astimezone(zone).date(), day_list[0])
        last = min(iso_end.astimezone(zone).date(), today)
        d = first
        while d <= last:
            add(d, ward_id, lambda r: setattr(r, "monitored", r.monitored + 1))
            d += timedelta(days=1)
    prompts = session.execute(
        select(Person.ward_id, CheckinPrompt.due_at, CheckinPrompt.state)
        .join(Person, Person.id == CheckinPrompt.person_id)
        .where(
            Person.ward_id.in_(ward_ids),
            CheckinPrompt.due_at >= start,
            CheckinPrompt.due_at < end,
            CheckinPrompt.state.not_in(NOT_COUNTED),
            or_(CheckinPrompt.due_at <= now, CheckinPrompt.state.in_(DECIDED)),
        )
    ).all()
    for ward_id, due_at, state in prompts:
        day = due_at.astimezone(zone).date()
        done = state is PromptState.completed

        def bump(r: StatRow, done: bool = done) -> None:
            r.due += 1
            r.completed += int(done)

        add(day, ward_id, bump)
    alerts = session.execute(
        select(Alert.area_id, Alert.kind, Alert.created_at, Alert.acknowledged_at).where(
            Alert.area_id.in_(ward_ids), Alert.created_at >= start, Alert.created_at < end
        )
    ).all()
    for ward_id, kind, created_at, acked_at in alerts:
        day = created_at.astimezone(zone).date()
        minutes = (acked_at - created_at).total_seconds() / 60 if acked_at else None

        def count(r: StatRow, kind: AlertKind = kind, minutes: float | None = minutes) -> None:
            r.alerts[kind.value] += 1
            if minutes is not None:
                r.ack_minutes.append(minutes)

        add(day, ward_id, count)
    ordered = [rows[(d, w.id)] for w in wards for d in day_list]
    return Stats(day_list, wards, ordered, [totals[d] for d in day_list])


def alert_kind_series(stats: Stats) -> dict[str, list[int]]:
    """Alerts per kind per day (totals), for the stacked bar chart."""
    series: dict[str, list[int]] = defaultdict(list)
    for kind in AlertKind:
        for row in stats.totals:
            series[kind.value].append(row.alerts.get(kind.value, 0))
    return dict(series)
