"""What the dashboard reads and decides: plain functions over a session, every query limited to
the caller's scope (:mod:`server.people.scope`). Callers answer "not found" when one of these
returns None; they never learn whether something exists outside their scope.

Scope, by role:

- administrator: everything;
- area staff: persons whose ward lies in their area's subtree, alerts raised in that subtree;
- doctor: the persons assigned to them (``Person.doctor_id``) and those persons' alerts.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from server import audit
from server.alerts.models import Alert
from server.audit import AuditEvent
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.declarations.models import Declaration
from server.enums import (
    AlertKind,
    AlertState,
    AreaKind,
    AttemptDecision,
    PromptState,
    RiskLevel,
    StaffRole,
)
from server.people.models import Area, FaceTemplate, Person, StaffUser, StoredImage
from server.people.scope import persons_in_scope, scope_root

#: Roles that manage people (enrol, review faces, change isolation); doctors follow patients.
MANAGERS = (StaffRole.admin, StaffRole.area_staff)
#: Rejections that say something about the face; quality refusals ("too dark") are retaken by
#: the person and are only listed on request.
FACE_CODES = ("face_mismatch", "liveness_failed", "replayed_image")
#: Sort order of risk levels, most urgent first.
RISK_ORDER = {RiskLevel.red: 4, RiskLevel.orange: 3, RiskLevel.yellow: 2, RiskLevel.green: 1}
#: Prompt states that count as "due" in compliance (cancelled and system-missed ones do not).
NOT_COUNTED = (PromptState.cancelled, PromptState.missed_system)


# --- scope ------------------------------------------------------------------------------


def is_manager(staff: StaffUser) -> bool:
    return staff.role in MANAGERS


def scoped_person_ids(*, session: Session, staff: StaffUser) -> Select:
    """``SELECT id`` of the persons ``staff`` may see (for ``IN (…)``)."""
    visible = persons_in_scope(session=session, staff=staff).subquery()
    return select(visible.c.id)


def alerts_in_scope(*, session: Session, staff: StaffUser) -> Select[tuple[Alert]]:
    """A ``select(Alert)`` limited to what ``staff`` may see: by the alert's ward for area
    staff (as :mod:`server.alerts.service` checks it), by assignment for doctors."""
    query = select(Alert)
    if staff.role is StaffRole.admin:
        return query
    if staff.role is StaffRole.doctor:
        return query.join(Person, Person.id == Alert.person_id).where(Person.doctor_id == staff.id)
    root = scope_root(session=session, staff=staff)
    if root is None:
        return query.where(false())
    return query.join(Area, Area.id == Alert.area_id).where(Area.path.startswith(root.path))


def alert_in_scope(*, session: Session, staff: StaffUser, alert_id: int) -> Alert | None:
    return session.scalar(alerts_in_scope(session=session, staff=staff).where(Alert.id == alert_id))


def areas_in_scope(*, session: Session, staff: StaffUser) -> list[Area]:
    """Areas ``staff`` may filter by (their subtree; all for administrators; none for doctors),
    ordered by path so a district comes before its wards."""
    if staff.role is StaffRole.doctor:
        return []
    query = select(Area).order_by(Area.path)
    if staff.role is not StaffRole.admin:
        root = scope_root(session=session, staff=staff)
        if root is None:
            return []
        query = query.where(Area.path.startswith(root.path))
    return list(session.scalars(query))


def area_for_filter(*, session: Session, staff: StaffUser, area_id: int | None) -> Area | None:
    """The area ``area_id`` if ``staff`` may filter by it, else None."""
    if area_id is None:
        return None
    for area in areas_in_scope(session=session, staff=staff):
        if area.id == area_id:
            return area
    return None


def attempt_in_scope(
    *, session: Session, staff: StaffUser, attempt_id: int
) -> tuple[CheckinAttempt, Person] | None:
    row = session.execute(
        select(CheckinAttempt, Person)
        .join(Person, Person.id == CheckinAttempt.person_id)
        .where(
            CheckinAttempt.id == attempt_id,
            CheckinAttempt.person_id.in_(scoped_person_ids(session=session, staff=staff)),
        )
    ).first()
    return (row[0], row[1]) if row else None


def image_in_scope(
    *, session: Session, staff: StaffUser, image_id: int
) -> tuple[StoredImage, Person] | None:
    row = session.execute(
        select(StoredImage, Person)
        .join(Person, Person.id == StoredImage.person_id)
        .where(
            StoredImage.id == image_id,
            StoredImage.purged_at.is_(None),
            StoredImage.person_id.in_(scoped_person_ids(session=session, staff=staff)),
        )
    ).first()
    return (row[0], row[1]) if row else None


def doctors_in_scope(*, session: Session, staff: StaffUser) -> list[StaffUser]:
    """Active doctors whose area lies in ``staff``'s scope (any doctor for administrators)."""
    query = select(StaffUser).where(
        StaffUser.role == StaffRole.doctor, StaffUser.is_active.is_(True)
    )
    if staff.role is not StaffRole.admin:
        root = scope_root(session=session, staff=staff)
        if root is None:
            return []
        query = query.join(Area, Area.id == StaffUser.area_id).where(
            Area.path.startswith(root.path)
        )
    return list(session.scalars(query.order_by(StaffUser.full_name)))


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


# --- failed check-in review -------------------------------------------------------------


def review_queue(
    *, session: Session, staff: StaffUser, include_quality: bool = False, limit: int = 200
) -> list[tuple[CheckinAttempt, Person]]:
    """Attempts a person should look at, oldest first: every ``review`` decision and the
    ``rejected`` ones about the face (all rejected ones with ``include_quality``), not yet
    reviewed, of persons in scope."""
    rejected = CheckinAttempt.decision == AttemptDecision.rejected
    if not include_quality:
        rejected = and_(rejected, CheckinAttempt.code.in_(FACE_CODES))
    query = (
        select(CheckinAttempt, Person)
        .join(Person, Person.id == CheckinAttempt.person_id)
        .where(
            CheckinAttempt.person_id.in_(scoped_person_ids(session=session, staff=staff)),
            CheckinAttempt.review_outcome.is_(None),
            or_(CheckinAttempt.decision == AttemptDecision.review, rejected),
        )
        .order_by(CheckinAttempt.received_at, CheckinAttempt.id)
        .limit(limit)
    )
    return [(a, p) for a, p in session.execute(query)]


def enrolment_images(*, session: Session, person: Person) -> list[StoredImage]:
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


class ReviewError(ValueError):
    """The attempt cannot be reviewed (``code``: ``already_reviewed`` / ``not_reviewable``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def review_attempt(
    *,
    session: Session,
    staff: StaffUser,
    attempt: CheckinAttempt,
    person: Person,
    same_person: bool,
    note: str,
    now: datetime,
    ip: str | None,
) -> dict[str, Any]:
    """Record a reviewer's verdict on a ``review``/``rejected`` attempt. The caller commits.

    1. Compare-and-swap the attempt (``review_outcome IS NULL``): outcome, reviewer, time,
       note. The machine's own decision and code stay in ``details`` (``machine_decision``,
       ``machine_code``) and ``score`` is kept, so the case serves later calibration.
    2. Same person: the attempt becomes ``verified``; its prompt, if ``failed`` or ``open``,
       becomes ``completed``; a ``failed_verification`` alert of that prompt is resolved with the
       reviewer's note.
       Not the same person: the attempt becomes ``rejected``; a prompt that this ``review``
       attempt had completed becomes ``failed``; a ``failed_verification`` alert is raised (or
       the existing one kept).
    3. Audit ``checkin.review`` with the outcome and the note.
    Returns what changed (for the audit details and the tests)."""
    if attempt.decision not in (AttemptDecision.review, AttemptDecision.rejected):
        raise ReviewError("not_reviewable")
    outcome = "same_person" if same_person else "not_same_person"
    details = {
        **(attempt.details or {}),
        "machine_decision": attempt.decision.value,
        "machine_code": attempt.code,
    }
    new_decision = AttemptDecision.verified if same_person else AttemptDecision.rejected
    won = session.execute(
        update(CheckinAttempt)
        .where(CheckinAttempt.id == attempt.id, CheckinAttempt.review_outcome.is_(None))
        .values(
            review_outcome=outcome,
            reviewed_by_id=staff.id,
            reviewed_at=now,
            review_note=note[:2000],
            decision=new_decision,
            details=details,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise ReviewError("already_reviewed")
    session.refresh(attempt)
    prompt = session.get(CheckinPrompt, attempt.prompt_id)
    changes: dict[str, Any] = {"outcome": outcome, "prompt_state": None, "alerts": []}
    if same_person:
        if prompt is not None:
            moved = session.execute(
                update(CheckinPrompt)
                .where(
                    CheckinPrompt.id == prompt.id,
                    CheckinPrompt.state.in_([PromptState.failed, PromptState.open]),
                )
                .values(state=PromptState.completed, closed_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            session.refresh(prompt)
            changes["prompt_state"] = prompt.state.value if moved else None
            changes["alerts"] = _resolve_failed_alerts(
                session=session, staff=staff, prompt=prompt, note=note, now=now, ip=ip
            )
    else:
        from server.alerts.service import raise_alert

        if prompt is not None and details["machine_decision"] == AttemptDecision.review.value:
            verified_other = session.scalar(
                select(func.count())
                .select_from(CheckinAttempt)
                .where(
                    CheckinAttempt.prompt_id == prompt.id,
                    CheckinAttempt.id != attempt.id,
                    CheckinAttempt.decision == AttemptDecision.verified,
                )
            )
            if not verified_other:
                moved = session.execute(
                    update(CheckinPrompt)
                    .where(
                        CheckinPrompt.id == prompt.id,
                        CheckinPrompt.state == PromptState.completed,
                    )
                    .values(state=PromptState.failed, closed_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                session.refresh(prompt)
                changes["prompt_state"] = prompt.state.value if moved else None
        key = (
            f"failed_verification:prompt:{prompt.id}"
            if prompt is not None
            else f"failed_verification:attempt:{attempt.id}"
        )
        alert, created = raise_alert(
            session=session,
            person=person,
            kind=AlertKind.failed_verification,
            now=now,
            dedupe_key=key,
            prompt_id=prompt.id if prompt else None,
            attempt_id=attempt.id,
            details={"review": outcome, "reviewed_by": staff.id},
        )
        changes["alerts"] = [{"id": alert.id, "created": created}]
    audit.record(
        session=session,
        actor_kind="staff",
        actor_id=staff.id,
        action="checkin.review",
        target_kind="checkin_attempt",
        target_id=attempt.id,
        area_id=person.ward_id,
        ip=ip,
        at=now,
        details={
            "outcome": outcome,
            "note": note[:2000],
            "machine_decision": details["machine_decision"],
            "machine_code": details["machine_code"],
            "score": attempt.score,
            **{k: v for k, v in changes.items() if k != "outcome"},
        },
    )
    return changes


def _resolve_failed_alerts(
    *, session: Session, staff: StaffUser, prompt: CheckinPrompt, note: str, now: datetime, ip
) -> list[dict[str, Any]]:
    from server.alerts.service import AlertScopeError, AlertStateError, resolve_alert

    done = []
    alerts = session.scalars(
        select(Alert).where(
            Alert.prompt_id == prompt.id,
            Alert.kind == AlertKind.failed_verification,
            Alert.state.in_([AlertState.open, AlertState.acknowledged]),
        )
    ).all()
    for alert in alerts:
        try:
            resolve_alert(
                session=session,
                alert_id=alert.id,
                staff=staff,
                now=now,
                note=f"[same_person] {note}",
                ip=ip,
            )
            done.append({"id": alert.id, "resolved": True})
        except (AlertScopeError, AlertStateError):
            done.append({"id": alert.id, "resolved": False})
    return done


def learn_confirmed_template(
    *, session: Session, settings: Any, person: Person, attempt: CheckinAttempt, now: datetime
) -> bool:
    """After "same person": re-verify the stored selfie and keep it as a ``staff`` template
    when the face library agrees it adds something (``should_add_template(…,
    staff_confirmed=True)``: a review-band or matching face of enrolment quality, not a
    near-duplicate). At most ``max_templates``: the oldest learned template makes room;
    enrolment templates always stay. Returns whether a template was added."""
    from server.faces import get_verifier
    from server.people.enrolment import add_template, load_templates
    from server.storage import image_store

    if attempt.image_id is None:
        return False
    image = session.get(StoredImage, attempt.image_id)
    if image is None or image.purged_at is not None:
        return False
    templates = load_templates(session=session, settings=settings, person=person)
    if not templates:
        return False
    verifier = get_verifier()
    result = verifier.verify(templates, image_store(settings).load(image.storage_key))
    if not verifier.should_add_template(result, templates, staff_confirmed=True):
        return False
    if len(templates) >= verifier.settings.max_templates:
        oldest = session.scalar(
            select(FaceTemplate)
            .where(FaceTemplate.person_id == person.id, FaceTemplate.source != "enrolment")
            .order_by(FaceTemplate.created_at, FaceTemplate.id)
            .limit(1)
        )
        if oldest is None:
            return False
        session.delete(oldest)
    add_template(
        session=session,
        settings=settings,
        person=person,
        template=result.candidate,
        source="staff",
        image=image,
        now=now,
    )
    return True


# --- persons ----------------------------------------------------------------------------


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
    visible = scoped_person_ids(session=session, staff=staff)
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


@dataclass
class Compliance:
    completed: int
    due: int

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.completed / self.due, 1) if self.due else None


def compliance(*, session: Session, person: Person, now: datetime) -> Compliance:
    """Prompts completed / prompts due so far (due time passed, or already answered);
    cancelled prompts and those missed while the scheduler was down do not count."""
    counted = and_(
        CheckinPrompt.person_id == person.id,
        CheckinPrompt.state.not_in(NOT_COUNTED),
        or_(CheckinPrompt.due_at <= now, CheckinPrompt.state == PromptState.completed),
    )
    due, done = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((CheckinPrompt.state == PromptState.completed, 1), else_=0)), 0
            ),
        ).where(counted)
    ).one()
    return Compliance(completed=int(done or 0), due=int(due or 0))


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


# --- statistics -------------------------------------------------------------------------


@dataclass
class StatRow:
    day: date
    area: Area | None  # None: the total over the areas shown
    monitored: int = 0
    due: int = 0
    completed: int = 0
    alerts: Counter = field(default_factory=Counter)
    ack_minutes: list[float] = field(default_factory=list)
    #: the median computed by the database (PostgreSQL), when it was
    ack_median_value: float | None = None

    @property
    def compliance(self) -> float | None:
        return round(100.0 * self.completed / self.due, 1) if self.due else None

    @property
    def ack_median(self) -> float | None:
        if self.ack_median_value is not None:
            return round(self.ack_median_value, 1)
        return round(statistics.median(self.ack_minutes), 1) if self.ack_minutes else None


@dataclass
class Stats:
    days: list[date]
    wards: list[Area]
    rows: list[StatRow]  # per ward and day, wards in path order, days ascending
    totals: list[StatRow]  # per day over every ward shown


def statistics_by_area(
    *,
    session: Session,
    staff: StaffUser,
    root: Area | None,
    days: int,
    now: datetime,
    zone: ZoneInfo,
) -> Stats:
    """Per ward (in ``root``'s subtree, within scope) and local day (the last ``days`` days,
    today included): people monitored (isolation overlapping the day), prompts due by now and
    completed, alerts raised by kind, minutes from raising to acknowledging (median).

    Finished days come from the daily rollup the scheduler keeps (``stats_daily``,
    :mod:`server.dashboard.rollup`) when it was taken after the day ended; the others (today,
    and any day not rolled up yet) are aggregated in SQL here (issue 18: the city's week was
    700,000 prompt rows carried into Python, 1.5 s at 10,000 persons)."""
    from server.dashboard.rollup import rolled_up_days

    today = now.astimezone(zone).date()
    day_list = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    wards = [a for a in areas_in_scope(session=session, staff=staff) if a.kind is AreaKind.ward]
    if root is not None:
        wards = [w for w in wards if w.path.startswith(root.path)]
    rows = {(d, w.id): StatRow(d, w) for w in wards for d in day_list}
    totals = {d: StatRow(d, None) for d in day_list}
    if not wards:
        return Stats(day_list, wards, [], list(totals.values()))
    rolled = rolled_up_days(session=session, wards=wards, days=day_list[:-1], zone=zone)
    # live from the first day without a complete rollup to today
    first_live = next((i for i, d in enumerate(day_list) if d not in rolled), len(day_list) - 1)
    for d in day_list[:first_live]:
        for ward_id, r in rolled[d].items():
            row, total = rows[(d, ward_id)], totals[d]
            for target in (row, total):
                target.monitored += r.monitored
                target.due += r.due
                target.completed += r.completed
                target.alerts.update(r.alerts or {})
                target.ack_minutes.extend(r.ack_minutes or [])
    aggregate_days(
        session=session,
        ward_ids=[w.id for w in wards],
        day_list=day_list[first_live:],
        now=now,
        zone=zone,
        rows=rows,
        totals=totals,
        median_in_sql=session.get_bind().dialect.name == "postgresql",
    )
    ordered = [rows[(d, w.id)] for w in wards for d in day_list]
    return Stats(day_list, wards, ordered, [totals[d] for d in day_list])


def aggregate_days(
    *,
    session: Session,
    ward_ids: list[int],
    day_list: list[date],
    now: datetime,
    zone: ZoneInfo,
    rows: dict[tuple[date, int], StatRow],
    totals: dict[date, StatRow],
    median_in_sql: bool,
) -> None:
    """Add the statistics of the consecutive local days ``day_list`` for ``ward_ids`` to
    ``rows`` (by (day, ward id)) and ``totals`` (by day), aggregated in SQL, grouped by ward and
    day: a day is the index of the first local midnight after the moment (a ``CASE`` over the
    boundaries, computed here in the zone, so daylight-saving days are right on every backend).
    ``median_in_sql``: the acknowledgement median by ``percentile_cont`` (PostgreSQL); else the
    minutes are collected in ``ack_minutes`` (SQLite has no median; the rollup keeps them)."""
    if not day_list or not ward_ids:
        return
    days = len(day_list)
    bounds = [datetime.combine(d, datetime.min.time(), tzinfo=zone) for d in day_list]
    bounds.append(
        datetime.combine(day_list[-1] + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    )
    start, end = bounds[0], bounds[-1]

    def day_of(column):
        return case(*[(column < bounds[i + 1], i) for i in range(days)], else_=days - 1)

    def add(index: int, ward_id: int, fn) -> None:
        day = day_list[index]
        if (day, ward_id) in rows:
            fn(rows[(day, ward_id)])
            fn(totals[day])

    overlaps = [
        func.sum(
            case((and_(Person.isolation_start < bounds[i + 1], Person.isolation_end >= bounds[i]),
                  1), else_=0)
        )
        for i in range(days)
    ]  # fmt: skip
    for ward_id, *counts in session.execute(
        select(Person.ward_id, *overlaps)
        .where(Person.ward_id.in_(ward_ids))
        .where(Person.isolation_start < end, Person.isolation_end >= start)
        .group_by(Person.ward_id)
    ):
        for i, n in enumerate(counts):
            if n:
                add(i, ward_id, lambda r, n=int(n): setattr(r, "monitored", r.monitored + n))
    day = day_of(CheckinPrompt.due_at).label("day")
    for ward_id, index, due, done in session.execute(
        select(
            Person.ward_id,
            day,
            func.count(),
            func.sum(case((CheckinPrompt.state == PromptState.completed, 1), else_=0)),
        )
        .join(Person, Person.id == CheckinPrompt.person_id)
        .where(
            Person.ward_id.in_(ward_ids),
            CheckinPrompt.due_at >= start,
            CheckinPrompt.due_at < end,
            CheckinPrompt.state.not_in(NOT_COUNTED),
            or_(CheckinPrompt.due_at <= now, CheckinPrompt.state == PromptState.completed),
        )
        .group_by(Person.ward_id, day)
    ):

        def bump(r: StatRow, due: int = int(due), done: int = int(done or 0)) -> None:
            r.due += due
            r.completed += done

        add(index, ward_id, bump)
    in_period = (
        Alert.area_id.in_(ward_ids), Alert.created_at >= start, Alert.created_at < end
    )  # fmt: skip
    day = day_of(Alert.created_at).label("day")
    for ward_id, index, kind, n in session.execute(
        select(Alert.area_id, day, Alert.kind, func.count())
        .where(*in_period)
        .group_by(Alert.area_id, day, Alert.kind)
    ):
        # Counter.update adds: the day's total sums its wards
        add(index, ward_id, lambda r, k=kind.value, n=int(n): r.alerts.update({k: n}))
    acked = (*in_period, Alert.acknowledged_at.is_not(None))
    if median_in_sql:
        minutes = func.extract("epoch", Alert.acknowledged_at - Alert.created_at) / 60
        median = func.percentile_cont(0.5).within_group(minutes)
        for ward_id, index, value in session.execute(
            select(Alert.area_id, day, median).where(*acked).group_by(Alert.area_id, day)
        ):
            rows[(day_list[index], ward_id)].ack_median_value = float(value)
        for index, value in session.execute(select(day, median).where(*acked).group_by(day)):
            totals[day_list[index]].ack_median_value = float(value)
    else:
        for ward_id, index, created_at, acked_at in session.execute(
            select(Alert.area_id, day, Alert.created_at, Alert.acknowledged_at).where(*acked)
        ):
            value = (acked_at - created_at).total_seconds() / 60
            add(index, ward_id, lambda r, v=value: r.ack_minutes.append(v))


def alert_kind_series(stats: Stats) -> dict[str, list[int]]:
    """Alerts per kind per day (totals), for the stacked bar chart."""
    series: dict[str, list[int]] = defaultdict(list)
    for kind in AlertKind:
        for row in stats.totals:
            series[kind.value].append(row.alerts.get(kind.value, 0))
    return dict(series)
