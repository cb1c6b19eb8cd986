"""Issue 18: the statistics from the rollup's integer columns and SQL sums, the city's view by
district and the streamed CSV give the numbers computed row by row from the prompts, persons
and alerts; migration 0004d moves the rollup's JSON alert counts into columns and back."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from datetime import date, datetime, timedelta
from statistics import median
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, inspect, select, text

from server import migrate
from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.core.db import make_engine
from server.core.enums import AlertKind, AlertState, AreaKind, PromptState
from server.dashboard.rollup import StatsDaily
from server.dashboard.scheduled import roll_up
from server.dashboard.statistics import statistics_by_area
from server.people.areas import create_area
from server.people.models import Person
from tests.dashboard.world import log_in
from tests.minimal_world import MiniWorld

KINDS = [k.value for k in AlertKind]


def _city(session, clock, seed: int = 1804):
    """Two districts (the MiniWorld's with two wards, another with one), people in the three
    wards with random isolation periods, prompts in every state and alerts of every kind."""
    world = MiniWorld(session, clock.now())
    other_district = create_area(session=session, code="79-765", name="Bình Thạnh",
                                 kind=AreaKind.district, parent=world.city)  # fmt: skip
    third_ward = create_area(session=session, code="79-765-1", name="Phường 11",
                             kind=AreaKind.ward, parent=other_district)  # fmt: skip
    session.commit()
    wards = [world.ward, world.other_ward, third_ward]
    rng, now = random.Random(seed), world.now
    for i in range(12):
        p = world.person()
        p.ward_id = wards[i % 3].id
        p.isolation_start = now - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23))
        p.isolation_end = p.isolation_start + timedelta(days=rng.randint(1, 14))
        session.commit()
        for _ in range(25):
            opens = now - timedelta(minutes=rng.randint(-600, 60 * 24 * 9))
            world.prompt(p, state=rng.choice(list(PromptState)), opens_at=opens,
                         due_at=opens + timedelta(minutes=rng.randint(10, 200)))  # fmt: skip
        for k in range(7):
            created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 9))
            acked = created + timedelta(minutes=rng.randint(1, 300)) if k % 3 else None
            session.add(Alert(
                person_id=p.id, area_id=p.ward_id, kind=rng.choice(list(AlertKind)), severity=2,
                state=AlertState.acknowledged if acked else AlertState.open,
                dedupe_key=f"stats:{p.id}:{k}", created_at=created, acknowledged_at=acked,
            ))  # fmt: skip
    session.commit()
    city_staff = world._staff("city-staff", world.city)
    session.commit()
    return world, city_staff, {world.district.id: wards[:2], other_district.id: wards[2:]}


def _by_row(session, ward_ids, days, now, zone):
    """Row by row in Python: (day, ward id) → [monitored, due, completed, Counter, minutes]."""
    out = {(d, w): [0, 0, 0, Counter(), []] for w in ward_ids for d in days}
    for p in session.scalars(select(Person)):
        for d in days:
            start, end = p.isolation_start.astimezone(zone), p.isolation_end.astimezone(zone)
            if (d, p.ward_id) in out and start.date() <= d <= end.date():
                out[(d, p.ward_id)][0] += 1
    for pr, ward_id in session.execute(
        select(CheckinPrompt, Person.ward_id).join(Person, Person.id == CheckinPrompt.person_id)
    ):
        key = (pr.due_at.astimezone(zone).date(), ward_id)
        counted = pr.state not in (PromptState.cancelled, PromptState.missed_system) and (
            pr.due_at <= now
            or pr.state in (PromptState.completed, PromptState.failed, PromptState.missed)
        )
        if counted and key in out:
            out[key][1] += 1
            out[key][2] += pr.state is PromptState.completed
    for a in session.scalars(select(Alert)):
        key = (a.created_at.astimezone(zone).date(), a.area_id)
        if key in out:
            out[key][3][a.kind.value] += 1
            if a.acknowledged_at:
                out[key][4].append((a.acknowledged_at - a.created_at).total_seconds() / 60)
    return out


def _summed(cells):
    monitored, due, done, kinds, minutes = 0, 0, 0, Counter(), []
    for m, d, c, k, mins in cells:
        monitored, due, done = monitored + m, due + d, done + c
        kinds.update(k)
        minutes += mins
    return (monitored, due, done, {k: n for k, n in kinds.items() if n},
            round(median(minutes), 1) if minutes else None)  # fmt: skip


@pytest.mark.parametrize("rolled", [False, True], ids=["live", "rolled-up"])
def test_city_view_by_district_sums_its_wards_row_by_row(session, clock, rolled):
    world, staff, districts = _city(session, clock)
    zone, now = ZoneInfo("Asia/Ho_Chi_Minh"), world.now
    if rolled:
        assert roll_up(session=session, now=now, zone=zone, budget_s=60) == (31 + 1) * 3  # + today
    stats = statistics_by_area(session=session, staff=staff, root=None, days=10, now=now,
                               zone=zone, group="auto")  # fmt: skip
    assert stats.by == "district" and [a.id for a in {r.area: 1 for r in stats.rows}] == list(
        districts
    )
    ref = _by_row(session, [w.id for w in stats.wards], stats.days, now, zone)
    got = {(r.day, r.area.id): (r.monitored, r.due, r.completed, dict(r.alerts), r.ack_median)
           for r in stats.rows}  # fmt: skip
    expected = {(d, district): _summed([ref[(d, w.id)] for w in wards])
                for district, wards in districts.items() for d in stats.days}  # fmt: skip
    assert got == expected
    assert sum(v[1] for v in got.values()) > 40 and any(v[4] for v in got.values())
    totals = [(t.monitored, t.due, t.completed, dict(t.alerts), t.ack_median)
              for t in stats.totals]  # fmt: skip
    assert totals == [_summed([v for (day, _), v in ref.items() if day == d]) for d in stats.days]
    if rolled:  # the districts' and the city's medians are the rollup's own rows
        from server.dashboard.rollup import StatsDailyArea

        day = stats.days[-2]
        for row in session.scalars(select(StatsDailyArea).where(StatsDailyArea.day == day)):
            row.ack_median = 1000.0 + row.area_id
        session.commit()
        again = statistics_by_area(session=session, staff=staff, root=None, days=10, now=now,
                                   zone=zone, group="auto")  # fmt: skip
        assert again.totals[-2].ack_median == 1000.0 + world.city.id
        assert {r.area.id: r.ack_median for r in again.rows if r.day == day} == {
            i: 1000.0 + i for i in districts
        }
        assert again.totals[-1].ack_median == stats.totals[-1].ack_median  # today: unchanged
        session.rollback()
        for row in session.scalars(select(StatsDailyArea).where(StatsDailyArea.day == day)):
            session.delete(row)  # rolled up before 0004d: the median over the wards' rows
        session.commit()
        again = statistics_by_area(session=session, staff=staff, root=None, days=10, now=now,
                                   zone=zone, group="auto")  # fmt: skip
        assert [t.ack_median for t in again.totals] == [t[4] for t in totals]
    # a district's own view (and "auto" below the city) is by ward, and equal row by row
    wards = statistics_by_area(session=session, staff=staff, root=world.district, days=10,
                               now=now, zone=zone, group="auto")  # fmt: skip
    assert wards.by == "ward"
    assert {(r.day, r.area.id): (r.monitored, r.due, r.completed, dict(r.alerts), r.ack_median)
            for r in wards.rows} == {(d, w.id): _summed([ref[(d, w.id)]])
                                     for w in districts[world.district.id]
                                     for d in wards.days}  # fmt: skip


def _csv(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.is_streamed
    return list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))


def test_streamed_csv_equals_the_row_by_row_computation_and_the_page_links_districts(
    app, client, session, clock
):
    world, staff, districts = _city(session, clock, seed=7)
    zone, now = app.extensions["isocheck"].settings.zone, clock.now()
    log_in(client, staff)
    live = _csv(client, "/dashboard/stats.csv?days=10")
    assert roll_up(session=session, now=now, zone=zone, budget_s=60) == (31 + 1) * 3  # + today
    rolled = _csv(client, "/dashboard/stats.csv?days=10")
    assert rolled == live
    header, rows = rolled[0], rolled[1:]
    wards = [w for ws in districts.values() for w in ws]
    days = [now.astimezone(zone).date() - timedelta(days=i) for i in range(9, -1, -1)]
    ref = _by_row(session, [w.id for w in wards], days, now, zone)
    expected = []
    for w in wards:  # ward by ward in path order, days ascending
        for d in days:
            m, due, done, kinds, mins = ref[(d, w.id)]
            expected.append([
                d.isoformat(), w.code, w.name, str(m), str(due), str(done),
                str(round(100.0 * done / due, 1)) if due else "",
                *[str(kinds.get(k, 0)) for k in KINDS],
                str(round(median(mins), 1)) if mins else "",
            ])  # fmt: skip
    assert len(header) == len(expected[0]) and rows == expected
    assert sum(int(r[4]) for r in rows) > 40
    # the page: by district, each a link to its wards; a district's page lists its wards
    html = client.get("/dashboard/stats?days=10").get_data(as_text=True)
    assert 'id="by-district"' in html
    assert f"/dashboard/stats?area={world.district.id}&amp;days=10" in html
    assert "Phường 11" not in html.split("<tbody>")[1]
    html = client.get(f"/dashboard/stats?area={world.district.id}&days=10").get_data(as_text=True)
    assert 'id="by-district"' not in html and "Phường 2" in html.split("<tbody>")[1]


# --- today so far: the sweep's snapshot ------------------------------------------------------


def _totals(stats):
    return [(t.day, t.monitored, t.due, t.completed, dict(t.alerts), t.ack_median)
            for t in stats.totals]  # fmt: skip


def test_todays_snapshot_is_read_while_fresh_then_the_day_is_live_again(session, clock):
    from server.dashboard.rollup import FRESH

    world, staff, _ = _city(session, clock, seed=18)
    zone, now = ZoneInfo("Asia/Ho_Chi_Minh"), world.now
    today = now.astimezone(zone).date()

    def view(at):
        return statistics_by_area(session=session, staff=staff, root=None, days=10, now=at,
                                  zone=zone, group="auto")  # fmt: skip

    live = view(now)
    assert live.as_of is None
    roll_up(session=session, now=now, zone=zone, budget_s=60)
    assert session.scalar(select(func.count()).select_from(StatsDaily)
                          .where(StatsDaily.day == today)) == 3  # fmt: skip
    snap = view(now)
    assert snap.as_of == now and _totals(snap) == _totals(live)
    # what is read is the snapshot: a changed row shows, and only on today's line
    row = session.scalars(select(StatsDaily).where(StatsDaily.day == today)).first()
    row.due += 1000
    session.commit()
    later = now + FRESH - timedelta(seconds=1)
    seen = view(later)
    assert seen.as_of == now
    assert seen.totals[-1].due == live.totals[-1].due + 1000
    assert _totals(seen)[:-1] == _totals(live)[:-1]
    # older than FRESH (the scheduler stopped): today is aggregated live again
    stale = view(now + FRESH + timedelta(seconds=1))
    assert stale.as_of is None and stale.totals[-1].due < 1000
    # a ward without a snapshot row (created after the sweep) makes the whole day live
    session.rollback()
    from server.dashboard.rollup import days_to_roll_up

    create_area(session=session, code="79-760-9", name="Phường 12", kind=AreaKind.ward,
                parent=world.district)  # fmt: skip
    session.commit()
    assert view(now).as_of is None
    # … until the next sweep, which rolls every finished day up again with the new ward's row
    assert len(days_to_roll_up(session=session, now=now, zone=zone)) == 31
    then = now + timedelta(minutes=5)
    assert roll_up(session=session, now=then, zone=zone, budget_s=60) == (31 + 1) * 4
    assert days_to_roll_up(session=session, now=then, zone=zone) == []
    again = view(then)
    assert again.as_of == then
    ref = _by_row(session, [w.id for w in again.wards], again.days, then, zone)
    assert [(t.monitored, t.due, t.completed, dict(t.alerts), t.ack_median)
            for t in again.totals] == [
        _summed([v for (day, _), v in ref.items() if day == d]) for d in again.days
    ]  # fmt: skip


def test_yesterdays_snapshot_after_midnight_gives_way_to_the_final_rollup(session, clock):
    from server.dashboard.rollup import CLOSED_AFTER, days_to_roll_up, usable_days

    world, staff, districts = _city(session, clock, seed=19)
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    today = world.now.astimezone(zone).date()
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=zone)
    ward_ids = [w.id for ws in districts.values() for w in ws]
    yesterday = today - timedelta(days=1)
    # 00:30: yesterday's last prompts may still be open, so yesterday is a snapshot too
    early = midnight + timedelta(minutes=30)
    roll_up(session=session, now=early, zone=zone, budget_s=60)
    assert usable_days(session=session, ward_ids=ward_ids, days=[yesterday, today], now=early,
                       zone=zone) == {yesterday: early, today: early}  # fmt: skip
    # 01:05: the day is closed; its snapshot does not hold back the final rollup (REFRESH)
    closed = midnight + CLOSED_AFTER + timedelta(minutes=5)
    assert yesterday in days_to_roll_up(session=session, now=closed, zone=zone)
    roll_up(session=session, now=closed, zone=zone, budget_s=60)
    assert usable_days(session=session, ward_ids=ward_ids, days=[yesterday, today], now=closed,
                       zone=zone) == {yesterday: None, today: closed}  # fmt: skip
    stats = statistics_by_area(session=session, staff=staff, root=None, days=3, now=closed,
                               zone=zone)  # fmt: skip
    assert stats.as_of == closed
    ref = _by_row(session, ward_ids, stats.days, closed, zone)
    assert [
        (t.monitored, t.due, t.completed, dict(t.alerts), t.ack_median) for t in stats.totals
    ] == [_summed([v for (day, _), v in ref.items() if day == d]) for d in stats.days]


def test_the_page_says_when_todays_figures_were_taken(app, client, session, clock):
    world, staff, _ = _city(session, clock, seed=20)
    zone, now = app.extensions["isocheck"].settings.zone, clock.now()
    log_in(client, staff)
    assert 'id="stats-as-of"' not in client.get("/dashboard/stats?days=7").get_data(as_text=True)
    roll_up(session=session, now=now, zone=zone, budget_s=60)
    html = client.get("/dashboard/stats?days=7").get_data(as_text=True)
    assert 'id="stats-as-of"' in html
    assert now.astimezone(zone).strftime("%H:%M") in html.split('id="stats-as-of"')[1][:200]


def test_the_csv_says_when_todays_rows_were_counted(app, client, session, clock):
    # in its file name and a header, not in the file (a spreadsheet would read a line as data)
    world, staff, _ = _city(session, clock, seed=21)
    zone, now = app.extensions["isocheck"].settings.zone, clock.now()
    log_in(client, staff)

    def download():
        r = client.get("/dashboard/stats.csv?days=7")
        assert r.status_code == 200
        r.get_data()
        return r.headers["Content-Disposition"], r.headers["X-Isocheck-As-Of"]

    day = now.astimezone(zone).date().isoformat()
    # today live: counted now
    clock.advance(minutes=2)
    name, as_of = download()
    local = clock.now().astimezone(zone)
    assert name == f'attachment; filename="isocheck-thong-ke-{day}-7d-{local:%Hh%M}.csv"'
    assert datetime.fromisoformat(as_of) == clock.now().replace(microsecond=0)
    assert as_of.endswith("+07:00")
    # a snapshot taken 2 minutes ago: the rows are its, and so is the time
    roll_up(session=session, now=now, zone=zone, budget_s=60)
    name, as_of = download()
    assert name.endswith(f'-7d-{now.astimezone(zone):%Hh%M}.csv"')
    assert datetime.fromisoformat(as_of) == now.replace(microsecond=0)
    # just after midnight: yesterday's 23:58 snapshot still fresh, today live; the file gives
    # the older of the two counts (its rows are at least that fresh), under today's date
    local = now.astimezone(zone)
    late = local.replace(hour=23, minute=58, second=0, microsecond=0)
    clock.set(late)
    roll_up(session=session, now=clock.now(), zone=zone, budget_s=60)
    clock.set(late + timedelta(minutes=5))
    name, as_of = download()
    tomorrow = (local.date() + timedelta(days=1)).isoformat()
    assert name == f'attachment; filename="isocheck-thong-ke-{tomorrow}-7d-23h58.csv"'
    assert datetime.fromisoformat(as_of) == late


# --- migration 0004d ---------------------------------------------------------------------------


def test_migration_0004d_moves_alert_counts_to_columns_and_back(db_url):
    engine = make_engine(db_url)
    migrate.upgrade(db_url, "0004c")
    day, at = date(2026, 12, 1), datetime(2026, 12, 2, 3, 0)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO areas (id, code, name, kind, path, created_at) VALUES "
                          "(3, 'd3', 'D3', 'district', '3/', :at), "
                          "(1, 'w1', 'W1', 'ward', '3/1/', :at), "
                          "(2, 'w2', 'W2', 'ward', '3/2/', :at)"),
                     {"at": at})  # fmt: skip
        for ward, alerts, minutes in (
            (1, {"missed_checkin": 3, "non_reporting": 1}, [1.5, 4.0, 10.25]),
            (2, {}, []),
        ):
            conn.execute(
                text(
                    "INSERT INTO stats_daily (ward_id, day, zone, monitored, due, completed,"
                    " alerts, ack_minutes, computed_at)"
                    " VALUES (:w, :d, 'Asia/Ho_Chi_Minh', 5, 4, 3, :a, :m, :at)"
                ),
                {"w": ward, "d": day, "a": json.dumps(alerts), "m": json.dumps(minutes), "at": at},
            )
    migrate.upgrade(db_url, "0004d")
    with engine.connect() as conn:
        got = conn.execute(text(
            "SELECT ward_id, alerts_missed_checkin, alerts_failed_verification,"
            " alerts_outside_home, alerts_severe_symptoms, alerts_high_risk,"
            " alerts_non_reporting, ack_median "
            "FROM stats_daily ORDER BY ward_id"
        )).all()  # fmt: skip
    columns = {c["name"] for c in inspect(engine).get_columns("stats_daily")}
    assert [tuple(r) for r in got] == [(1, 3, 0, 0, 0, 0, 1, 4.0), (2, 0, 0, 0, 0, 0, 0, None)]
    assert "alerts" not in columns and "ack_minutes" in columns
    with engine.connect() as conn:  # the model sums the columns
        assert conn.execute(select(func.sum(StatsDaily.alerts_missed_checkin))).scalar() == 3
        district = conn.execute(text("SELECT area_id, day, acknowledged, ack_median"
                                     " FROM stats_daily_areas")).all()  # fmt: skip
    [(area_id, on, acknowledged, median_minutes)] = district
    assert (area_id, str(on), acknowledged, median_minutes) == (3, "2026-12-01", 3, 4.0)
    migrate.downgrade(db_url, "0004c")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT ward_id, alerts FROM stats_daily ORDER BY ward_id")).all()
    decoded = [(w, json.loads(a) if isinstance(a, str) else a) for w, a in back]
    assert decoded == [(1, {"missed_checkin": 3, "non_reporting": 1}), (2, {})]
    migrate.upgrade(db_url)
    engine.dispose()
