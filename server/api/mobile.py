"""The phone app's API (``/api/v1``): activation, own person, prompts, selfie check-ins.

A device token sees only its own person; anything else is ``404``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated

from flask import Blueprint, g, jsonify, request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from server.api.serialize import attempt_json, iso, person_summary, prompt_json
from server.checkins import judging
from server.checkins import service as checkins
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import AttemptDecision, PromptState
from server.face_verifier import get_verifier
from server.http.auth import device_required
from server.http.context import ctx, db_session
from server.http.limits import per_device, per_device_judged, per_ip
from server.http.observability import CHECKINS, VERIFY_SECONDS
from server.http.problem import ApiError, request_language
from server.http.validation import field_error, json_body, validate
from server.people import home
from server.people.enrolment import activate_device, load_templates
from server.people.schemas import (
    ActivationRequest,
    HomePosition,
    PushTokenUpdate,
    plausible_moment,
)
from server.storage import image_store

bp = Blueprint("mobile", __name__, url_prefix="/api/v1")

#: Challenge frames accepted with one check-in.
MAX_FRAMES = 8
#: An attempt still undecided this long after it was recorded lost its worker (a check-in is
#: judged in well under a second): a retry with its Idempotency-Key judges the stored selfie.
STALE_UNDECIDED = timedelta(seconds=30)


@bp.post("/devices/activate")
@per_ip("rate_limit_activation")
def activate():
    """activateDevice: trade a one-time activation code for this phone's bearer token."""
    body = json_body(ActivationRequest)
    s = db_session()
    device, person, token = activate_device(
        session=s,
        code=body.code,
        now=ctx().clock.now(),
        platform=body.platform,
        push_token=body.push_token,
        secret=ctx().settings.secret_key,
    )
    if body.home is not None:  # "I am at home now": proposed as home, staff confirm (issue 19)
        home.propose(
            session=s, person=person, position=body.home, now=ctx().clock.now(),
            device_id=device.id,
        )
    s.commit()
    return jsonify(
        token=token,
        token_type="Bearer",  # noqa: S106 - the scheme's name, not a secret
        device_id=device.id,
        person=person_summary(person),
    ), 201


@bp.put("/me/push-token")
@device_required
@per_device("rate_limit_device")
def update_push_token():
    """updatePushToken: the FCM/APNs token changed (reinstall, token refresh)."""
    body = json_body(PushTokenUpdate)
    device, _person = g.device
    device.push_token = body.push_token
    if body.platform:
        device.platform = body.platform
    db_session().commit()
    return "", 204


@bp.put("/me/home-position")
@device_required
@per_device("rate_limit_device")
def propose_home_position():
    """proposeHomePosition: "I am at home now" — the phone's position, kept as the proposed home
    of a person enrolled without coordinates until staff confirm it (issue 19); a confirmed home
    is never moved by the phone."""
    body = json_body(HomePosition)
    device, person = g.device
    s = db_session()
    status = home.propose(
        session=s, person=person, position=body, now=ctx().clock.now(), device_id=device.id
    )
    s.commit()
    return jsonify(home_position=status)


@bp.get("/me")
@device_required
@per_device("rate_limit_device")
def get_me():
    """getMe: the phone's own person."""
    _device, person = g.device
    db_session().commit()  # last_seen_at
    return jsonify(person_summary(person))


@bp.get("/me/prompt")
@device_required
@per_device("rate_limit_device")
def get_current_prompt():
    """getCurrentPrompt: the open prompt (nonce, due time, attempts left, challenge) or null,
    with the time the next one opens."""
    _device, person = g.device
    s = db_session()
    now = ctx().clock.now()
    prompt = checkins.current_prompt(session=s, person=person, now=now)
    upcoming = s.scalar(
        select(CheckinPrompt.opens_at)
        .where(
            CheckinPrompt.person_id == person.id,
            CheckinPrompt.state == PromptState.planned,
            CheckinPrompt.opens_at > now,
        )
        .order_by(CheckinPrompt.opens_at)
        .limit(1)
    )
    s.commit()
    return jsonify(
        prompt=prompt_json(prompt, now) if prompt else None,
        next_opens_at=iso(upcoming),
        server_time=iso(now),
    )


class CheckinForm(BaseModel):
    """The multipart fields that come with a selfie."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    nonce: str = Field(min_length=8, max_length=64)
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)]
    captured_at: AwareDatetime | None = None

    # checked before the selfie is stored, so a refused form leaves no orphan file
    _captured_at_range = field_validator("captured_at")(plausible_moment)


@bp.post("/me/checkins")
@device_required
@per_device_judged("rate_limit_checkin")
def submit_checkin():
    """submitCheckin: a selfie (+ challenge frames), the prompt's nonce and the GPS fix.

    A repeated request with the same ``Idempotency-Key`` returns the first answer and costs no
    second attempt."""
    device, person = g.device
    s = db_session()
    settings = ctx().settings
    now = ctx().clock.now()
    lang = request_language()
    key = (request.headers.get("Idempotency-Key") or "").strip() or None
    if key is not None and len(key) > 128:
        raise ApiError(
            "validation_error",
            422,
            extra={"errors": [field_error("Idempotency-Key", "at_most_chars", n=128)]},
        )

    if key is not None:
        earlier = s.scalar(
            select(CheckinAttempt).where(
                CheckinAttempt.device_id == device.id, CheckinAttempt.idempotency_key == key
            )
        )
        if earlier is not None:
            prompt = s.get(CheckinPrompt, earlier.prompt_id)
            if earlier.decision is None:
                if now - earlier.received_at < STALE_UNDECIDED:  # still being judged
                    raise ApiError("checkin_in_progress", 409, headers={"Retry-After": "2"})
                # The worker judging it died (killed, restarted): the selfie was kept, so judge
                # it now. The compare-and-swap on the attempt keeps this safe against a race.
                return _judge_and_answer(s, person, prompt, earlier, _stored_upload(earlier), lang)
            return _answer(earlier, prompt, lang, replayed=True)

    if not request.mimetype or request.mimetype != "multipart/form-data":
        raise ApiError("unsupported_media_type", 415)
    selfie = request.files.get("selfie")
    if selfie is None:
        raise ApiError(
            "validation_error",
            422,
            extra={"errors": [field_error("selfie", "selfie_required")]},
        )
    form = validate(CheckinForm, request.form.to_dict())
    frames = [f.read() for f in request.files.getlist("frames")]
    if len(frames) > MAX_FRAMES:
        raise ApiError(
            "validation_error",
            422,
            extra={"errors": [field_error("frames", "at_most_frames", n=MAX_FRAMES)]},
        )
    upload = checkins.Upload(
        image=selfie.read(),
        content_type=selfie.mimetype,
        nonce=form.nonce,
        latitude=form.latitude,
        longitude=form.longitude,
        accuracy_m=form.accuracy_m,
        captured_at=form.captured_at,
        frames=frames,
    )

    prompt = checkins.find_prompt_for_upload(session=s, person=person, nonce=form.nonce, now=now)
    # 1. keep the upload before judging it
    attempt = checkins.record_upload(
        session=s,
        store=image_store(settings),
        person=person,
        device=device,
        prompt=prompt,
        upload=upload,
        idempotency_key=key,
        now=now,
    )
    s.commit()
    return _judge_and_answer(s, person, prompt, attempt, upload, lang)


def _stored_upload(attempt: CheckinAttempt) -> checkins.Upload:
    """An undecided attempt's upload as it was kept (challenge frames are not kept: a challenge
    then goes to review, never to a refusal)."""
    image = attempt.image
    return checkins.Upload(
        image=image_store(ctx().settings).load(image.storage_key),
        content_type=image.content_type,
        nonce="",
        latitude=attempt.latitude,
        longitude=attempt.longitude,
        accuracy_m=attempt.accuracy_m or 0.0,
        captured_at=attempt.captured_at,
    )


def _judge_and_answer(s, person, prompt, attempt, upload, lang: str):
    """Steps 2 and 3 of a check-in, for a recorded (committed, undecided) attempt."""
    settings = ctx().settings
    now = ctx().clock.now()
    verifier = get_verifier()
    templates = load_templates(session=s, settings=settings, person=person)
    started = time.perf_counter()
    verdict = judging.judge(
        verifier=verifier,
        templates=templates,
        upload=upload,
        challenge=prompt.challenge,
        hashes=checkins.previous_hashes(session=s, person=person),
    )
    VERIFY_SECONDS.observe(time.perf_counter() - started)
    verdict = judging.with_retake(
        session=s,
        settings=settings,
        verifier=verifier,
        person=person,
        prompt=prompt,
        attempt=attempt,
        verdict=verdict,
        templates=templates,
        now=now,
    )
    # 3. decide (compare-and-swap on the attempt)
    won = checkins.apply_verdict(
        session=s,
        settings=settings,
        verifier=verifier,
        person=person,
        prompt=prompt,
        attempt=attempt,
        verdict=verdict,
        templates=templates,
        now=now,
        store=image_store(settings),
    )
    s.commit()
    if not won:  # another request decided it meanwhile: answer what it decided
        s.refresh(attempt)
        return _answer(attempt, s.get(CheckinPrompt, attempt.prompt_id), lang, replayed=True)
    CHECKINS.labels(
        attempt.decision.value if attempt.decision else "undecided", attempt.code or ""
    ).inc()
    # a quality retake (rejected, no attempt used, a readable image) costs no upload
    g.upload_free = (
        attempt.decision is AttemptDecision.rejected
        and not (attempt.details or {}).get("counted", True)
        and not verdict.bad_image_status
    )
    if verdict.bad_image_status:
        raise ApiError(
            verdict.code,
            verdict.bad_image_status,
            extra={
                "attempt_id": attempt.id,
                "attempts_left": prompt.max_attempts - prompt.attempts_used,
            },
        )
    return _answer(attempt, prompt, lang)


def _answer(attempt: CheckinAttempt, prompt: CheckinPrompt, lang: str, replayed: bool = False):
    if attempt.code in judging.BAD_IMAGE_STATUS:
        raise ApiError(
            attempt.code, judging.BAD_IMAGE_STATUS[attempt.code], extra={"attempt_id": attempt.id}
        )
    if attempt.code in checkins.LATE_CODES:  # judged after the prompt was already decided
        raise ApiError(attempt.code, 409, extra={"attempt_id": attempt.id})
    response = jsonify(attempt_json(attempt, prompt, lang))
    response.headers["Content-Language"] = lang
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 200


@bp.get("/me/history")
@device_required
@per_device("rate_limit_device")
def list_my_history():
    """listMyHistory: the person's past prompts with their outcome, newest first."""
    _device, person = g.device
    s = db_session()
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 200)
    except ValueError as exc:
        raise ApiError(
            "validation_error",
            422,
            extra={"errors": [field_error("limit", "integer_range", lo=1, hi=200)]},
        ) from exc
    now = ctx().clock.now()
    prompts = s.scalars(
        select(CheckinPrompt)
        .where(CheckinPrompt.person_id == person.id, CheckinPrompt.opens_at <= now)
        .order_by(CheckinPrompt.opens_at.desc())
        .limit(limit)
    ).all()
    # the latest attempt of every prompt on the page in one statement, not one per prompt
    # (issue 18: the statement count no longer grows with ``limit``)
    latest = (
        select(func.max(CheckinAttempt.id))
        .where(CheckinAttempt.prompt_id.in_([p.id for p in prompts]))
        .group_by(CheckinAttempt.prompt_id)
    )
    last_of = (
        {
            prompt_id: (decision, code)
            for prompt_id, decision, code in s.execute(
                select(
                    CheckinAttempt.prompt_id, CheckinAttempt.decision, CheckinAttempt.code
                ).where(CheckinAttempt.id.in_(latest))
            )
        }
        if prompts
        else {}
    )
    items = []
    for p in prompts:
        decision, code = last_of.get(p.id, (None, None))
        items.append(
            {
                "prompt_id": p.id,
                "kind": p.kind.value,
                "state": p.state.value,
                "opens_at": iso(p.opens_at),
                "due_at": iso(p.due_at),
                "attempts_used": p.attempts_used,
                "last_result": decision.value if decision else None,
                "last_code": code,
            }
        )
    s.commit()
    return jsonify(items=items)
