"""Non-reporting (không khai báo): an active person who sent no health declaration for
``Settings.non_reporting_hours`` (default 24 h) raises a ``non_reporting`` alert for their ward,
at most one per person per local day (dedupe key ``non_reporting:<person>:<local date>``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.alerts.service import raise_alert
from server.core import sql
from server.core.enums import AlertKind, PersonStatus
from server.declarations.models import Declaration
from server.people.models import Person
from server.schedule.policy import PolicyResolver


@dataclass(frozen=True)
class Batch:
    raised: int
    #: the last person id of a full batch (where the next one goes on); None: the end of the
    #: range was reached (fewer than ``limit`` people were left)
    last_id: int | None
    #: the lowest id passed over because another transaction held it (the other scheduler's
    #: batch, or planning's): a walk that went past it must come back for it
    skipped: int | None = None


def raise_non_reporting(
    *,
    session: Session,
    now: datetime,
    window: timedelta,
    resolver: PolicyResolver,
    limit: int,
    after_id: int = 0,
    up_to_id: int | None = None,
) -> Batch:
    """Raise ``non_reporting`` alerts for up to ``limit`` people with ids above ``after_id``
    (and at most ``up_to_id``), in id order: a keyset batch, so a sweep walks the table once
    instead of from its start in every batch (issue 18; the scheduler keeps the position
    between runs, :func:`scheduler.jobs.non_reporting`).

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
        select(Person.id)
        .where(
            Person.id > after_id,
            Person.status == PersonStatus.active,
            Person.isolation_start <= since,
            Person.isolation_end > now,
            ~declared,
            ~alerted,
        )
        .order_by(Person.id)
    )
    if up_to_id is not None:
        query = query.where(Person.id <= up_to_id)
    # the keyset window first (unlocked), then the rows of it nobody else holds: a walk that
    # only took what SKIP LOCKED gave would step over held rows and not see them again
    candidates = list(session.scalars(query.limit(limit)))
    people = list(session.scalars(sql.lock_batch(
        session, select(Person).where(Person.id.in_(candidates)).order_by(Person.id),
        limit=limit, of=Person,
    ))) if candidates else []  # fmt: skip
    skipped = min(set(candidates) - {p.id for p in people}, default=None)
    raised = 0
    for person in people:
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
    return Batch(raised, candidates[-1] if len(candidates) == limit else None, skipped)
