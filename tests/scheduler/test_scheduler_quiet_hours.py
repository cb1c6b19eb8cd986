"""No message to a person inside their quiet hours (22:00–06:00 by default), across a simulated
day of every sweep: declaration reminders, prompt pushes and reminders, the release message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler_helpers import World, run_until
from sqlalchemy import select

from server.core.enums import PersonStatus
from server.notify.models import Notification
from server.schedule.policy import SchedulePolicy

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=HCM).astimezone(UTC)


def test_a_simulated_day_sends_nothing_in_quiet_hours(session_factory, settings):
    from server.core.clock import FrozenClock

    start, stop = _local(24, 12), _local(25, 12)
    clock = FrozenClock(start)
    with session_factory() as s:
        world = World(s)
        # on the default schedule, never declaring
        steady = world.person(start=start - timedelta(days=2), end=start + timedelta(days=5),
                              name="steady")
        # starts isolating at 22:30 (enrolled in the evening): past the 20:00 reminder time,
        # not declared today, inside quiet hours — the reminder went out at 22:32 before
        late = world.person(start=_local(24, 22, 30), end=start + timedelta(days=5),
                            status=PersonStatus.enrolled, name="late")
        # isolation ends at 23:00: the release message waits for the morning
        leaving = world.person(start=start - timedelta(days=9), end=_local(24, 23),
                               name="leaving")
        names = {steady.id: "steady", late.id: "late", leaving.id: "leaving"}

    run_until(session_factory, clock, settings, stop, max_step=timedelta(minutes=10))

    quiet = SchedulePolicy()
    with session_factory() as s:
        # messages to the person (staff are told about alerts at any hour, by design)
        rows = s.scalars(select(Notification).where(
            Notification.person_id.is_not(None), Notification.alert_id.is_(None),
            Notification.staff_id.is_(None))).all()
        assert rows
        at_night = [
            (names[r.person_id], r.payload.get("kind"), r.next_attempt_at.astimezone(HCM))
            for r in rows if quiet.is_quiet(r.next_attempt_at, HCM)
        ]
        assert at_night == []

        reminders = [r for r in rows if r.payload.get("kind") == "declaration_reminder"]
        # the two who were isolating at 20:00 are reminded then; the late one is not, at night
        assert sorted(names[r.person_id] for r in reminders) == ["leaving", "steady"]
        assert all(r.next_attempt_at.astimezone(HCM).hour == 20 for r in reminders)
        [released] = [r for r in rows if r.payload.get("kind") == "isolation_ended"]
        assert released.person_id == leaving.id
        assert released.next_attempt_at == _local(25, 6)


def test_quiet_ends_at(settings):
    policy = SchedulePolicy()
    assert policy.quiet_ends_at(_local(24, 21, 59), HCM) is None
    assert policy.quiet_ends_at(_local(24, 22, 0), HCM) == _local(25, 6)
    assert policy.quiet_ends_at(_local(25, 3, 0), HCM) == _local(25, 6)
    assert policy.quiet_ends_at(_local(25, 6, 0), HCM) is None
