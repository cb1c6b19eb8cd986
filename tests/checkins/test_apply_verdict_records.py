"""``apply_verdict`` row by row (issue 20: the survivors of ``bench/mutation.py checkin``): the
CAS touches only its own attempt, what a late verdict writes, what each kind of verdict does to
the prompt (attempts, state, close time), and the side records left or not left behind."""

from __future__ import annotations

from datetime import timedelta, timezone

from sqlalchemy import func, select

from server.alerts.models import Alert
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.checkins.service import Verdict, apply_verdict
from server.core import audit
from server.core.enums import AttemptDecision, PromptState
from server.face_verifier import get_verifier
from tests.minimal_world import MiniWorld


def _apply(session, settings, person, prompt, attempt, verdict, now) -> bool:
    won = apply_verdict(session=session, settings=settings, verifier=get_verifier(),
                        person=person, prompt=prompt, attempt=attempt, verdict=verdict,
                        templates=[], now=now)  # fmt: skip
    session.commit()
    return won


def _row(session, model, id_):
    session.expire_all()
    return session.get(model, id_)


def _judged_events(session, attempt_id) -> int:
    return session.scalar(
        select(func.count()).select_from(audit.AuditEvent).where(
            audit.AuditEvent.action == "checkin.judged", audit.AuditEvent.target_id == attempt_id)
    )  # fmt: skip


def _alerts(session, prompt_id) -> list[Alert]:
    return session.scalars(select(Alert).where(Alert.prompt_id == prompt_id)).all()


def test_the_verdict_cas_touches_only_its_own_attempt(session, settings, clock):
    """Two undecided attempts of one prompt (two uploads in flight): judging one leaves the
    other undecided, whatever the verdict."""
    world = MiniWorld(session, clock.now())
    person = world.person()
    for verdict in (Verdict(AttemptDecision.rejected, "face_mismatch", score=1.4),
                    Verdict(AttemptDecision.verified, "face_match", score=0.2)):  # fmt: skip
        prompt = world.prompt(person)
        first, second = world.attempt(prompt), world.attempt(prompt)
        assert _apply(session, settings, person, prompt, first, verdict, clock.now())
        other = _row(session, CheckinAttempt, second.id)
        assert (other.decision, other.code, other.score, other.details) == (None, None, None, None)
        assert _row(session, CheckinAttempt, first.id).code == verdict.code


def test_a_verified_answer_completes_the_prompt_and_uses_one_attempt(session, settings, clock):
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    attempt = world.attempt(prompt)
    now = clock.now()
    assert _apply(session, settings, person, prompt, attempt,
                  Verdict(AttemptDecision.verified, "face_match", score=0.21,
                          details={"k": 1}), now)  # fmt: skip
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.decision, row.code, row.score) == (AttemptDecision.verified, "face_match", 0.21)
    assert row.details == {"k": 1, "counted": False}
    p = _row(session, CheckinPrompt, prompt.id)
    assert (p.state, p.attempts_used, p.closed_at) == (PromptState.completed, 1, now)
    assert _alerts(session, prompt.id) == []
    assert _judged_events(session, attempt.id) == 1


def test_a_review_completes_the_prompt_and_uses_no_attempt(session, settings, clock):
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    prompt.attempts_used = 1
    session.commit()
    attempt = world.attempt(prompt)
    now = clock.now()
    assert _apply(session, settings, person, prompt, attempt,
                  Verdict(AttemptDecision.review, "face_review", score=0.4), now)  # fmt: skip
    p = _row(session, CheckinPrompt, prompt.id)
    assert (p.state, p.attempts_used, p.closed_at) == (PromptState.completed, 1, now)
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.decision, row.code, row.details["counted"]) == (
        AttemptDecision.review,
        "face_review",
        False,
    )
    assert _alerts(session, prompt.id) == []


def test_a_counted_refusal_before_the_last_keeps_the_prompt_open(session, settings, clock):
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    attempt = world.attempt(prompt)
    assert _apply(session, settings, person, prompt, attempt,
                  Verdict(AttemptDecision.rejected, "liveness_failed", score=0.3),
                  clock.now())  # fmt: skip
    p = _row(session, CheckinPrompt, prompt.id)
    assert (p.state, p.attempts_used, p.closed_at) == (PromptState.open, 1, None)
    assert _row(session, CheckinAttempt, attempt.id).details == {"counted": True}
    assert _alerts(session, prompt.id) == []
    assert _judged_events(session, attempt.id) == 1


def test_the_last_counted_refusal_fails_the_prompt_with_one_alert(session, settings, clock):
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    now = clock.now()
    codes = ["face_mismatch", "replayed_image", "outside_home"]
    for i, code in enumerate(codes):
        attempt = world.attempt(prompt)
        assert _apply(session, settings, person, prompt, attempt,
                      Verdict(AttemptDecision.rejected, code, score=1.2), now)  # fmt: skip
        p = _row(session, CheckinPrompt, prompt.id)
        assert p.attempts_used == i + 1
        assert p.state is (PromptState.failed if i == 2 else PromptState.open)
        assert p.closed_at == (now if i == 2 else None)
    [alert] = [a for a in _alerts(session, prompt.id) if a.kind.value == "failed_verification"]
    assert (alert.attempt_id, alert.details, alert.person_id) == (
        attempt.id,
        {"last_code": "outside_home"},
        person.id,
    )


def test_an_uncounted_refusal_changes_nothing_about_the_prompt(session, settings, clock):
    """A quality refusal ("too dark, retake") tests nothing about identity: the attempt is
    written, the prompt keeps its attempts, state and close time; it is audited."""
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    attempt = world.attempt(prompt)
    assert _apply(session, settings, person, prompt, attempt,
                  Verdict(AttemptDecision.rejected, "too_dark", details={"value": 12}),
                  clock.now())  # fmt: skip
    p = _row(session, CheckinPrompt, prompt.id)
    assert (p.state, p.attempts_used, p.closed_at) == (PromptState.open, 0, None)
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.decision, row.code, row.details) == (
        AttemptDecision.rejected,
        "too_dark",
        {"value": 12, "counted": False},
    )
    assert _judged_events(session, attempt.id) == 1


def _late(session, settings, clock, *, state, attempts_used, verdict):
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person, state=state)
    prompt.attempts_used = attempts_used
    session.commit()
    attempt = world.attempt(prompt)
    before = _row(session, CheckinPrompt, prompt.id)
    snapshot = (before.state, before.attempts_used, before.closed_at)
    won = _apply(session, settings, person, prompt, attempt, verdict, clock.now())
    after = _row(session, CheckinPrompt, prompt.id)
    assert (after.state, after.attempts_used, after.closed_at) == snapshot
    return won, attempt, prompt


def test_a_late_verdict_is_kept_as_an_uncounted_refusal_with_the_closed_prompts_code(
    session, settings, clock
):
    """The prompt was completed by a parallel upload before this verdict: the attempt is
    written as refused with ``already_checked_in``, the verdict's own code and score kept in
    its details; nothing else is left behind (no alert, no audit event)."""
    won, attempt, prompt = _late(session, settings, clock, state=PromptState.completed,
                                 attempts_used=1,
                                 verdict=Verdict(AttemptDecision.verified, "face_match",
                                                 score=0.25, details={"k": "v"}))  # fmt: skip
    assert won is True
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.decision, row.code, row.score) == (
        AttemptDecision.rejected,
        "already_checked_in",
        0.25,
    )
    assert row.details == {"k": "v", "counted": False, "late_verdict": "face_match"}
    assert _judged_events(session, attempt.id) == 0
    assert _alerts(session, prompt.id) == []


def test_a_late_counted_refusal_on_a_failed_prompt_counts_nothing(session, settings, clock):
    won, attempt, prompt = _late(session, settings, clock, state=PromptState.failed,
                                 attempts_used=3,
                                 verdict=Verdict(AttemptDecision.rejected, "face_mismatch",
                                                 score=1.3))  # fmt: skip
    assert won is True
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.decision, row.code) == (AttemptDecision.rejected, "attempts_exhausted")
    assert row.details == {"counted": False, "late_verdict": "face_mismatch"}
    assert _alerts(session, prompt.id) == []


def test_a_counted_refusal_on_an_open_prompt_with_no_attempt_left_is_attempts_exhausted(
    session, settings, clock
):
    """Open but every attempt used by parallel uploads: the refusal counts nothing and says
    so (``attempts_exhausted``), and does not fail the prompt a second time."""
    won, attempt, prompt = _late(session, settings, clock, state=PromptState.open,
                                 attempts_used=3,
                                 verdict=Verdict(AttemptDecision.rejected, "face_mismatch",
                                                 score=1.3))  # fmt: skip
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.decision, row.code, row.details["counted"]) == (
        AttemptDecision.rejected,
        "attempts_exhausted",
        False,
    )
    assert _alerts(session, prompt.id) == []


def test_the_attempt_in_memory_holds_what_the_row_holds(session, settings, clock):
    """The caller answers from the attempt object without another SELECT."""
    world = MiniWorld(session, clock.now())
    person = world.person()
    for state, verdict, code in [
        (PromptState.open, Verdict(AttemptDecision.rejected, "face_mismatch", score=1.1),
         "face_mismatch"),
        (PromptState.missed, Verdict(AttemptDecision.verified, "face_match", score=0.2),
         "window_closed"),
    ]:  # fmt: skip
        prompt = world.prompt(person, state=state)
        attempt = world.attempt(prompt)
        apply_verdict(session=session, settings=settings, verifier=get_verifier(), person=person,
                      prompt=prompt, attempt=attempt, verdict=verdict, templates=[],
                      now=clock.now())  # fmt: skip
        seen = (attempt.decision, attempt.code, attempt.score, attempt.details)
        session.commit()
        assert seen == (lambda r: (r.decision, r.code, r.score, r.details))(
            _row(session, CheckinAttempt, attempt.id)
        )
        assert attempt.code == code


def test_outside_home_turns_a_review_into_a_counted_refusal(session, settings, clock):
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    attempt = world.attempt(prompt)
    attempt.distance_from_home_m, attempt.accuracy_m = 5000.0, 10.0
    session.commit()
    assert _apply(session, settings, person, prompt, attempt,
                  Verdict(AttemptDecision.review, "face_review", score=0.4),
                  clock.now())  # fmt: skip
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.decision, row.code) == (AttemptDecision.rejected, "outside_home")
    assert row.details == {"face_decision": "review", "counted": True}
    p = _row(session, CheckinPrompt, prompt.id)
    assert (p.state, p.attempts_used) == (PromptState.open, 1)
    [alert] = _alerts(session, prompt.id)
    assert alert.kind.value == "outside_home"


def test_outside_home_leaves_a_refusal_its_own_code(session, settings, clock):
    """An impostor far from home is an impostor: ``face_mismatch``, no outside-home alert."""
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    attempt = world.attempt(prompt)
    attempt.distance_from_home_m, attempt.accuracy_m = 5000.0, 10.0
    session.commit()
    assert _apply(session, settings, person, prompt, attempt,
                  Verdict(AttemptDecision.rejected, "face_mismatch", score=1.4),
                  clock.now())  # fmt: skip
    row = _row(session, CheckinAttempt, attempt.id)
    assert (row.code, row.details) == ("face_mismatch", {"counted": True})
    assert _alerts(session, prompt.id) == []


def test_an_unknown_accuracy_counts_as_exact(session, settings, clock):
    """No accuracy reported: the distance alone decides (radius + 0 m)."""
    world = MiniWorld(session, clock.now())
    person = world.person()
    radius = person.geofence_radius_m
    for distance, outside in [(radius - 1.0, False), (radius + 0.5, True)]:
        prompt = world.prompt(person)
        attempt = world.attempt(prompt)
        attempt.distance_from_home_m, attempt.accuracy_m = distance, None
        session.commit()
        _apply(session, settings, person, prompt, attempt,
               Verdict(AttemptDecision.verified, "face_match", score=0.2),
               clock.now())  # fmt: skip
        code = _row(session, CheckinAttempt, attempt.id).code
        assert code == ("outside_home" if outside else "face_match"), (distance, code)


def test_a_verdict_without_a_location_is_never_outside_home(session, settings, clock):
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    attempt = world.attempt(prompt)
    attempt.distance_from_home_m = None
    session.commit()
    _apply(session, settings, person, prompt, attempt,
           Verdict(AttemptDecision.verified, "face_match", score=0.2),
           clock.now() + timedelta(seconds=1))  # fmt: skip
    assert _row(session, CheckinAttempt, attempt.id).code == "face_match"


def test_a_counted_refusal_touches_only_its_own_prompt(session, settings, clock):
    """The attempt count's CAS names its prompt: another open prompt (another person's, or
    the same person's next one) keeps its attempts, state and close time, up to the refusal
    that fails this one."""
    world = MiniWorld(session, clock.now())
    person, neighbour = world.person(), world.person()
    prompt, others = world.prompt(person), [world.prompt(neighbour), world.prompt(person)]
    now = clock.now()
    for _ in range(prompt.max_attempts):
        refusal = Verdict(AttemptDecision.rejected, "face_mismatch", score=1.3)
        assert _apply(session, settings, person, prompt, world.attempt(prompt), refusal, now)
    p = _row(session, CheckinPrompt, prompt.id)
    assert (p.state, p.attempts_used, p.closed_at) == (PromptState.failed, 3, now)
    for other in others:
        o = _row(session, CheckinPrompt, other.id)
        assert (o.state, o.attempts_used, o.closed_at) == (PromptState.open, 0, None)
    assert [a.prompt_id for a in session.scalars(select(Alert))] == [prompt.id]


def test_a_failed_prompts_close_time_is_the_instant_of_now_in_any_zone(session, settings, clock):
    """``now`` is an aware datetime; the columns store UTC whatever its zone (a +07:00 ``now``
    is the same instant), on the last refusal's close time as everywhere else."""
    world = MiniWorld(session, clock.now())
    person = world.person()
    prompt = world.prompt(person)
    prompt.attempts_used = prompt.max_attempts - 1
    session.commit()
    now = clock.now().astimezone(timezone(timedelta(hours=7)))
    assert _apply(session, settings, person, prompt, world.attempt(prompt),
                  Verdict(AttemptDecision.rejected, "face_mismatch", score=1.3), now)  # fmt: skip
    p = _row(session, CheckinPrompt, prompt.id)
    assert (p.state, p.closed_at) == (PromptState.failed, now)
    assert p.closed_at.utcoffset() == timedelta(0)
