"""What the dashboard's pages read: plain functions over a session, every list limited to the
caller's scope through :mod:`server.scope` (callers answer "not found" when a lookup returns
None). The review state machine is :mod:`server.checkins.review`; statistics and compliance
are :mod:`server.dashboard.statistics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, or_, select, tuple_, union_all
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.checkins.models import CheckinAttempt
from server.core import audit
from server.core.audit import AuditEvent
from server.core.enums import AlertKind, AlertState, AttemptDecision, RiskLevel, StaffRole
from server.declarations.models import Declaration
from server.people.models import Area, Person, StaffUser, StoredImage
from server.scope import alerts_in_scope, person_ids_in_scope

#: Roles that manage people (enrol, review faces, change isolation); doctors follow patients.
MANAGERS = (StaffRole.admin, StaffRole.area_staff)
#: Sort order of risk levels, most urgent first.
RISK_ORDER = {RiskLevel.red: 4, RiskLevel.orange: 3, RiskLevel.yellow: 2, RiskLevel.green: 1}


# --- alert queue ------------------------------------------------------------------------


@dataclass
class QueueRow:
    alert: Alert
    person: Person
    area: Area
    acknowledged_by: str | None


def alert_queue(
    *,
    session: Session,
    staff: StaffUser,
    kind: AlertKind | None = None,
    state: AlertState | None = None,
    area: Area | None = None,
    limit: int = 200,
) -> list[QueueRow]:
    """Open and acknowledged alerts in scope, most urgent first: severity (4 → 1), then the
    oldest (waiting longest) first."""
    visible = alerts_in_scope(session=session, staff=staff).subquery()
    ward = Area.__table__.alias("ward")
    acker = StaffUser.__table__.alias("acker")
    query = (
        select(Alert, Person, Area, acker.c.full_name)
        .join(visible, visible.c.id == Alert.id)
        .join(Person, Person.id == Alert.person_id)
        .join(Area, Area.id == Alert.area_id)
        .outerjoin(acker, acker.c.id == Alert.acknowledged_by_id)
    )
    states = [state] if state else [AlertState.open, AlertState.acknowledged]
    query = query.where(Alert.state.in_(states))
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if area is not None:
        query = query.join(ward, ward.c.id == Alert.area_id).where(
            ward.c.path.startswith(area.path)
        )
    query = query.order_by(Alert.severity.desc(), Alert.created_at, Alert.id).limit(limit)
    return [QueueRow(a, p, ar, name) for a, p, ar, name in session.execute(query)]


def enrolment_images(*, session: Session, person: Person) -> list[StoredImage]:
    """The person's enrolment photos (at most 3), shown beside a selfie under review."""
    return list(
        session.scalars(
            select(StoredImage)
            .where(
                StoredImage.person_id == person.id,
                StoredImage.kind == "enrolment",
                StoredImage.purged_at.is_(None),
            )
            .order_by(StoredImage.id)
            .limit(3)
        )
    )


# --- persons ----------------------------------------------------------------------------


def is_manager(staff: StaffUser) -> bool:
    return staff.role in MANAGERS


def _const(value: Any):
    """A constant written into the SQL (not a bound parameter): an expression index matches
    only an expression with the same constants (``ix_persons_risk_sort``, migration 0004c)."""
    return bindparam(None, value, literal_execute=True)


def risk_rank():
    """4 (red) … 1 (green), 0 for none."""
    return case(
        *[(Person.risk_level == _const(level), _const(rank)) for level, rank in RISK_ORDER.items()],
        else_=_const(0),
    )


def person_sort_keys(sort: str) -> list[Any]:
    """The persons list's ORDER BY, every key ascending (so one row comparison pages it and one
    index serves it): ``risk`` = highest risk first, high-risk group first, then name; ``name``;
    ``end`` = isolation ending soonest. The id breaks ties."""
    if sort == "name":
        return [Person.full_name, Person.id]
    if sort == "end":
        return [Person.isolation_end, Person.id]
    high_first = case((Person.is_high_risk.is_(True), _const(0)), else_=_const(1))
    return [-risk_rank(), high_first, Person.full_name, Person.id]


def person_list(
    *,
    session: Session,
    staff: StaffUser,
    q: str = "",
    sort: str = "risk",
    limit: int = 100,
    offset: int = 0,
    after: Person | None = None,
) -> list[tuple[Person, Area]]:
    """Persons in scope matching ``q`` (name, or phone digits), sorted by ``risk`` (highest
    first, high-risk group first), ``name`` or ``end`` (isolation ending soonest).

    ``after``: keyset pagination (issue 18), the rows that sort after that person, read from
    the index where the last page ended; an offset reads and drops every row before it."""
    visible = person_ids_in_scope(session=session, staff=staff)
    query = select(Person, Area).join(Area, Area.id == Person.ward_id).where(Person.id.in_(visible))
    q = q.strip()[:100]
    if q:
        digits = "".join(ch for ch in q if ch.isdigit())
        conditions = [Person.full_name.icontains(q, autoescape=True)]
        if len(digits) >= 3:
            conditions.append(Person.phone.contains(digits, autoescape=True))
        query = query.where(or_(*conditions))
    keys = person_sort_keys(sort if sort in ("name", "end") else "risk")
    if after is not None:
        # the same expressions evaluated on the cursor row, as a scalar subquery per key
        cursor = [select(key).where(Person.id == after.id).scalar_subquery() for key in keys]
        query = query.where(tuple_(*keys) > tuple_(*cursor))
    query = query.order_by(*keys)
    return [(p, a) for p, a in session.execute(query.limit(limit).offset(offset))]


def last_checkin(*, session: Session, person: Person) -> CheckinAttempt | None:
    return session.scalar(
        select(CheckinAttempt)
        .where(
            CheckinAttempt.person_id == person.id,
            CheckinAttempt.decision == AttemptDecision.verified,
        )
        .order_by(CheckinAttempt.received_at.desc(), CheckinAttempt.id.desc())
        .limit(1)
    )


def declarations(*, session: Session, person: Person, limit: int = 200) -> list[Declaration]:
    """The person's declarations, oldest first (the most recent ``limit``)."""
    rows = session.scalars(
        select(Declaration)
        .where(Declaration.person_id == person.id)
        .order_by(Declaration.measured_at.desc(), Declaration.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def alert_history(*, session: Session, person: Person, limit: int = 50) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.person_id == person.id)
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        )
    )


def alert_occurrences(*, session: Session, alerts: list[Alert]) -> dict[int, list[Any]]:
    """The repeats each of ``alerts`` absorbed (docs/declarations.md), oldest first."""
    from server.alerts.models import AlertOccurrence

    ids = [a.id for a in alerts if a.occurrences > 1]
    out: dict[int, list[Any]] = {}
    if not ids:
        return out
    for o in session.scalars(
        select(AlertOccurrence)
        .where(AlertOccurrence.alert_id.in_(ids))
        .order_by(AlertOccurrence.occurred_at, AlertOccurrence.id)
    ):
        out.setdefault(o.alert_id, []).append(o)
    return out


@dataclass
class AuditRow:
    event: AuditEvent
    actor: str


def audit_trail(*, session: Session, person: Person, limit: int = 100) -> list[AuditRow]:
    """Events about the person, their alerts, check-in attempts and images, newest first."""
    alert_ids = select(Alert.id).where(Alert.person_id == person.id)
    attempt_ids = select(CheckinAttempt.id).where(CheckinAttempt.person_id == person.id)
    image_ids = select(StoredImage.id).where(StoredImage.person_id == person.id)
    # one indexed lookup (ix_audit_events_target) per kind of target, joined: an OR of the four
    # made PostgreSQL walk the whole table by time (660 ms at 400,000 events, issue 18)
    matching = union_all(
        select(AuditEvent.id).where(
            AuditEvent.target_kind == "person", AuditEvent.target_id == person.id
        ),
        select(AuditEvent.id).where(
            AuditEvent.target_kind == "alert", AuditEvent.target_id.in_(alert_ids)
        ),
        select(AuditEvent.id).where(
            AuditEvent.target_kind == "checkin_attempt", AuditEvent.target_id.in_(attempt_ids)
        ),
        select(AuditEvent.id).where(
            AuditEvent.target_kind == "stored_image", AuditEvent.target_id.in_(image_ids)
        ),
    ).subquery()
    events = session.scalars(
        select(AuditEvent)
        .join(matching, matching.c.id == AuditEvent.id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
    staff_ids = {e.actor_id for e in events if e.actor_kind == "staff" and e.actor_id}
    names = dict(
        session.execute(
            select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(staff_ids))
        ).all()
    )
    rows = []
    for e in events:
        if e.actor_kind == "staff":
            actor = names.get(e.actor_id, f"staff #{e.actor_id}")
        else:
            actor = e.actor_kind + (f" #{e.actor_id}" if e.actor_id else "")
        rows.append(AuditRow(e, actor))
    return rows


def record_action(
    *,
    session: Session,
    staff: StaffUser,
    action: str,
    person: Person,
    now: datetime,
    ip: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session=session,
        actor_kind="staff",
        actor_id=staff.id,
        action=action,
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        ip=ip,
        at=now,
        details=details,
    )
