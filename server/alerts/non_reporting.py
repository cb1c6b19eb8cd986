"""Non-reporting (không khai báo): an active person who sent no health declaration for
``Settings.non_reporting_hours`` (default 24 h) raises a ``non_reporting`` alert for their ward,
at most one per person per local day (dedupe key ``non_reporting:<person>:<local date>``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.alerts.service import raise_alert
from server.declarations.models import Declaration
from server.enums import AlertKind, PersonStatus
from server.people.models import Person
from server.schedule import bulk
from server.schedule.policy import PolicyResolver


def raise_non_reporting(
    *,
    session: Session,
    now: datetime,
    window: timedelta,
    resolver: PolicyResolver,
    limit: int,
) -> int:
    """Raise ``non_reporting`` alerts for up to ``limit`` people; returns how many were raised.

    1. Pick active people isolating for at least ``window`` with no declaration received in the
       last ``window`` and no ``non_reporting`` alert raised in the last ``window`` (so the same
       silence is reported once a day, not once a sweep).
    2. Raise the alert (idempotent by the per-day dedupe key), which tells the ward."""
    since = now - window
    declared = exists().where(Declaration.person_id == Person.id, Declaration.received_at > since)
    alerted = exists().where(
        Alert.person_id == Person.id,
        Alert.kind == AlertKind.non_reporting,
        Alert.created_at > since,
    )
    query = (
        select(Person)
        .where(
            Person.status == PersonStatus.active,
            Person.isolation_start <= since,
            Person.isolation_end > now,
            ~declared,
            ~alerted,
        )
        .order_by(Person.id)
    )
    raised = 0
    for person in session.scalars(bulk.lock_batch(session, query, limit=limit, of=Person)):
        zone = resolver.zone(ward_id=person.ward_id, person_zone=person.timezone)
        day = now.astimezone(zone).date().isoformat()
        _, created = raise_alert(
            session=session,
            person=person,
            kind=AlertKind.non_reporting,
            now=now,
            dedupe_key=f"non_reporting:{person.id}:{day}",
            details={"hours_without_declaration": window.total_seconds() / 3600},
        )
        raised += created
    return raised
