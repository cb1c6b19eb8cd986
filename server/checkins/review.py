"""Reviewing a failed or doubtful check-in (duyệt điểm danh): the queue of attempts a person
should look at, and the state machine of a reviewer's verdict — a compare-and-swap on the
attempt, the prompt moved with a compare-and-swap on its state, a ``failed_verification``
alert raised or resolved, the case audited — and learning the confirmed selfie as a template.

A reviewer's "not the same person" is a human decision; the machine's own decision alone
never penalises anyone (it only routes the attempt here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.alerts.service import AlertScopeError, AlertStateError, raise_alert, resolve_alert
from server.checkins.learning import learn_template
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core import audit
from server.core.enums import AlertKind, AlertState, AttemptDecision, PromptState
from server.people.enrolment import load_templates
from server.people.models import Person, StaffUser, StoredImage
from server.scope import person_ids_in_scope

#: Rejections that say something about the face; quality refusals ("too dark") are retaken by
#: the person and are only listed on request.
FACE_CODES = ("face_mismatch", "liveness_failed", "replayed_image")


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
            CheckinAttempt.person_id.in_(person_ids_in_scope(session=session, staff=staff)),
            CheckinAttempt.review_outcome.is_(None),
            or_(CheckinAttempt.decision == AttemptDecision.review, rejected),
        )
        .order_by(CheckinAttempt.received_at, CheckinAttempt.id)
        .limit(limit)
    )
    return [(a, p) for a, p in session.execute(query)]


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
    *,
    session: Session,
    settings: Any,
    staff: StaffUser,
    person: Person,
    attempt: CheckinAttempt,
    now: datetime,
    ip: str | None,
) -> bool:
    """After "same person": re-verify the stored selfie and keep it as a ``staff`` template
    when the face library agrees it adds something (``should_add_template(…,
    staff_confirmed=True)``: a review-band or matching face of enrolment quality, not a
    near-duplicate; :func:`server.checkins.learning.learn_template`), audited
    ``template.add_confirmed``. The caller commits (and keeps the review if this fails).
    Returns whether a template was added."""
    from server.face_verifier import get_verifier
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
    added = learn_template(
        session=session,
        settings=settings,
        verifier=verifier,
        person=person,
        templates=templates,
        result=result,
        image=image,
        source="staff",
        now=now,
        staff_confirmed=True,
    )
    if added:
        audit.record(
            session=session,
            actor_kind="staff",
            actor_id=staff.id,
            ip=ip,
            at=now,
            action="template.add_confirmed",
            target_kind="checkin_attempt",
            target_id=attempt.id,
            area_id=person.ward_id,
        )
    return added
