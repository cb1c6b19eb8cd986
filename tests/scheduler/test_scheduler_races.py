"""Two schedulers writing the same row at the same moment, made deterministic: one transaction
holds an uncommitted insert while the other runs into it (SQLite and PostgreSQL).

Both bugs were seen with two ``isocheck scheduler`` processes on PostgreSQL (issue 20): the
declaration-reminder sweep looked the outbox key up and then inserted (``UniqueViolation
uq_notifications_idempotency_key`` in the second process: its whole sweep failed), and the
heartbeat was written get-then-insert (``UniqueViolation pk_scheduler_heartbeats``)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from scheduler.jobs import declaration_reminders
from scheduler.runner import INSTANCE, run_sweep
from server.core.clock import FrozenClock
from server.core.db import make_engine, make_session_factory
from server.core.enums import AreaKind, PersonStatus
from server.declarations.reminders import send_declaration_reminders
from server.heartbeat import SchedulerHeartbeat
from server.notify.models import Notification
from server.people.areas import create_area
from server.people.models import Device, Person
from server.schedule.policy import resolver_for

#: 20:30 in Ho Chi Minh City: past the default reminder time (20:00), before quiet hours.
EVENING = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)


def _people(session, n=6):
    city = create_area(session=session, code="c", name="HCM", kind=AreaKind.city)
    district = create_area(session=session, code="d", name="GV", kind=AreaKind.district,
                           parent=city)  # fmt: skip
    ward = create_area(session=session, code="w", name="P1", kind=AreaKind.ward, parent=district)
    for i in range(n):
        p = Person(full_name=f"P{i}", phone="0900000000", ward_id=ward.id, home_address="x",
                   home_lat=10.8, home_lon=106.6, isolation_start=EVENING - timedelta(days=2),
                   isolation_end=EVENING + timedelta(days=5), status=PersonStatus.active)
        session.add(p)
        session.flush()
        if i % 2:
            session.add(Device(person_id=p.id, token_hash=f"h{p.id}", push_token=f"tok-{p.id}"))
    session.commit()


def _tagged_engine(db_url: str, tag: str):
    """An engine whose PostgreSQL connections carry ``application_name=tag``, so the test can
    see when one of them waits for a lock."""
    if not db_url.startswith("postgresql"):
        return make_engine(db_url)
    url = make_url(db_url).update_query_dict({"application_name": tag})
    return make_engine(url.render_as_string(hide_password=False))


def _wait_until_blocked(engine, db_url: str, tag: str, thread: threading.Thread) -> None:
    """Until the ``tag`` connection waits for a lock (PostgreSQL), or for a second (SQLite has
    no view of its waiters; its busy handler waits up to 30 s, plenty)."""
    if not db_url.startswith("postgresql"):
        time.sleep(1.0)
        return
    deadline = time.monotonic() + 20
    with engine.connect() as conn:
        while time.monotonic() < deadline and thread.is_alive():
            waiting = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :t "
                     "AND wait_event_type = 'Lock'"), {"t": tag},
            ).scalar()  # fmt: skip
            conn.commit()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the second scheduler never ran into the first one's insert")


def test_declaration_reminders_of_two_schedulers_at_once_neither_fails(
    session_factory, session, settings, engine, db_url
):
    _people(session)
    resolver = resolver_for(session=session, settings=settings)
    first = session_factory()
    sent_first, _ = send_declaration_reminders(
        session=first, now=EVENING, resolver=resolver, after_id=0, limit=100
    )
    first.flush()  # the rows are written, not committed: the second scheduler cannot see them
    assert sent_first == 6

    tag = f"isocheck-race-{id(first)}"
    other_engine = _tagged_engine(db_url, tag)
    outcome: dict = {}

    def second() -> None:
        with make_session_factory(other_engine)() as s:
            try:
                outcome["sent"] = declaration_reminders(
                    session=s, clock=FrozenClock(EVENING), settings=settings
                )
                s.commit()
            except Exception as exc:  # noqa: BLE001 - the assertion below shows it
                outcome["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    try:
        _wait_until_blocked(other_engine, db_url, tag, thread)
    finally:
        first.commit()
        first.close()
        thread.join(timeout=60)
        other_engine.dispose()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["sent"] == 0  # the first scheduler had reminded everyone
    rows = session.scalars(
        select(Notification).where(Notification.idempotency_key.startswith("declaration_"))
    ).all()
    assert len(rows) == 6 and len({r.person_id for r in rows}) == 6
    assert {r.channel for r in rows} == {"fcm", "log"}


def test_first_heartbeat_of_two_schedulers_at_once_is_an_upsert(
    session_factory, settings, engine, db_url
):
    earlier = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    first = session_factory()
    first.add(SchedulerHeartbeat(name="open_due", last_run_at=earlier, instance="other:1"))
    first.flush()  # the other scheduler's first heartbeat, not committed yet

    tag = f"isocheck-beat-{id(first)}"
    other_engine = _tagged_engine(db_url, tag)
    later = earlier + timedelta(seconds=5)
    outcome: dict = {}

    def second() -> None:
        outcome["run"] = run_sweep(
            "open_due", lambda **_: 0, session_factory=make_session_factory(other_engine),
            clock=FrozenClock(later), settings=settings,
        )  # fmt: skip

    thread = threading.Thread(target=second)
    thread.start()
    try:
        _wait_until_blocked(other_engine, db_url, tag, thread)
    finally:
        first.commit()
        first.close()
        thread.join(timeout=60)
        other_engine.dispose()
    assert outcome["run"].error is None
    with session_factory() as s:
        beat = s.get(SchedulerHeartbeat, "open_due")
        # the later write wins; a failed insert would have left the other scheduler's row
        assert (beat.last_run_at, beat.instance) == (later, INSTANCE)
