"""The daily declaration reminder: at the policy's time, once a day, only to who has not
declared today (local day), through the outbox."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from scheduler.jobs import declaration_reminders
from server.core.enums import AreaKind, PersonStatus
from server.declarations.models import Declaration
from server.notify.models import Notification
from server.people.areas import create_area
from server.people.models import Device, Person

# 19:00 in Ho Chi Minh City (UTC+7)
EVENING = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _world(session):
    city = create_area(session=session, code="c", name="HCM", kind=AreaKind.city)
    district = create_area(session=session, code="d", name="GV", kind=AreaKind.district,
                           parent=city)
    ward = create_area(session=session, code="w", name="P1", kind=AreaKind.ward, parent=district)
    people = []
    for name in ("An", "Bình"):
        p = Person(full_name=name, phone="0900000000", ward_id=ward.id, home_address="x",
                   home_lat=10.8, home_lon=106.6, isolation_start=EVENING - timedelta(days=2),
                   isolation_end=EVENING + timedelta(days=5), status=PersonStatus.active)
        session.add(p)
        session.flush()
        session.add(Device(person_id=p.id, token_hash=f"h{p.id}", push_token=f"tok-{p.id}"))
        people.append(p)
    session.commit()
    return people


def _reminders(session):
    return session.scalars(select(Notification).where(
        Notification.idempotency_key.startswith("declaration_reminder:"))).all()


def test_once_a_day_at_the_policy_time_to_who_has_not_declared(session, clock, settings):
    an, binh = _world(session)
    clock.set(EVENING)
    assert declaration_reminders(session=session, clock=clock, settings=settings) == 0

    session.add(Declaration(person_id=binh.id, measured_at=EVENING, spo2=98))  # declared today
    session.commit()
    clock.set(EVENING + timedelta(hours=1, minutes=5))  # 20:05 local
    assert declaration_reminders(session=session, clock=clock, settings=settings) == 1
    rows = _reminders(session)
    assert [r.person_id for r in rows] == [an.id]
    assert rows[0].channel == "fcm" and rows[0].recipient.endswith(f"tok-{an.id}")
    assert rows[0].payload["kind"] == "declaration_reminder"

    clock.advance(minutes=30)  # later the same evening: nothing new
    assert declaration_reminders(session=session, clock=clock, settings=settings) == 0

    # next day: An declared yesterday, not today, so An is reminded again; Bình too
    clock.advance(hours=24)
    assert declaration_reminders(session=session, clock=clock, settings=settings) == 2
    assert len(_reminders(session)) == 3


def test_a_person_policy_moves_the_time(session, clock, settings):
    an, _binh = _world(session)
    an.schedule_policy = {"declaration_reminder_at": "18:30"}
    session.commit()
    clock.set(EVENING)  # 19:00 local: past An's 18:30, before the default 20:00
    assert declaration_reminders(session=session, clock=clock, settings=settings) == 1
    assert [r.person_id for r in _reminders(session)] == [an.id]
