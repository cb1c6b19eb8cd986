"""Selfie check-ins (điểm danh bằng khuôn mặt): finding the open prompt, storing the upload,
judging it, and moving the prompt.

The order matters (ARCHITECTURE.md, issue 4):

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

from server import audit
from server.alerts.service import raise_alert
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.config import Settings
from server.enums import AlertKind, AttemptDecision, ImageKind, PromptState
from server.errors import ApiError
from server.geo import haversine_m, outside_geofence
from server.jsonsafe import json_safe
from server.people.enrolment import (
    add_template,
    keep_perceptual_hashes,
    store_image,
)
from server.people.models import Device, FaceTemplate, Person, StoredImage
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
#: Library codes meaning the upload itself is unusable: answered as 4xx problems.
BAD_IMAGE_STATUS = {
    "image_empty": 422,
    "image_unreadable": 422,
    "unsupported_format": 415,
    "image_too_large": 413,
}


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
    """The prompt ``nonce`` belongs to, if the person may still answer it (409 problems say
    why not; an unknown nonce, or another person's, is ``invalid_nonce``)."""
    prompt = session.scalar(
        select(CheckinPrompt).where(
            CheckinPrompt.person_id == person.id, CheckinPrompt.nonce == nonce
        )
    )
    if prompt is None:
        raise ApiError("invalid_nonce", 400)
    if prompt.state in CLOSED_CODES:
        raise ApiError(CLOSED_CODES[prompt.state], 409)
    if now < prompt.opens_at:
        raise ApiError("window_not_open", 409, extra={"opens_at": prompt.opens_at.isoformat()})
    if now >= prompt.due_at + LATE_GRACE:
        raise ApiError("window_closed", 409, extra={"due_at": prompt.due_at.isoformat()})
    if attempts_left(prompt) <= 0:
        raise ApiError("attempts_exhausted", 409)
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
        raise ApiError("checkin_in_progress", 409, headers={"Retry-After": "2"}) from exc
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


@dataclass
class Verdict:
    decision: AttemptDecision
    code: str
    score: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    result: Any = None  # the library's Result, when there is one
    bad_image_status: int | None = None


def judge(
    *,
    verifier: Any,
    templates: list[Any],
    upload: Upload,
    challenge: dict[str, Any] | None,
    hashes: list[str],
) -> Verdict:
    """Step 2: what the face library says, as a verdict. Never raises for bad input."""
    from server.faces import server_fault
    from verification import VerificationError

    if not templates:
        # Our enrolment gap, not the person's fault: a human looks.
        return Verdict(AttemptDecision.review, "no_templates")
    try:
        result = verifier.verify(templates, upload.image, previous_hashes=hashes)
        if challenge and result.decision == "match":
            live = verifier.check_liveness(templates, challenge, upload.frames)
            if live.decision != "match":
                # The face matched but the motion was not seen: a human looks (our liveness
                # check is offline and landmark-based; it must never alone fail a person).
                verdict = _verdict_of(live)
                verdict.decision = AttemptDecision.review
                verdict.result = result  # keep the selfie's own hashes
                return verdict
    except VerificationError as exc:
        if server_fault(exc):  # our fault, never the person's
            raise ApiError("service_unavailable", 503, headers={"Retry-After": "60"}) from exc
        return Verdict(
            AttemptDecision.rejected,
            exc.code,
            details=json_safe(exc.details),
            bad_image_status=BAD_IMAGE_STATUS.get(exc.code),
        )
    return _verdict_of(result)


RETAKE_CODE = "retake_requested"


def with_retake(
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
) -> Verdict:
    """The retake policy, between judging a selfie and writing its verdict.

    - A selfie whose face landed in the review band (``face_review``), while the window is open
      and no retake was asked for this prompt yet, becomes ``retake_requested``: not counted, the
      prompt stays open, the phone asks for one more selfie at once.
    - The next face-judged selfie of that prompt is decided with the first one
      (:meth:`verification.Verifier.decide_retake`): a match, or a review. A presentation-attack
      suspicion, a replay (sending the first capture again), a liveness or location problem keep
      their own verdict.
    A retake is asked at most once per prompt, so a check-in is decided after two captures.
    """
    if not settings.checkin_retake or verdict.result is None:
        return verdict
    first = session.scalar(
        select(CheckinAttempt)
        .where(
            CheckinAttempt.prompt_id == prompt.id,
            CheckinAttempt.code == RETAKE_CODE,
            CheckinAttempt.id != attempt.id,
        )
        .order_by(CheckinAttempt.id)
        .limit(1)
    )
    if first is None:
        outside = attempt.distance_from_home_m is not None and outside_geofence(
            distance_m=attempt.distance_from_home_m,
            radius_m=person.geofence_radius_m,
            accuracy_m=attempt.accuracy_m or 0.0,
        )
        if verdict.code == "face_review" and now < prompt.due_at and not outside:
            return Verdict(
                AttemptDecision.rejected,
                RETAKE_CODE,
                score=verdict.score,
                details={**verdict.details, "retake": "requested"},
                result=verdict.result,
            )
        return verdict
    if verdict.code not in ("face_review", "face_mismatch") or first.score is None:
        return verdict
    second = verdict.score if verdict.score is not None else float("inf")
    decision, code = verifier.decide_retake(first.score, second, templates=len(templates))
    details = {
        **verdict.details,
        "retake": {
            "first_attempt_id": first.id,
            "first": first.score,
            "second": second,
            "face_code": verdict.code,
        },
    }
    mapped = AttemptDecision.verified if decision == "match" else AttemptDecision.review
    # the result stays the second capture's own: only a capture that matched alone is learned
    return Verdict(mapped, code, score=verdict.score, details=details, result=verdict.result)


def _verdict_of(result: Any) -> Verdict:
    decision = {
        "match": AttemptDecision.verified,
        "review": AttemptDecision.review,
    }.get(result.decision, AttemptDecision.rejected)
    return Verdict(
        decision,
        result.code,
        score=_float(getattr(result, "distance", None)),
        details=json_safe(result.to_dict()),
        result=result,
    )


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
        _maybe_learn_template(
            templates=templates,
            session=session,
            settings=settings,
            verifier=verifier,
            person=person,
            attempt=attempt,
            result=verdict.result,
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


def _maybe_learn_template(
    *,
    templates: list[Any],
    session: Session,
    settings: Settings,
    verifier: Any,
    person: Person,
    attempt: CheckinAttempt,
    result: Any,
    now: datetime,
) -> None:
    """Keep a confident, good-quality selfie as an extra template (measured to raise genuine
    acceptance without raising false matches: docs/verification.md). At most
    ``max_templates`` per person; the oldest learned one makes room, enrolment photos stay."""
    if not verifier.should_add_template(result, templates):
        return
    if len(templates) >= verifier.settings.max_templates:
        oldest_learned = session.scalar(
            select(FaceTemplate)
            .where(FaceTemplate.person_id == person.id, FaceTemplate.source != "enrolment")
            .order_by(FaceTemplate.created_at, FaceTemplate.id)
            .limit(1)
        )
        if oldest_learned is None:
            return  # only enrolment templates, and they always stay
        session.delete(oldest_learned)
    add_template(
        session=session,
        settings=settings,
        person=person,
        template=result.candidate,
        source="checkin",
        image=attempt.image,
        now=now,
    )


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
