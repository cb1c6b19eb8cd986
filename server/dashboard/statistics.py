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
from server.dashboard.rollup import (
    ALERT_COLUMNS,
    area_medians,
    rolled_medians,
    rolled_sums,
    usable_days,
)
from server.people.models import Area, Person, StaffUser, path_ids
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
    rows: list[StatRow]  # per group (ward or district) and day, in path order, days ascending
    totals: list[StatRow]  # per day over every ward shown
    #: what a row is: "ward", or "district" (its wards summed; the city's view)
    by: str = "ward"
    #: the unfinished days shown are the rollup's snapshot taken then (None: live or final)
    as_of: datetime | None = None


@dataclass
class Frame:
    """Which wards and days a statistics view covers, and which of the days come from the
    rollup (the first ones: finished days, then the snapshots of today so far) and which are
    aggregated live (the last ones, from the first day the rollup does not hold)."""

    days: list[date]
    wards: list[Area]
    rolled: list[date]
    live: list[date]
    #: every area in scope (held, so that the districts stay in the session's identity map)
    areas: list[Area] = field(default_factory=list)
    #: when the oldest snapshot among ``rolled`` was taken (None: no unfinished day is rolled)
    as_of: datetime | None = None


def stats_frame(
    *, session: Session, staff: StaffUser, root: Area | None, days: int, now: datetime,
    zone: ZoneInfo,
) -> Frame:  # fmt: skip
    """The wards in ``root``'s subtree within scope (path order), the last ``days`` local days
    (today included), and where each day's numbers come from: from the daily rollup the
    scheduler keeps (``stats_daily``, :mod:`server.dashboard.rollup`) when it is complete and
    final, or a fresh snapshot of a day not finished yet; from the first day without one on,
    live."""
    today = now.astimezone(zone).date()
    day_list = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    areas = areas_in_scope(session=session, staff=staff)
    wards = [a for a in areas if a.kind is AreaKind.ward]
    if root is not None:
        wards = [w for w in wards if w.path.startswith(root.path)]
    usable = usable_days(
        session=session, ward_ids=[w.id for w in wards], days=day_list, now=now, zone=zone
    )
    first_live = next((i for i, d in enumerate(day_list) if d not in usable), len(day_list))
    rolled = day_list[:first_live]
    taken = [usable[d] for d in rolled if usable[d] is not None]
    return Frame(day_list, wards, rolled, day_list[first_live:], areas,
                 min(taken) if taken else None)  # fmt: skip


def statistics_by_area(
    *,
    session: Session,
    staff: StaffUser,
    root: Area | None,
    days: int,
    now: datetime,
    zone: ZoneInfo,
    group: str = "ward",
) -> Stats:
    """Per ward (in ``root``'s subtree, within scope) and local day (the last ``days`` days,
    today included): people monitored (isolation overlapping the day), prompts due by now and
    completed, alerts raised by kind, minutes from raising to acknowledging (median).
    ``group="district"`` sums the wards of each district instead (the median over their
    alerts); ``"auto"``: by district when the wards shown lie in more than one.

    Rolled-up days are summed in SQL (GROUP BY day and ward or district), the others aggregated
    in SQL from the prompts, persons and alerts (issue 18: the city's week was 700,000 prompt
    rows carried into Python, then 2,100 rollup rows with two JSON columns decoded each)."""
    frame = stats_frame(session=session, staff=staff, root=root, days=days, now=now, zone=zone)
    day_list, wards = frame.days, frame.wards
    if group == "auto":
        group = "district" if len({w.parent_id or w.id for w in wards}) > 1 else "ward"
    by_district = group == "district"
    group_of = {w.id: (w.parent_id or w.id) if by_district else w.id for w in wards}
    shown = _groups(session, wards, group_of) if by_district else wards
    rows = {(d, a.id): StatRow(d, a) for a in shown for d in day_list}
    totals = {d: StatRow(d, None) for d in day_list}
    if not wards:
        return Stats(day_list, wards, [], list(totals.values()), group, frame.as_of)
    ward_ids = [w.id for w in wards]
    kinds = list(ALERT_COLUMNS)
    for day, group_id, monitored, due, done, *rest in rolled_sums(
        session=session, ward_ids=ward_ids, days=frame.rolled, zone=zone, by_district=by_district
    ):
        *counts, median = rest
        alerts = {k: int(n) for k, n in zip(kinds, counts, strict=True) if n}
        for target in (rows[(day, group_id)], totals[day]):
            target.monitored += int(monitored)
            target.due += int(due)
            target.completed += int(done or 0)
            target.alerts.update(alerts)
        if median is not None:
            rows[(day, group_id)].ack_median_value = float(median)
    _rolled_medians(session=session, frame=frame, zone=zone, rows=rows, totals=totals,
                    groups=shown if by_district else [])  # fmt: skip
    aggregate_days(
        session=session,
        ward_ids=ward_ids,
        day_list=frame.live,
        now=now,
        zone=zone,
        rows=rows,
        totals=totals,
        median_in_sql=session.get_bind().dialect.name == "postgresql",
        group_of=group_of,
        by_district=by_district,
    )
    ordered = [rows[(d, a.id)] for a in shown for d in day_list]
    return Stats(day_list, wards, ordered, [totals[d] for d in day_list], group, frame.as_of)


def _groups(session: Session, wards: list[Area], group_of: dict[int, int]) -> list[Area]:
    """The districts of ``wards``, in the order their wards come (path order)."""
    ids = list(dict.fromkeys(group_of[w.id] for w in wards))
    return [session.get(Area, i) for i in ids]  # in the identity map: the frame holds them


def _whole_area(frame: Frame) -> int | None:
    """The area (in scope, so all its wards are at hand) whose wards are exactly those shown:
    its rolled-up median is the totals' median."""
    if not frame.wards:
        return None
    in_scope = {a.id for a in frame.areas}
    above = {w.id: path_ids(w.path)[:-1] for w in frame.areas if w.kind is AreaKind.ward}
    shown = {w.id for w in frame.wards}
    for area_id in reversed(above.get(frame.wards[0].id, [])):  # the deepest first
        under = {ward_id for ward_id, ids in above.items() if area_id in ids}
        if area_id in in_scope and under == shown:
            return area_id
    return None


def _rolled_medians(
    *, session: Session, frame: Frame, zone: ZoneInfo, rows: dict, totals: dict, groups: list
) -> None:
    """The medians of the rolled-up days for the totals and the districts shown: the rollup's
    own (``stats_daily_areas``) where the wards are a whole area, else the median over the
    wards' rows' minutes (:func:`rolled_medians`)."""
    if not frame.rolled:
        return
    top = _whole_area(frame)
    district_ids = [g.id for g in groups]
    found = area_medians(session=session, area_ids=district_ids + ([top] if top else []),
                         days=frame.rolled, zone=zone)  # fmt: skip

    def fallback(by_district: bool) -> dict:
        return rolled_medians(session=session, ward_ids=[w.id for w in frame.wards],
                              days=frame.rolled, zone=zone, by_district=by_district)  # fmt: skip

    if top is not None and all((d, top) in found for d in frame.rolled):
        for_totals = {(d, None): found[(d, top)] for d in frame.rolled}
    else:
        for_totals = fallback(False)
    for (day, _), value in for_totals.items():
        if value is not None:
            totals[day].ack_median_value = value
    if not district_ids:
        return
    if all((d, i) in found for d in frame.rolled for i in district_ids):
        for_districts = {k: v for k, v in found.items() if k[1] in district_ids}
    else:
        for_districts = fallback(True)
    for key, value in for_districts.items():
        if value is not None and key in rows:
            rows[key].ack_median_value = value


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
    group_of: dict[int, int] | None = None,
    by_district: bool = False,
) -> None:
    """Add the statistics of the consecutive local days ``day_list`` for ``ward_ids`` to
    ``rows`` (by (day, ward id)) and ``totals`` (by day), aggregated in SQL, grouped by ward and
    day: a day is the index of the first local midnight after the moment (a ``CASE`` over the
    boundaries, computed here in the zone, so daylight-saving days are right on every backend).
    ``median_in_sql``: the acknowledgement median by ``percentile_cont`` (PostgreSQL); else the
    minutes are collected in ``ack_minutes`` (SQLite has no median; the rollup keeps them).
    ``group_of``: the key of each ward's row (its district's id, with ``by_district``); by
    default the ward's own."""
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
        day, key = day_list[index], group_of.get(ward_id, ward_id) if group_of else ward_id
        if (day, key) in rows:
            fn(rows[(day, key)])
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
        group = func.coalesce(Area.parent_id, Area.id) if by_district else Alert.area_id
        for key, index, value in session.execute(
            select(group, day, median)
            .join(Area, Area.id == Alert.area_id)
            .where(*acked)
            .group_by(group, day)
        ):
            if (day_list[index], key) in rows:
                rows[(day_list[index], key)].ack_median_value = float(value)
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
