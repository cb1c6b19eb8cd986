"""Judging a selfie: what the face library says, as a :class:`Verdict`, and the retake policy
between judging and writing the verdict (:func:`server.checkins.service.apply_verdict`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.config import Settings
from server.core.enums import AttemptDecision
from server.core.errors import Unavailable
from server.core.geo import outside_geofence
from server.core.jsonsafe import json_safe
from server.people.models import Person

#: Library codes meaning the upload itself is unusable: answered as 4xx problems.
BAD_IMAGE_STATUS = {
    "image_empty": 422,
    "image_unreadable": 422,
    "unsupported_format": 415,
    "image_too_large": 413,
}


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
    upload: Any,  # server.checkins.service.Upload
    challenge: dict[str, Any] | None,
    hashes: list[str],
) -> Verdict:
    """Step 2: what the face library says, as a verdict. Never raises for bad input."""
    from server.face_verifier import server_fault
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
            raise Unavailable("service_unavailable", retry_after_s=60) from exc
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


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
