"""Times in message texts are in the zone resolved like everywhere else (person → ward →
district → city → default: ``schedule.policy.PolicyResolver.zone``), issue 15. Before, a person
message used the person's own zone or a hard-coded Asia/Ho_Chi_Minh and an alert e-mail the
ward's own zone or that constant, so a district's or city's zone was never seen."""

from __future__ import annotations

from datetime import UTC, datetime

from notify_helpers import make_person

from server.alerts.service import raise_alert
from server.core.enums import AlertKind
from server.notify.alerts import notify_alert
from server.notify.routing import notify_person

DUE = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)  # 07:30 in Ho Chi Minh City, 09:30 in Tokyo


def test_a_person_message_shows_the_due_time_in_the_citys_zone(session, world, clock):
    world.city.timezone = "Asia/Tokyo"  # neither the person nor the ward nor the district name one
    person = make_person(session, world.ward, name="Trần Thị Bình")
    assert person.timezone is None and world.ward.timezone is None
    rows = notify_person(
        session=session, person=person, kind="checkin_prompt",
        payload={"due_at": DUE.isoformat()}, now=clock.now(),
        idempotency_key="zone-test",
    )  # fmt: skip
    assert rows and all("09:30" in r.payload["body"] for r in rows)
    assert all("09:30" in r.payload["en"]["body"] for r in rows)


def test_a_person_without_any_zone_gets_the_default(session, world, clock):
    person = make_person(session, world.ward, name="Lê Văn Cường")
    rows = notify_person(
        session=session, person=person, kind="checkin_prompt",
        payload={"due_at": DUE.isoformat()}, now=clock.now(),
        idempotency_key="zone-default",
    )  # fmt: skip
    assert rows and all("07:30" in r.payload["body"] for r in rows)


def test_an_alert_email_shows_when_it_was_raised_in_the_districts_zone(session, world, clock):
    world.district.timezone = "Asia/Tokyo"
    world.ward.timezone = None
    alert, _ = raise_alert(
        session=session, person=world.person, kind=AlertKind.missed_checkin, now=DUE,
        dedupe_key="zone-alert",
    )  # fmt: skip
    rows = notify_alert(session=session, alert=alert, now=DUE)
    email = [r for r in rows if r.channel == "email"]
    assert email and "2026-03-01 09:30" in email[0].payload["text"]
