"""Issue 18: what keeps the dashboard and the phone API fast when the tables are large, checked
for behaviour (the same answers) and for the number of statements (constant, not per row)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from server.core.enums import AttemptDecision, PromptState
from server.core.security import token_digest
from tests.minimal_world import MiniWorld


class StatementCounter:
    def __init__(self, engine) -> None:
        self.engine, self.count = engine, 0

    def _count(self, *_args) -> None:
        self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


def _phone(world: MiniWorld, person) -> dict[str, str]:
    device = world.device(person)
    device.token_hash = token_digest(f"history-token-{person.id}")
    world.session.commit()
    return {"Authorization": f"Bearer history-token-{person.id}"}


def _history(client, engine, headers) -> tuple[list[dict], int]:
    with StatementCounter(engine) as counter:
        r = client.get("/api/v1/me/history?limit=200", headers=headers)
    assert r.status_code == 200
    return r.get_json()["items"], counter.count


def test_phone_history_statements_do_not_grow_with_prompts(app, client, session, clock):
    world = MiniWorld(session, clock.now())
    engine = app.extensions["isocheck"].engine
    few, many = world.person(), world.person()
    for person, n in ((few, 2), (many, 12)):
        for k in range(n):
            opens = world.now - timedelta(hours=8 * (k + 1))
            due = opens + timedelta(hours=2)
            prompt = world.prompt(person, state=PromptState.completed, opens_at=opens, due_at=due)
            # two attempts: a quality refusal, then the verified one; the history shows the last
            world.attempt(prompt, decision=AttemptDecision.rejected, code="too_dark",
                          received_at=opens + timedelta(minutes=5))  # fmt: skip
            if k % 3:
                world.attempt(prompt, decision=AttemptDecision.verified, code="face_match",
                              received_at=opens + timedelta(minutes=9))  # fmt: skip
    unanswered = world.prompt(many, state=PromptState.missed,
                              opens_at=world.now - timedelta(minutes=30))  # fmt: skip
    few_items, few_count = _history(client, engine, _phone(world, few))
    many_items, many_count = _history(client, engine, _phone(world, many))
    assert len(few_items) == 2 and len(many_items) == 13
    assert many_count == few_count  # one statement for every prompt's last attempt, not one each
    by_id = {i["prompt_id"]: i for i in many_items}
    assert by_id[unanswered.id]["last_result"] is None and by_id[unanswered.id]["last_code"] is None
    answered = [i for i in many_items if i["prompt_id"] != unanswered.id]
    results = [(i["last_result"], i["last_code"]) for i in answered]
    # newest first: k = 0 (one refusal only), k = 1, 2 (verified after the refusal), k = 3 …
    assert results[:4] == [("rejected", "too_dark"), ("verified", "face_match"),
                           ("verified", "face_match"), ("rejected", "too_dark")]  # fmt: skip


# --- statistics aggregated in SQL ----------------------------------------------------------


def _reference_stats(session, wards, day_list, now, zone):
    """The statistics computed row by row in Python (what statistics_by_area did before, with
    issue 19's rule: a prompt counts as due once its due time passed or once it is decided)."""
    from collections import Counter
    from statistics import median

    from sqlalchemy import select

    from server.alerts.models import Alert
    from server.checkins.models import CheckinPrompt
    from server.people.models import Person

    ids = {w.id for w in wards}
    out = {(d, w): [0, 0, 0, Counter(), []] for w in ids for d in day_list}
    for p in session.scalars(select(Person)):
        for d in day_list:
            if p.ward_id in ids and p.isolation_start.astimezone(zone).date() <= d <= (
                p.isolation_end.astimezone(zone).date()
            ):
                out[(d, p.ward_id)][0] += 1
    for pr, ward_id in session.execute(
        select(CheckinPrompt, Person.ward_id).join(Person, Person.id == CheckinPrompt.person_id)
    ):
        d = pr.due_at.astimezone(zone).date()
        counted = pr.state not in (PromptState.cancelled, PromptState.missed_system) and (
            pr.due_at <= now
            or pr.state in (PromptState.completed, PromptState.failed, PromptState.missed)
        )
        if counted and (d, ward_id) in out:
            out[(d, ward_id)][1] += 1
            out[(d, ward_id)][2] += pr.state is PromptState.completed
    for a in session.scalars(select(Alert)):
        d = a.created_at.astimezone(zone).date()
        if (d, a.area_id) in out:
            out[(d, a.area_id)][3][a.kind.value] += 1
            if a.acknowledged_at:
                minutes = (a.acknowledged_at - a.created_at).total_seconds() / 60
                out[(d, a.area_id)][4].append(minutes)
    return {
        k: (m, due, done, dict(kinds), round(median(mins), 1) if mins else None)
        for k, (m, due, done, kinds, mins) in out.items()
    }


def test_statistics_in_sql_equal_the_row_by_row_count(session, clock):
    import random
    from zoneinfo import ZoneInfo

    from server.alerts.models import Alert
    from server.core.enums import AlertKind, AlertState
    from server.dashboard.statistics import statistics_by_area

    world = MiniWorld(session, clock.now())
    district_staff = world._staff("district-staff", world.district)
    rng = random.Random(18)
    zone = ZoneInfo("Europe/Berlin")  # a daylight-saving zone: days of 23 and 25 hours
    now = world.now
    people = []
    for i in range(8):
        p = world.person()
        p.ward_id = (world.ward, world.other_ward)[i % 2].id
        p.isolation_start = now - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23))
        p.isolation_end = p.isolation_start + timedelta(days=rng.randint(1, 14))
        people.append(p)
    session.commit()
    states = list(PromptState)
    for p in people:
        for _ in range(30):
            opens = now - timedelta(minutes=rng.randint(-600, 60 * 24 * 9))
            world.prompt(p, state=rng.choice(states), opens_at=opens,
                         due_at=opens + timedelta(minutes=rng.randint(10, 200)))  # fmt: skip
        for k in range(6):
            created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 9))
            acked = created + timedelta(minutes=rng.randint(1, 300)) if k % 3 else None
            session.add(Alert(
                person_id=p.id, area_id=p.ward_id, kind=rng.choice(list(AlertKind)), severity=2,
                state=AlertState.acknowledged if acked else AlertState.open,
                dedupe_key=f"stats:{p.id}:{k}", created_at=created, acknowledged_at=acked,
            ))  # fmt: skip
    session.commit()
    stats = statistics_by_area(session=session, staff=district_staff, root=None, days=7,
                               now=now, zone=zone)  # fmt: skip
    reference = _reference_stats(session, stats.wards, stats.days, now, zone)
    got = {
        (r.day, r.area.id): (r.monitored, r.due, r.completed, dict(r.alerts), r.ack_median)
        for r in stats.rows
    }
    assert got == reference
    assert sum(v[1] for v in got.values()) > 20 and sum(v[0] for v in got.values()) > 8
    for t in stats.totals:  # a day's total is the sum over the wards
        day_rows = [v for (d, _), v in got.items() if d == t.day]
        assert t.monitored == sum(v[0] for v in day_rows)
        assert (t.due, t.completed) == (sum(v[1] for v in day_rows), sum(v[2] for v in day_rows))
        for kind in AlertKind:
            assert t.alerts.get(kind.value, 0) == sum(v[3].get(kind.value, 0) for v in day_rows)


def _random_stats_world(session, clock, seed: int = 18):
    import random

    from server.alerts.models import Alert
    from server.core.enums import AlertKind, AlertState

    world = MiniWorld(session, clock.now())
    staff = world._staff("district-staff", world.district)
    rng = random.Random(seed)
    now = world.now
    people = []
    for i in range(8):
        p = world.person()
        p.ward_id = (world.ward, world.other_ward)[i % 2].id
        p.isolation_start = now - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23))
        p.isolation_end = p.isolation_start + timedelta(days=rng.randint(1, 14))
        people.append(p)
    session.commit()
    for p in people:
        for _ in range(30):
            opens = now - timedelta(minutes=rng.randint(-600, 60 * 24 * 9))
            world.prompt(p, state=rng.choice(list(PromptState)), opens_at=opens,
                         due_at=opens + timedelta(minutes=rng.randint(10, 200)))  # fmt: skip
        for k in range(6):
            created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 9))
            acked = created + timedelta(minutes=rng.randint(1, 300)) if k % 3 else None
            session.add(Alert(
                person_id=p.id, area_id=p.ward_id, kind=rng.choice(list(AlertKind)), severity=2,
                state=AlertState.acknowledged if acked else AlertState.open,
                dedupe_key=f"stats:{p.id}:{k}", created_at=created, acknowledged_at=acked,
            ))  # fmt: skip
    session.commit()
    return world, staff


def _stats_snapshot(stats):
    rows = [(r.day, r.area.id, r.monitored, r.due, r.completed, dict(r.alerts), r.ack_median)
            for r in stats.rows]  # fmt: skip
    totals = [(t.day, t.monitored, t.due, t.completed, dict(t.alerts), t.ack_median)
              for t in stats.totals]  # fmt: skip
    return rows, totals


def test_statistics_from_the_daily_rollup_equal_the_live_ones(session, clock):
    from zoneinfo import ZoneInfo

    from sqlalchemy import func, select

    from server.dashboard.rollup import StatsDaily, days_to_roll_up
    from server.dashboard.scheduled import roll_up
    from server.dashboard.statistics import statistics_by_area

    world, staff = _random_stats_world(session, clock)
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    now = world.now
    live = statistics_by_area(session=session, staff=staff, root=None, days=10, now=now,
                              zone=zone)  # fmt: skip
    assert len(days_to_roll_up(session=session, now=now, zone=zone)) == 31
    written = roll_up(session=session, now=now, zone=zone, budget_s=60)
    assert written == (31 + 1) * 2  # every finished day of the last 31 and today, both wards
    assert days_to_roll_up(session=session, now=now, zone=zone) == []  # nothing until REFRESH
    rolled = statistics_by_area(session=session, staff=staff, root=None, days=10, now=now,
                                zone=zone)  # fmt: skip
    assert _stats_snapshot(rolled) == _stats_snapshot(live)
    # the rollup is what is read: a changed rollup row shows (only that day)
    yesterday = rolled.days[-2]
    row = session.scalars(select(StatsDaily).where(StatsDaily.day == yesterday)).first()
    row.due += 1000
    session.commit()
    again = statistics_by_area(session=session, staff=staff, root=None, days=10, now=now,
                               zone=zone)  # fmt: skip
    assert again.totals[-2].due == live.totals[-2].due + 1000
    assert again.totals[-1].due == live.totals[-1].due
    # a rollup for another zone is not used
    other = statistics_by_area(session=session, staff=staff, root=None, days=10, now=now,
                               zone=ZoneInfo("Europe/Berlin"))  # fmt: skip
    assert session.scalar(select(func.count()).select_from(StatsDaily)) == 64
    assert all(t.due < 1000 for t in other.totals)
    # a day still settling is recomputed after REFRESH, a settled one is not
    later = now + timedelta(hours=2)
    assert days_to_roll_up(session=session, now=later, zone=zone) == rolled.days[-3:-1]


# --- keyset pagination -----------------------------------------------------------------------


def test_keyset_pages_return_the_same_rows_as_offset_pages(session, clock):
    import random

    from server.core.enums import RiskLevel
    from server.dashboard.service import person_list

    world = MiniWorld(session, clock.now())
    rng = random.Random(7)
    names = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em"]
    for _ in range(57):
        p = world.person()
        p.full_name = rng.choice(names)  # many ties: the id decides
        p.risk_level = rng.choice(list(RiskLevel))
        p.is_high_risk = rng.random() < 0.3
        p.isolation_end = world.now + timedelta(days=rng.randint(1, 4))
    session.commit()
    for sort in ("risk", "name", "end"):
        everything = [p.id for p, _ in person_list(session=session, staff=world.staff, sort=sort,
                                                     limit=1000)]  # fmt: skip
        assert len(everything) == 57
        by_offset, by_keyset, after = [], [], None
        for page in range(6):
            by_offset += [p.id for p, _ in person_list(session=session, staff=world.staff,
                                                        sort=sort, limit=10, offset=page * 10)]
            rows = person_list(session=session, staff=world.staff, sort=sort, limit=10,
                               after=after)  # fmt: skip
            by_keyset += [p.id for p, _ in rows]
            after = rows[-1][0] if rows else after
        assert by_keyset == by_offset == everything, sort
    # the order itself: risk first (red → green), high-risk first, then the name
    from server.people.models import Person

    risk = [p.id for p, _ in person_list(session=session, staff=world.staff, limit=1000)]
    people = [session.get(Person, i) for i in risk]
    keys = [(-{"red": 4, "orange": 3, "yellow": 2, "green": 1}[p.risk_level.value],
             not p.is_high_risk, p.full_name, p.id) for p in people]  # fmt: skip
    expected = sorted(zip(keys, people, strict=True), key=lambda t: t[0])
    assert [p.id for p in people] == [p.id for _, p in expected]



# --- bounded growth -------------------------------------------------------------------------


def test_retention_sweep_trims_only_old_delivered_outbox_rows_and_archives_old_audit(session,
                                                                                      clock):
    from sqlalchemy import select

    from server.core.audit import AuditArchive, AuditEvent
    from server.core.enums import NotificationState
    from server.flows import retention
    from server.notify.models import Notification

    now = clock.now()
    old, recent = now - timedelta(days=40), now - timedelta(days=5)

    def outbox(key: str, state: NotificationState, sent_at, created):
        session.add(Notification(channel="log", recipient="x", payload={}, idempotency_key=key,
                                 state=state, attempts=1, next_attempt_at=created,
                                 created_at=created, sent_at=sent_at))  # fmt: skip

    outbox("old-sent", NotificationState.sent, old, old)
    outbox("recent-sent", NotificationState.sent, recent, recent)
    outbox("old-pending", NotificationState.pending, None, old)  # not delivered: kept
    outbox("old-dead", NotificationState.dead, None, old)  # an operator may requeue it: kept
    for at, action in ((now - timedelta(days=400), "old.one"), (now - timedelta(days=10), "new")):
        session.add(AuditEvent(at=at, actor_kind="system", action=action, target_kind="person",
                               target_id=1, details={"k": 1}))  # fmt: skip
    session.commit()
    old_event = session.scalar(select(AuditEvent).where(AuditEvent.action == "old.one"))
    moved = retention.sweep(session=session, now=now, outbox_days=30, audit_days=365, limit=1)
    assert moved == 2
    keys = set(session.scalars(select(Notification.idempotency_key)))
    assert keys == {"recent-sent", "old-pending", "old-dead"}
    [archived] = session.scalars(select(AuditArchive)).all()
    assert (archived.id, archived.action, archived.details) == (old_event.id, "old.one", {"k": 1})
    assert archived.archived_at == now
    actions = sorted(session.scalars(select(AuditEvent.action)))
    assert actions == ["new", "retention.sweep"]
    run = session.scalar(select(AuditEvent).where(AuditEvent.action == "retention.sweep"))
    assert run.details["outbox_deleted"] == 1 and run.details["audit_archived"] == 1
    # nothing more to do: nothing moved, no second audit event; 0 days keeps everything
    assert retention.sweep(session=session, now=now, outbox_days=30, audit_days=365, limit=10) == 0
    later = now + timedelta(days=60)
    assert retention.sweep(session=session, now=later, outbox_days=0, audit_days=0, limit=10) == 0
    assert len(session.scalars(select(AuditEvent)).all()) == 2


def test_statistics_csv_is_streamed(app, client, session, clock):
    from tests.dashboard.world import log_in

    world = MiniWorld(session, clock.now())
    log_in(client, world.staff)
    r = client.get("/dashboard/stats.csv?days=3")
    assert r.status_code == 200 and r.is_streamed
    lines = r.get_data().decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 1 + 3 and lines[1].split(",")[1] == world.ward.code
