"""Selfie check-ins (điểm danh bằng khuôn mặt): finding the open prompt, storing the upload,
judging it, and moving the prompt.

The order matters (docs/architecture.md, issue 4):

1. the upload is stored, encrypted, with its hashes, and an attempt row written and committed —
   nothing a person sent is ever lost, whatever happens next;
2. the face is verified in the request (the person needs an answer now);
3. the verdict is written with a compare-and-swap on the attempt (``decision IS NULL``), so a
   retried upload or a second worker can never count one upload twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from server.alerts.service import raise_alert
from server.checkins.judging import RETAKE_CODE, Verdict
from server.checkins.learning import learn_template
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.config import Settings
from server.core import audit
from server.core.enums import AlertKind, AttemptDecision, ImageKind, PromptState
from server.core.errors import Conflict, InvalidRequest
from server.core.geo import haversine_m, outside_geofence
from server.people.enrolment import keep_perceptual_hashes, store_image
from server.people.models import Device, Person, StoredImage
from server.storage import ImageStore

log = logging.getLogger("isocheck.checkins")

#: An upload received this long after ``due_at`` still counts: mobile networks are slow and the
#: person pressed the button in time. Anything later is ``window_closed``.
LATE_GRACE = timedelta(seconds=120)
#: Prompt states the person can no longer answer, and the code each answers with.
CLOSED_CODES = {
    PromptState.completed: "already_checked_in",
    PromptState.failed: "attempts_exhausted",
    PromptState.missed: "window_closed",
    PromptState.missed_system: "window_closed",
    PromptState.cancelled: "window_closed",
}
#: Codes of an attempt judged after its prompt had been decided by a parallel upload.
LATE_CODES = frozenset(CLOSED_CODES.values())
#: Verification outcomes that say something about identity and so use up an attempt. Refusals of
#: image quality ("too dark, retake") do not: they test nothing and must not push anyone to fail.
COUNTED_CODES = frozenset({"face_mismatch", "replayed_image", "liveness_failed", "outside_home"})


@dataclass
class Upload:
    image: bytes
    content_type: str | None
    nonce: str
    latitude: float
    longitude: float
    accuracy_m: float
    captured_at: datetime | None
    frames: list[bytes] = field(default_factory=list)


def current_prompt(*, session: Session, person: Person, now: datetime) -> CheckinPrompt | None:
    """The prompt the person should answer now: open (or due to open) and not past due."""
    return session.scalar(
        select(CheckinPrompt)
        .where(
            CheckinPrompt.person_id == person.id,
            CheckinPrompt.state.in_([PromptState.open, PromptState.planned]),
            CheckinPrompt.opens_at <= now,
            CheckinPrompt.due_at > now,
        )
        .order_by(CheckinPrompt.due_at)
        .limit(1)
    )


def attempts_left(prompt: CheckinPrompt) -> int:
    return max(prompt.max_attempts - prompt.attempts_used, 0)


def find_prompt_for_upload(
    *, session: Session, person: Person, nonce: str, now: datetime
) -> CheckinPrompt:
    """The prompt ``nonce`` belongs to, if the person may still answer it (:class:`Conflict` says
    why not; an unknown nonce, or another person's, is ``invalid_nonce``)."""
    prompt = session.scalar(
        select(CheckinPrompt).where(
            CheckinPrompt.person_id == person.id, CheckinPrompt.nonce == nonce
        )
    )
    if prompt is None:
        raise InvalidRequest("invalid_nonce")
    if prompt.state in CLOSED_CODES:
        raise Conflict(CLOSED_CODES[prompt.state])
    if now < prompt.opens_at:
        raise Conflict("window_not_open", extra={"opens_at": prompt.opens_at.isoformat()})
    if now >= prompt.due_at + LATE_GRACE:
        raise Conflict("window_closed", extra={"due_at": prompt.due_at.isoformat()})
    if attempts_left(prompt) <= 0:
        raise Conflict("attempts_exhausted")
    return prompt


def record_upload(
    *,
    session: Session,
    store: ImageStore,
    person: Person,
    device: Device,
    prompt: CheckinPrompt,
    upload: Upload,
    idempotency_key: str | None,
    now: datetime,
) -> CheckinAttempt:
    """Step 1: keep the selfie (encrypted) and an undecided attempt. The caller commits."""
    image = store_image(
        session=session,
        store=store,
        person=person,
        kind=ImageKind.selfie,
        data=upload.image,
        content_type=upload.content_type,
        now=now,
    )
    # no confirmed home yet (issue 19: taken from the phone, awaiting staff): nothing to judge
    distance = (
        None
        if person.home_source == "pending"
        else haversine_m(upload.latitude, upload.longitude, person.home_lat, person.home_lon)
    )
    attempt = CheckinAttempt(
        image=image,
        prompt_id=prompt.id,
        person_id=person.id,
        device_id=device.id,
        idempotency_key=idempotency_key,
        image_id=image.id,
        received_at=now,
        captured_at=upload.captured_at,
        latitude=upload.latitude,
        longitude=upload.longitude,
        accuracy_m=upload.accuracy_m,
        distance_from_home_m=None if distance is None else round(distance, 1),
    )
    session.add(attempt)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent retry with the same Idempotency-Key won
        store.delete(image.storage_key)
        raise Conflict("checkin_in_progress", retry_after_s=2) from exc
    return attempt


def previous_hashes(*, session: Session, person: Person) -> list[str]:
    """Tagged hashes (``sha256:``, ``phash:``, ``fphash:``) of every accepted selfie of the
    person: a new selfie that copies one of them is a replay. (The enrolment photos' hashes travel
    inside their templates.)"""
    accepted_selfies = select(CheckinAttempt.image_id).where(
        CheckinAttempt.person_id == person.id,
        or_(
            CheckinAttempt.decision.in_([AttemptDecision.verified, AttemptDecision.review]),
            # the first capture of a retake: sending it again is not a second capture
            CheckinAttempt.code == RETAKE_CODE,
        ),
    )
    rows = session.execute(
        select(StoredImage.sha256, StoredImage.phash, StoredImage.face_phash).where(
            StoredImage.person_id == person.id,
            StoredImage.purged_at.is_(None),
            or_(
                StoredImage.kind == ImageKind.enrolment.value,
                StoredImage.id.in_(accepted_selfies),
            ),
        )
    ).all()
    hashes: list[str] = []
    for sha, phash, face_phash in rows:
        hashes.append(f"sha256:{sha}")
        if phash:
            hashes.append(f"phash:{phash}")
        if face_phash:
            hashes.append(f"fphash:{face_phash}")
    return hashes


def apply_verdict(
    *,
    session: Session,
    settings: Settings,
    verifier: Any,
    person: Person,
    prompt: CheckinPrompt,
    attempt: CheckinAttempt,
    verdict: Verdict,
    templates: list[Any],
    now: datetime,
    store: ImageStore | None = None,
) -> bool:
    """Step 3: write the verdict and move the prompt. Returns False when another request had
    already decided this attempt (then nothing is changed).

    1. CAS the attempt from undecided to the verdict.
    2. A location outside home turns a would-be success into ``outside_home`` and raises an
       ``outside_home`` alert at once (even when the face matches).
    3. A counted refusal uses up an attempt; the last one fails the prompt and raises a
       ``failed_verification`` alert for the ward.
    4. ``verified`` and ``review`` complete the prompt: a doubtful match goes to a human, never
       straight to a penalty.
    """
    if (
        verdict.decision is not AttemptDecision.rejected
        and attempt.distance_from_home_m is not None
        and outside_geofence(
            distance_m=attempt.distance_from_home_m,
            radius_m=person.geofence_radius_m,
            accuracy_m=attempt.accuracy_m or 0.0,
        )
    ):
        verdict.details["face_decision"] = verdict.decision.value
        verdict.decision, verdict.code = AttemptDecision.rejected, "outside_home"
    counted = verdict.decision is AttemptDecision.rejected and verdict.code in COUNTED_CODES
    decided = {
        "decision": verdict.decision,
        "code": verdict.code,
        "score": verdict.score,
        "details": {**verdict.details, "counted": counted},
    }
    won = session.execute(
        update(CheckinAttempt)
        .where(CheckinAttempt.id == attempt.id, CheckinAttempt.decision.is_(None))
        .values(**decided)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        return False

    # The prompt's outcome, by one compare-and-swap in the same transaction (issue 13, finding
    # 1): parallel uploads all passed ``find_prompt_for_upload`` before any was judged, so only
    # the prompt row can say whether this verdict still counts. On PostgreSQL the UPDATE takes
    # the row lock and re-checks its WHERE after a concurrent writer commits; SQLite serialises
    # writers. A verdict that comes too late is kept as a refusal that counts nothing.
    live = CheckinPrompt.state.in_([PromptState.open, PromptState.planned])
    failed_now = False
    if verdict.decision in (AttemptDecision.verified, AttemptDecision.review):
        judged = (
            session.execute(
                update(CheckinPrompt)
                .where(CheckinPrompt.id == prompt.id, live)
                # a verified answer is an attempt used too (history showed attempts_used 0 after
                # a verified check-in); a review uses none (docs/api.md)
                .values(
                    state=PromptState.completed,
                    closed_at=now,
                    attempts_used=CheckinPrompt.attempts_used
                    + (1 if verdict.decision is AttemptDecision.verified else 0),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            == 1
        )
    elif counted:
        row = session.execute(
            update(CheckinPrompt)
            .where(
                CheckinPrompt.id == prompt.id,
                live,
                CheckinPrompt.attempts_used < CheckinPrompt.max_attempts,
            )
            .values(
                attempts_used=CheckinPrompt.attempts_used + 1,
                state=case(
                    (
                        CheckinPrompt.attempts_used + 1 >= CheckinPrompt.max_attempts,
                        PromptState.failed.value,
                    ),
                    else_=CheckinPrompt.state,
                ),
                closed_at=case(
                    (
                        CheckinPrompt.attempts_used + 1 >= CheckinPrompt.max_attempts,
                        literal(now, CheckinPrompt.closed_at.type),
                    ),
                    else_=CheckinPrompt.closed_at,
                ),
            )
            .returning(CheckinPrompt.attempts_used, CheckinPrompt.max_attempts)
            .execution_options(synchronize_session=False)
        ).first()
        judged = row is not None
        failed_now = judged and row[0] >= row[1]
    else:
        judged = True  # an unusable image: nothing about the prompt changes
    if not judged:
        session.refresh(prompt)
        late_code = CLOSED_CODES.get(prompt.state, "attempts_exhausted")
        decided = {
            "decision": AttemptDecision.rejected,
            "code": late_code,
            "score": verdict.score,
            "details": {**verdict.details, "counted": False, "late_verdict": verdict.code},
        }
        session.execute(
            update(CheckinAttempt)
            .where(CheckinAttempt.id == attempt.id)
            .values(**decided)
            .execution_options(synchronize_session=False)
        )
    for key, value in decided.items():  # what the row now holds, without another SELECT
        set_committed_value(attempt, key, value)
    if not judged:
        return True
    if verdict.bad_image_status and attempt.image is not None and store is not None:
        # Refused as unusable: nothing refused is kept for display (issue 13, finding 3).
        store.delete(attempt.image.storage_key)
        attempt.image.purged_at = now
    if verdict.result is not None and attempt.image is not None:
        keep_perceptual_hashes(attempt.image, verdict.result)

    if verdict.code == "outside_home":
        raise_alert(
            session=session,
            person=person,
            kind=AlertKind.outside_home,
            now=now,
            dedupe_key=f"outside_home:prompt:{prompt.id}",
            prompt_id=prompt.id,
            attempt_id=attempt.id,
            details={"distance_m": attempt.distance_from_home_m, "accuracy_m": attempt.accuracy_m},
        )

    if verdict.decision is AttemptDecision.verified and verdict.result is not None:
        learn_template(
            session=session,
            settings=settings,
            verifier=verifier,
            person=person,
            templates=templates,
            result=verdict.result,
            image=attempt.image,
            source="checkin",
            now=now,
        )
    if failed_now:
        raise_alert(
            session=session,
            person=person,
            kind=AlertKind.failed_verification,
            now=now,
            dedupe_key=f"failed_verification:prompt:{prompt.id}",
            prompt_id=prompt.id,
            attempt_id=attempt.id,
            details={"last_code": verdict.code},
        )
    session.refresh(prompt)  # the truth after concurrent uploads, for the answer
    audit.record(
        session=session,
        actor_kind="device",
        actor_id=attempt.device_id,
        action="checkin.judged",
        target_kind="checkin_attempt",
        target_id=attempt.id,
        area_id=person.ward_id,
        at=now,
        details={"decision": verdict.decision.value, "code": verdict.code},
    )
    return True
