"""Issue 19, item 3, for retries: a message to a person whose retry would fall in their quiet
hours (default 22:00–06:00 local) waits until they end; a staff alert's retry does not wait.
Before, a reminder enqueued at 21:55 and failing was retried after 22:00, inside the quiet
hours, as often as its backoff allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from notify_helpers import notify_settings

from server.core.enums import NotificationState
from server.notify.channel import OutboxMessage, Outcome, Result
from server.notify.delivery import record
from server.notify.models import Notification
from server.notify.outbox import enqueue

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
#: A reminder enqueued just before the quiet hours, failing again once they have begun.
LATE = datetime(2026, 11, 24, 22, 5, tzinfo=HCM).astimezone(UTC)
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=HCM).astimezone(UTC)


def _failed_once(
    session, settings, *, key: str, now: datetime, payload=None, **owner
) -> Notification:
    row = enqueue(
        session=session, channel="fcm", recipient="tok", payload=payload or {"kind": "k"},
        idempotency_key=key, now=now, **owner,
    )  # fmt: skip
    row.state, row.attempts = NotificationState.sending, 1
    session.commit()
    message = OutboxMessage(row.id, row.channel, row.recipient, key, 1, row.payload)
    record(
        session=session, messages=[message], results=[Result(Outcome.retry, "unavailable")],
        now=now, settings=notify_settings(settings),
    )  # fmt: skip
    session.refresh(row)
    return row


def test_a_persons_retry_that_falls_at_night_waits_for_the_morning(session, world, settings):
    row = _failed_once(session, settings, key="late", now=LATE, person_id=world.person.id)
    assert row.state is NotificationState.pending
    assert row.next_attempt_at == datetime(2026, 11, 25, 6, 0, tzinfo=HCM).astimezone(UTC)


def test_a_persons_retry_by_day_goes_after_its_backoff(session, world, settings):
    row = _failed_once(session, settings, key="noon", now=NOON, person_id=world.person.id)
    assert NOON < row.next_attempt_at <= NOON + timedelta(hours=1)


def test_a_staff_alerts_retry_is_not_held_for_the_night(session, world, settings):
    row = _failed_once(session, settings, key="staff", now=LATE, staff_id=world.ward_staff.id)
    assert LATE < row.next_attempt_at <= LATE + timedelta(hours=1)


def test_a_prompt_reminder_due_before_the_morning_is_dropped_not_sent_stale(
    session, world, settings
):
    """"Check in by 22:20" must not arrive at 06:00: the held retry would come after the due
    time, so the row is dead with the reason, and nothing goes out."""
    due = datetime(2026, 11, 24, 22, 20, tzinfo=HCM)
    payload = {"kind": "checkin_reminder", "data": {"due_at": due.isoformat()}}
    row = _failed_once(session, settings, key="stale", now=LATE, payload=payload,
                       person_id=world.person.id)  # fmt: skip
    assert row.state is NotificationState.dead
    assert row.last_error.startswith("expired: due before the person's quiet hours end")
