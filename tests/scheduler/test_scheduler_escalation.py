"""Escalation ward → district → city with each level's deadline; repeats at the top;
acknowledgement stops the chain; acting on alerts is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scheduler_helpers import World, notifications, tick
from sqlalchemy import select

from server.alerts.models import Alert
from server.alerts.service import (
    AlertScopeError,
    AlertStateError,
    acknowledge_alert,
    raise_alert,
    resolve_alert,
)
from server.core.audit import AuditEvent
from server.core.clock import FrozenClock
from server.core.enums import AlertKind, AlertState
from server.notify.models import Notification

T0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def _recipients(session, alert_id):
    return sorted(
        (n.recipient, n.payload["data"]["level"])
        for n in notifications(session, Notification.alert_id == alert_id)
    )


def test_chain_ward_district_city_with_each_levels_deadline(session_factory, settings):
    clock = FrozenClock(T0)
    with session_factory() as s:
        world = World(s)
        world.ward.escalation_policy = {"missed_checkin": 15}
        world.district.escalation_policy = {"missed_checkin": 45, "notify": {"staff": [
            {"roles": ["area_staff"], "kinds": "*", "channels": ["email"]}]}}
        world.city.escalation_policy = {"missed_checkin": 20}
        person = world.person(start=T0 - timedelta(days=1), end=T0 + timedelta(days=5))
        alert, created = raise_alert(session=s, person=person, kind=AlertKind.missed_checkin,
                                     now=T0, dedupe_key="test:1")
        again, created_again = raise_alert(session=s, person=person,
                                           kind=AlertKind.missed_checkin, now=T0,
                                           dedupe_key="test:1")
        s.commit()
        assert created and not created_again and again.id == alert.id
        assert alert.next_escalation_at == T0 + timedelta(minutes=15)  # the ward's own
        assert _recipients(s, alert.id) == [("w@example.invalid", "0")]

    def state():
        with session_factory() as s:
            a = s.get(Alert, alert.id)
            return a.escalation_level, a.next_escalation_at, _recipients(s, alert.id)

    clock.set(T0 + timedelta(minutes=14))
    tick(session_factory, clock, settings, ["escalate_alerts"])
    assert state()[0] == 0
    clock.set(T0 + timedelta(minutes=15))
    tick(session_factory, clock, settings, ["escalate_alerts"])
    level, deadline, who = state()
    assert level == 1 and deadline == clock.now() + timedelta(minutes=45)  # the district's
    assert ("d@example.invalid", "1") in who
    tick(session_factory, clock, settings, ["escalate_alerts"])  # nothing doubles
    assert state()[2] == who

    clock.set(T0 + timedelta(minutes=60))
    tick(session_factory, clock, settings, ["escalate_alerts"])
    level, deadline, who = state()
    assert level == 2 and deadline == clock.now() + timedelta(minutes=20)  # the city's
    assert ("c@example.invalid", "2") in who and len(who) == 3

    # at the top: the city is told again, at doubling intervals, until someone acknowledges
    clock.set(T0 + timedelta(minutes=80))
    tick(session_factory, clock, settings, ["escalate_alerts"])
    level, deadline, who = state()
    assert level == 2 and deadline == clock.now() + timedelta(minutes=40)
    assert len(who) == 4 and who.count(("c@example.invalid", "2")) == 2
    clock.set(deadline)
    tick(session_factory, clock, settings, ["escalate_alerts"])
    assert state()[1] == clock.now() + timedelta(minutes=80)

    with session_factory() as s:
        city_staff = s.get(type(world.staff[world.city.kind]), world.staff[world.city.kind].id)
        acknowledge_alert(session=s, alert_id=alert.id, staff=city_staff, now=clock.now(),
                          note="gọi điện cho người bệnh")
        s.commit()
    clock.advance(hours=5)
    tick(session_factory, clock, settings, ["escalate_alerts"])
    with session_factory() as s:
        a = s.get(Alert, alert.id)
        assert a.state is AlertState.acknowledged and a.next_escalation_at is None
        assert len(_recipients(s, alert.id)) == 5
        actions = [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.target_kind == "alert", AuditEvent.target_id == alert.id))]
        assert actions.count("alert.escalate") == 4 and "alert.acknowledge" in actions


def test_severe_symptoms_have_ten_minutes(session_factory, settings):
    with session_factory() as s:
        world = World(s)
        person = world.person(start=T0 - timedelta(days=1), end=T0 + timedelta(days=5))
        alert, _ = raise_alert(session=s, person=person, kind=AlertKind.severe_symptoms,
                               now=T0, dedupe_key="sev:1")
        s.commit()
        assert alert.severity == 4 and alert.next_escalation_at == T0 + timedelta(minutes=10)


def test_acknowledge_and_resolve_are_cas_scoped_and_audited(session_factory, settings):
    with session_factory() as s:
        world = World(s)
        other = World(s, prefix="o")
        person = world.person(start=T0 - timedelta(days=1), end=T0 + timedelta(days=5))
        alert, _ = raise_alert(session=s, person=person, kind=AlertKind.outside_home,
                               now=T0, dedupe_key="oh:1")
        s.commit()
        ward_staff = world.staff[world.ward.kind]
        with pytest.raises(AlertScopeError):
            acknowledge_alert(session=s, alert_id=alert.id, staff=other.staff[other.city.kind],
                              now=T0)
        acknowledge_alert(session=s, alert_id=alert.id, staff=ward_staff, now=T0)
        with pytest.raises(AlertStateError) as exc:
            acknowledge_alert(session=s, alert_id=alert.id, staff=ward_staff, now=T0)
        assert exc.value.code == "alert_acknowledged"
        with pytest.raises(AlertStateError):
            resolve_alert(session=s, alert_id=alert.id, staff=ward_staff, now=T0, note=" ")
        resolved = resolve_alert(session=s, alert_id=alert.id, staff=ward_staff,
                                 now=T0 + timedelta(minutes=5), note="đã xác minh tại nhà")
        s.commit()
        assert resolved.state is AlertState.resolved and resolved.resolved_by_id == ward_staff.id
        events = s.scalars(select(AuditEvent.action).where(AuditEvent.target_id == alert.id,
                                                           AuditEvent.target_kind == "alert"))
        assert list(events) == ["alert.acknowledge", "alert.resolve"]
