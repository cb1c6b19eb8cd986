"""Escalation at its edges (issue 20: ``bench/mutation.py escalation``): each level's deadline
with the policy's limits, which alerts a batch takes (due, open, oldest first, at most
``limit``), a ward with no parent, the repeats at the top with their cap, and the audit event.
``escalate_batch`` is called directly on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scheduler_helpers import World
from sqlalchemy import select

from server.alerts.escalation import MAX_REPEAT, escalate_batch
from server.alerts.models import Alert
from server.alerts.service import ALERT_POLICY, MAX_DEADLINE_MINUTES, deadline_minutes, raise_alert
from server.core.audit import AuditEvent
from server.core.enums import AlertKind, AlertState, AreaKind
from server.people.models import Area, Person

T0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
MISSED = AlertKind.missed_checkin


def areas(*policies) -> list[Area]:
    return [Area(code=f"A{i}", name="x", kind=AreaKind.ward, escalation_policy=p)
            for i, p in enumerate(policies)]  # fmt: skip


@pytest.mark.parametrize("kind", list(AlertKind), ids=str)
def test_without_a_policy_each_kind_has_its_default_deadline(kind):
    assert deadline_minutes(kind, []) == ALERT_POLICY[kind][1]
    assert deadline_minutes(kind, areas(None, {}, {"notify": {}})) == ALERT_POLICY[kind][1]


def test_the_nearest_area_that_sets_a_deadline_wins():
    # chain: the top (city) first, the ward last
    assert deadline_minutes(MISSED, areas({"missed_checkin": 20}, {"missed_checkin": 45},
                                          None)) == 45  # fmt: skip
    assert deadline_minutes(MISSED, areas({"missed_checkin": 20}, None, None)) == 20
    assert deadline_minutes(MISSED, areas({"missed_checkin": 20}, {"missed_checkin": 45},
                                          {"missed_checkin": 15})) == 15  # fmt: skip
    # another kind's deadline is not this kind's
    assert deadline_minutes(MISSED, areas({"outside_home": 5})) == ALERT_POLICY[MISSED][1]


@pytest.mark.parametrize("value,minutes", [
    (1, 1), (MAX_DEADLINE_MINUTES, MAX_DEADLINE_MINUTES), (12.7, 12),
    (0, None), (0.5, None), (-5, None), (MAX_DEADLINE_MINUTES + 1, None), ("30", None),
    (None, None), ([30], None),
])
def test_a_deadline_outside_its_limits_is_ignored(value, minutes):
    expected = ALERT_POLICY[MISSED][1] if minutes is None else minutes
    assert deadline_minutes(MISSED, areas({"missed_checkin": value})) == expected
    # an invalid nearer value leaves the farther valid one
    assert deadline_minutes(MISSED, areas({"missed_checkin": 25}, {"missed_checkin": value})) == (
        25 if minutes is None else minutes)


def _alert(s, person, key, now, kind=MISSED) -> Alert:
    alert, created = raise_alert(session=s, person=person, kind=kind, now=now, dedupe_key=key)
    assert created
    s.commit()
    return alert


def _people(s, world, n) -> list[Person]:
    return [world.person(start=T0 - timedelta(days=1), end=T0 + timedelta(days=5),
                         name=f"Người {i}") for i in range(n)]  # fmt: skip


def test_a_batch_takes_due_open_alerts_oldest_deadline_first_up_to_its_limit(session):
    world = World(session)
    world.ward.escalation_policy = {"missed_checkin": 10}
    session.commit()
    people = _people(session, world, 5)
    # deadlines T0+10 .. T0+14: raised a minute apart, the last one not due at T0+13
    alerts = [_alert(session, p, f"k{i}", T0 + timedelta(minutes=i)) for i, p in enumerate(people)]
    acked = alerts[1]
    acked.state = AlertState.acknowledged
    session.commit()
    now = T0 + timedelta(minutes=13)  # alerts 0..3 due (3 exactly at its deadline), 4 not
    assert escalate_batch(session=session, now=now, limit=2) == 2
    session.commit()
    session.expire_all()
    levels = [session.get(Alert, a.id).escalation_level for a in alerts]
    assert levels == [1, 0, 1, 0, 0]  # the two oldest open ones; the acknowledged one skipped
    assert escalate_batch(session=session, now=now, limit=10) == 1  # alert 3, due exactly now
    session.commit()
    session.expire_all()
    assert [session.get(Alert, a.id).escalation_level for a in alerts] == [1, 0, 1, 1, 0]
    assert escalate_batch(session=session, now=now, limit=10) == 0


def test_each_step_is_audited_with_its_levels_and_next_deadline(session):
    world = World(session)
    world.district.escalation_policy = {"missed_checkin": 45}
    world.city.escalation_policy = {"missed_checkin": 20}
    session.commit()
    [person] = _people(session, world, 1)
    alert = _alert(session, person, "audit", T0)
    now = alert.next_escalation_at
    assert escalate_batch(session=session, now=now, limit=10) == 1
    session.commit()
    a = session.get(Alert, alert.id)
    assert (a.escalation_level, a.next_escalation_at) == (1, now + timedelta(minutes=45))
    [event] = session.scalars(select(AuditEvent).where(
        AuditEvent.action == "alert.escalate", AuditEvent.target_id == alert.id)).all()
    assert (event.actor_kind, event.target_kind, event.area_id, event.at) == (
        "system", "alert", world.ward.id, now)
    assert event.details == {"from_level": 0, "to_level": 1, "repeat": False,
                             "next_in_minutes": 45.0}
    assert not (a.details or {}).get("top_repeats")


def test_at_the_top_the_city_is_told_again_at_doubling_intervals_capped(session):
    world = World(session)
    world.city.escalation_policy = {"missed_checkin": 500}
    world.district.escalation_policy = {"missed_checkin": 5}
    world.ward.escalation_policy = {"missed_checkin": 5}
    session.commit()
    [person] = _people(session, world, 1)
    alert = _alert(session, person, "top", T0)

    def step():
        now = session.get(Alert, alert.id).next_escalation_at
        assert escalate_batch(session=session, now=now, limit=10) == 1
        session.commit()
        session.expire_all()
        a = session.get(Alert, alert.id)
        return now, a

    step()  # → district
    now, a = step()  # → city: the city's own deadline
    assert (a.escalation_level, a.next_escalation_at) == (2, now + timedelta(minutes=500))
    now, a = step()  # first repeat: 500 × 2
    assert a.escalation_level == 2 and a.details["top_repeats"] == 1
    assert a.next_escalation_at == now + timedelta(minutes=1000)
    now, a = step()  # second repeat: 500 × 4 = 2000 min, capped at 24 h
    assert a.details["top_repeats"] == 2
    assert a.next_escalation_at == now + MAX_REPEAT
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.action == "alert.escalate", AuditEvent.target_id == alert.id)
        .order_by(AuditEvent.id)).all()
    assert [e.details for e in events[2:]] == [
        {"from_level": 2, "to_level": 2, "repeat": True, "next_in_minutes": 1000.0},
        {"from_level": 2, "to_level": 2, "repeat": True, "next_in_minutes": 1440.0},
    ]


def test_a_ward_without_parents_is_its_own_top(session):
    ward = Area(code="LONE", name="Lone ward", kind=AreaKind.ward,
                escalation_policy={"missed_checkin": 30})  # fmt: skip
    session.add(ward)
    session.flush()
    ward.path = f"{ward.id}/"
    person = Person(full_name="A", phone="0900000000", ward_id=ward.id, home_address="x",
                    home_lat=10.8, home_lon=106.7, isolation_start=T0 - timedelta(days=1),
                    isolation_end=T0 + timedelta(days=5), risk_factors={})  # fmt: skip
    session.add(person)
    session.commit()
    alert = _alert(session, person, "lone", T0)
    now = alert.next_escalation_at
    assert escalate_batch(session=session, now=now, limit=10) == 1
    session.commit()
    session.expire_all()
    a = session.get(Alert, alert.id)
    assert a.escalation_level == 0 and a.details == {"top_repeats": 1}
    assert a.next_escalation_at == now + timedelta(minutes=60)


def test_a_repeat_keeps_the_alerts_other_details(session):
    world = World(session)
    world.city.escalation_policy = {"missed_checkin": 30}
    session.commit()
    [person] = _people(session, world, 1)
    alert, _ = raise_alert(session=session, person=person, kind=MISSED, now=T0,
                           dedupe_key="d", details={"slot": "morning"})  # fmt: skip
    alert.escalation_level = 2
    session.commit()
    now = alert.next_escalation_at
    assert escalate_batch(session=session, now=now, limit=10) == 1
    session.commit()
    session.expire_all()
    assert session.get(Alert, alert.id).details == {"slot": "morning", "top_repeats": 1}


def test_the_earliest_deadline_goes_first_whatever_the_order_alerts_were_raised(session):
    """Raised first with a later deadline (a kind with a longer wait): the batch of one takes
    the alert raised second, whose deadline is earlier."""
    world = World(session)
    world.ward.escalation_policy = {"missed_checkin": 60, "outside_home": 5}
    session.commit()
    first, second = _people(session, world, 2)
    late = _alert(session, first, "late", T0)  # due T0+60
    early = _alert(session, second, "early", T0, kind=AlertKind.outside_home)  # due T0+5
    assert late.id < early.id
    now = T0 + timedelta(minutes=61)
    assert escalate_batch(session=session, now=now, limit=1) == 1
    session.commit()
    session.expire_all()
    assert (session.get(Alert, late.id).escalation_level,
            session.get(Alert, early.id).escalation_level) == (0, 1)  # fmt: skip


def test_the_third_repeat_waits_eight_times_the_deadline(session):
    world = World(session)
    world.city.escalation_policy = {"missed_checkin": 60}
    session.commit()
    [person] = _people(session, world, 1)
    alert = _alert(session, person, "third", T0)
    alert.escalation_level = 2
    session.commit()
    waits = []
    for _ in range(3):
        now = session.get(Alert, alert.id).next_escalation_at
        assert escalate_batch(session=session, now=now, limit=10) == 1
        session.commit()
        session.expire_all()
        waits.append(session.get(Alert, alert.id).next_escalation_at - now)
    assert waits == [timedelta(minutes=m) for m in (120, 240, 480)]


def test_the_swap_moves_only_its_own_alert(session):
    """Two alerts of one ward with the same level and deadline, a batch of one: one moves, the
    other is left exactly as it was (the swap is keyed by the alert's id)."""
    world = World(session)
    first, second = _people(session, world, 2)
    a, b = _alert(session, first, "a", T0), _alert(session, second, "b", T0)
    assert a.next_escalation_at == b.next_escalation_at
    assert escalate_batch(session=session, now=a.next_escalation_at, limit=1) == 1
    session.commit()
    session.expire_all()
    assert sorted(session.get(Alert, x.id).escalation_level for x in (a, b)) == [0, 1]


def _meanwhile(session, sql: str):
    """Run ``sql`` on the session's connection just before escalation's swap (the first UPDATE
    of ``alerts``): what another scheduler or a staff member committing in between does."""
    from sqlalchemy import event

    conn = session.connection()
    done = []

    def before(conn_, cursor, statement, params, context, executemany):
        if not done and statement.lstrip().upper().startswith("UPDATE ALERTS"):
            done.append(True)
            cursor.execute(sql)

    event.listen(conn, "before_cursor_execute", before)
    return lambda: event.remove(conn, "before_cursor_execute", before)


@pytest.mark.parametrize("change,expected", [
    ("state = 'acknowledged'", (AlertState.acknowledged, 0)),
    ("escalation_level = 1", (AlertState.open, 1)),
    ("next_escalation_at = NULL", (AlertState.open, 0)),  # its deadline moved
])
def test_an_alert_changed_between_the_pick_and_the_swap_is_left_alone(session, change,
                                                                      expected):
    """Acknowledged, or escalated by another scheduler, after this batch picked it: the swap
    (state open, the level it read) refuses, nothing is told, nothing is audited."""
    world = World(session)
    [person] = _people(session, world, 1)
    alert = _alert(session, person, "meanwhile", T0)
    deadline = alert.next_escalation_at
    stop = _meanwhile(session, f"UPDATE alerts SET {change} WHERE id = {alert.id}")
    try:
        assert escalate_batch(session=session, now=deadline, limit=10) == 0
    finally:
        stop()
    session.commit()
    session.expire_all()
    a = session.get(Alert, alert.id)
    assert (a.state, a.escalation_level) == expected
    assert a.next_escalation_at == (None if "NULL" in change else deadline)
    assert session.scalars(select(AuditEvent).where(
        AuditEvent.action == "alert.escalate", AuditEvent.target_id == alert.id)).all() == []


def test_a_lost_swap_does_not_end_the_batch(session):
    world = World(session)
    first, second = _people(session, world, 2)
    a = _alert(session, first, "lost", T0)
    b = _alert(session, second, "next", T0 + timedelta(minutes=1))
    stop = _meanwhile(session, f"UPDATE alerts SET state = 'acknowledged' WHERE id = {a.id}")
    try:
        assert escalate_batch(session=session, now=b.next_escalation_at, limit=10) == 1
    finally:
        stop()
    session.commit()
    session.expire_all()
    assert session.get(Alert, b.id).escalation_level == 1


def test_the_messages_of_a_step_and_of_a_repeat_are_written_now(session):
    from server.notify.models import Notification

    world = World(session)
    world.city.escalation_policy = {"missed_checkin": 30}
    session.commit()
    [person] = _people(session, world, 1)
    alert = _alert(session, person, "msg", T0)
    alert.escalation_level = 1
    session.commit()
    for _ in range(2):  # → city, then a repeat at the city
        now = session.get(Alert, alert.id).next_escalation_at
        before = {n.id for n in session.scalars(select(Notification))}
        assert escalate_batch(session=session, now=now, limit=10) == 1
        session.commit()
        new = [n for n in session.scalars(select(Notification)) if n.id not in before]
        assert new and all(n.created_at == now and n.next_attempt_at == now for n in new)
        session.expire_all()
