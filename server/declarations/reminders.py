"""The daily health-declaration reminder (nhắc khai báo y tế), part of the schedule policy:
at the policy's ``declaration_reminder_at`` (person's local time, never in quiet hours), a person
who has not declared yet that local day gets one push, once a day. Between the reminder time
and the start of quiet hours only: a reminder missed before quiet hours is not sent at night."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.enums import PersonStatus
from server.declarations.models import Declaration
from server.notify import persons
from server.notify.models import Notification
from server.people.models import Person
from server.schedule.policy import PolicyResolver

KEY_PREFIX = "declaration_reminder"


def reminder_key(person_id: int, day: str) -> str:
    return f"{KEY_PREFIX}:{person_id}:{day}"


def send_declaration_reminders(
    *, session: Session, now: datetime, resolver: PolicyResolver, after_id: int, limit: int
) -> tuple[int, int]:
    """One page of up to ``limit`` monitored people with ids above ``after_id``; returns
    ``(reminders enqueued, last id seen)`` (last id 0 when the page was the last).

    1. Load the page, then in two queries the declarations of the last 48 h and today's
       reminders already enqueued for those people.
    2. For each person whose local time is past the reminder time but not yet in quiet hours,
       and who has neither declared since local midnight nor been reminded today, enqueue the
       reminder (idempotent key per person and local day, so a second scheduler or a rerun never
       sends it twice), in one ``INSERT … ON CONFLICT DO NOTHING`` for the page; the count is of
       people who got a new row, so a racing scheduler counts only its own."""
    people = session.scalars(
        select(Person)
        .where(
            Person.id > after_id,
            Person.status == PersonStatus.active,
            Person.isolation_start <= now,
            Person.isolation_end > now,
        )
        .order_by(Person.id)
        .limit(limit)
    ).all()
    if not people:
        return 0, 0
    ids = [p.id for p in people]
    last_declared: dict[int, datetime] = {}
    for pid, at in session.execute(
        select(Declaration.person_id, Declaration.measured_at).where(
            Declaration.person_id.in_(ids), Declaration.measured_at >= now - timedelta(hours=48)
        )
    ):
        last_declared[pid] = max(at, last_declared.get(pid, at))
    reminded = set(
        session.scalars(
            select(Notification.idempotency_key).where(
                Notification.person_id.in_(ids),
                Notification.created_at >= now - timedelta(hours=48),
                Notification.idempotency_key.startswith(KEY_PREFIX + ":"),
            )
        )
    )
    due: list[persons.PersonMessage] = []
    for person in people:
        policy = resolver.policy(ward_id=person.ward_id, person_overrides=person.schedule_policy)
        zone = resolver.zone(ward_id=person.ward_id, person_zone=person.timezone)
        local = now.astimezone(zone)
        if local.time() < policy.declaration_reminder_at:
            continue
        if policy.is_quiet(now, zone):
            # past the reminder time but already in quiet hours (the person started isolating
            # at 22:30, the scheduler was down at 20:00): no message at night; tomorrow's
            # reminder is due at the reminder time as usual
            continue
        midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
        declared = last_declared.get(person.id)
        if declared is not None and declared >= midnight:
            continue
        key = reminder_key(person.id, local.date().isoformat())
        if any(k.startswith(key + ":") for k in reminded):
            continue
        due.append(
            persons.PersonMessage(
                person.id, "declaration_reminder", {"day": local.date().isoformat()}, key
            )
        )
    # INSERT … ON CONFLICT (idempotency_key) DO NOTHING: a second scheduler that read the same
    # page before this one committed skips the rows instead of failing its whole sweep
    # (UniqueViolation uq_notifications_idempotency_key, issue 20).
    sent = persons.send_to_persons(
        session=session, messages=due, now=now, count_inserted=True, resolver=resolver
    )
    return sent, (ids[-1] if len(people) == limit else 0)
