"""Who is told what: alerts by escalation level and area routing; persons by device."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notify_helpers import make_person

from server.alerts.service import raise_alert
from server.core.enums import AlertKind, StaffRole
from server.notify.alerts import notify_alert
from server.notify.models import Notification
from server.notify.routing import (
    DEFAULT_ROUTING,
    notify_person,
    routing_for,
    set_area_routing,
    validate_routing,
)
from server.people.models import Device, StaffUser


def _alert(session, world, clock, kind=AlertKind.missed_checkin, key="a1", level=0):
    alert, _ = raise_alert(
        session=session, person=world.person, kind=kind, now=clock.now(), dedupe_key=key
    )
    alert.escalation_level = level
    session.flush()
    return alert


def _targets(rows):
    return sorted((r.channel, r.recipient) for r in rows)


def test_level_0_goes_to_ward_staff_by_push_and_email(session, world, clock):
    alert = _alert(session, world, clock)
    rows = notify_alert(session=session, alert=alert, now=clock.now())
    assert _targets(rows) == [("email", "ward1@example.org"), ("fcm", "tok-ward1")]
    for row in rows:
        assert row.alert_id == alert.id and row.staff_id == world.ward_staff.id
        assert row.payload["idempotency_key"] == row.idempotency_key
        assert row.payload["data"]["alert_id"] == str(alert.id)
        assert row.next_attempt_at == clock.now()
    # Idempotent: the same level again writes nothing new.
    again = notify_alert(session=session, alert=alert, now=clock.now() + timedelta(minutes=5))
    assert [r.id for r in again] == [r.id for r in rows]
    assert session.query(Notification).filter_by(alert_id=alert.id).count() == 2


@pytest.mark.parametrize(
    ("level", "expected"),
    [(1, [("email", "gv@example.org")]), (2, [("fcm", "tok-hcm")]), (5, [("fcm", "tok-hcm")])],
)
def test_escalation_level_picks_district_then_city_staff(session, world, clock, level, expected):
    alert = _alert(session, world, clock, level=level)
    rows = notify_alert(session=session, alert=alert, now=clock.now())
    assert _targets(rows) == expected
    assert all(f":L{level}:" in r.idempotency_key for r in rows)


def test_inactive_staff_and_other_wards_are_not_told(session, world, clock):
    from server.people.areas import create_area

    other_ward = create_area(
        session=session, code="GV-P2", name="Phường 2", kind=world.ward.kind,
        parent=world.district,
    )  # fmt: skip
    session.add(
        StaffUser(
            username="ward2", full_name="W2", password_hash="x", role=StaffRole.area_staff,
            area_id=other_ward.id, email="ward2@example.org",
        )
    )  # fmt: skip
    session.get(StaffUser, world.ward_staff.id).is_active = False
    alert = _alert(session, world, clock)
    rows = notify_alert(session=session, alert=alert, now=clock.now())
    # Nobody reachable: one log row says so, visible in the outbox.
    assert _targets(rows) == [("log", f"area:{world.ward.id}")]
    assert rows[0].idempotency_key == f"alert:{alert.id}:L0:log:nobody"


def test_area_routing_adds_webhooks_doctor_and_admins_nearest_area_wins(session, world, clock):
    doctor = StaffUser(
        username="bs", full_name="Bác sĩ", password_hash="x", role=StaffRole.doctor,
        area_id=world.ward.id, push_token="tok-doctor",
    )  # fmt: skip
    admin = StaffUser(
        username="admin", full_name="Admin", password_hash="x", role=StaffRole.admin,
        email="admin@example.org",
    )  # fmt: skip
    session.add_all([doctor, admin])
    session.flush()
    world.person.doctor_id = doctor.id
    world.city.escalation_policy = {"severe_symptoms": 5}  # the alerts' deadlines stay
    set_area_routing(
        session=session,
        area=world.city,
        routing={
            "staff": [
                {"roles": ["area_staff"], "kinds": "*", "channels": ["email"]},
                {"roles": ["doctor"], "kinds": ["severe_symptoms"], "channels": ["fcm"]},
                {"roles": ["admin"], "kinds": "*", "channels": ["email"], "levels": [2]},
            ],
            "webhooks": [
                {"url": "https://ops.example/hook", "kinds": ["severe_symptoms"], "levels": [0]}
            ],
        },
    )
    assert world.city.escalation_policy["severe_symptoms"] == 5

    severe = _alert(session, world, clock, kind=AlertKind.severe_symptoms, key="sev")
    assert _targets(notify_alert(session=session, alert=severe, now=clock.now())) == [
        ("email", "ward1@example.org"),  # area_staff: e-mail only under this routing
        ("fcm", "tok-doctor"),
        ("webhook", "https://ops.example/hook"),
    ]
    severe.escalation_level = 2
    assert _targets(notify_alert(session=session, alert=severe, now=clock.now())) == [
        ("email", "admin@example.org"),
        ("fcm", "tok-doctor"),  # city staff have no e-mail: only the doctor and the admin
    ]
    missed = _alert(session, world, clock, key="missed")
    assert _targets(notify_alert(session=session, alert=missed, now=clock.now())) == [
        ("email", "ward1@example.org")
    ]

    # A ward's own routing overrides the city's; removing it falls back again.
    set_area_routing(
        session=session,
        area=world.ward,
        routing={"staff": [{"roles": ["area_staff"], "channels": ["fcm", "log"]}]},
    )
    assert routing_for(session=session, ward=world.ward)["webhooks"] == []
    missed2 = _alert(session, world, clock, key="missed2")
    assert _targets(notify_alert(session=session, alert=missed2, now=clock.now())) == [
        ("fcm", "tok-ward1"),
        ("log", f"staff:{world.ward_staff.id}"),
    ]
    set_area_routing(session=session, area=world.ward, routing=None)
    assert world.ward.escalation_policy is None
    set_area_routing(session=session, area=world.city, routing=None)
    assert routing_for(session=session, ward=world.ward) is DEFAULT_ROUTING


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ([], "must be an object"),
        ({"people": []}, "unknown routing keys"),
        ({"staff": [{"roles": ["nurse"], "channels": ["fcm"]}]}, "staff[0].roles: unknown"),
        ({"staff": [{"roles": ["admin"], "channels": ["sms"]}]}, "staff[0].channels: unknown"),
        ({"staff": [{"roles": ["admin"], "channels": []}]}, "non-empty list"),
        ({"staff": [{"roles": ["admin"], "channels": ["log"], "kinds": ["x"]}]}, "unknown"),
        ({"staff": [{"roles": ["admin"], "channels": ["log"], "levels": [3]}]}, "levels"),
        ({"webhooks": [{"url": "ftp://x"}]}, "http(s) URL"),
        ({"webhooks": [{"url": "https://x", "secret": "s"}]}, "unknown keys"),
    ],
)
def test_invalid_routing_is_refused_with_a_reason(routing, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(
        "[", r"\[").replace("]", r"\]")):  # fmt: skip
        validate_routing(routing)


def test_person_messages_go_to_each_active_device_or_the_log(session, world, clock):
    second = Device(person_id=world.person.id, token_hash="s" * 64, push_token="tok-phone-2")
    revoked = Device(
        person_id=world.person.id, token_hash="r" * 64, push_token="tok-old",
        revoked_at=clock.now(),
    )  # fmt: skip
    session.add_all([second, revoked])
    session.flush()
    rows = notify_person(
        session=session, person=world.person, kind="checkin_reminder",
        payload={"due_at": clock.now() + timedelta(minutes=30)}, now=clock.now(),
        idempotency_key="remind:1",
    )  # fmt: skip
    assert _targets(rows) == [("fcm", "tok-phone-1"), ("fcm", "tok-phone-2")]
    assert [r.idempotency_key for r in rows] == [
        f"remind:1:d{world.device.id}",
        f"remind:1:d{second.id}",
    ]
    assert rows[0].payload["title"] == "Nhắc điểm danh"
    assert rows[0].payload["body"] == "Bạn chưa điểm danh. Hạn chót 09:00."
    assert rows[0].person_id == world.person.id

    lonely = make_person(session, world.ward, name="Lê Văn Cường")
    [row] = notify_person(
        session=session, person=lonely, kind="anything", payload={"title": "Xin chào"},
        now=clock.now(), idempotency_key="hello",
    )  # fmt: skip
    assert (row.channel, row.recipient, row.idempotency_key) == ("log", f"person:{lonely.id}",
                                                                 "hello:log")  # fmt: skip
    assert row.payload["title"] == "Xin chào" and row.payload["data"] == {}


def test_long_idempotency_keys_are_shortened_consistently(session, world, clock):
    key = "x" * 200
    [a] = notify_person(
        session=session, person=world.person, kind="k", payload={}, now=clock.now(),
        idempotency_key=key,
    )  # fmt: skip
    [b] = notify_person(
        session=session, person=world.person, kind="k", payload={}, now=clock.now(),
        idempotency_key=key,
    )  # fmt: skip
    assert a.id == b.id and len(a.idempotency_key) == 128
