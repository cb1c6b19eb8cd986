"""Two judgements of one attempt at the same moment (two workers, two sessions, two threads on a
real database — SQLite and PostgreSQL): exactly one verdict is written, and only the winner
moves the prompt, counts an attempt or leaves an audit event.

Dropping ``decision IS NULL`` from the verdict's compare-and-swap (server/checkins/service.py)
makes both judgements win here."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from server.checkins.judging import Verdict
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.checkins.service import apply_verdict
from server.core import audit
from server.core.enums import AttemptDecision, PromptState
from server.face_verifier import get_verifier
from server.people.models import Person
from tests.minimal_world import MiniWorld

ROUNDS = 8


def _judge_at_once(session_factory, settings, now, attempt_id: int, verdicts: list[Verdict]):
    """Each verdict applied by its own thread and session, released together by a barrier."""
    barrier = threading.Barrier(len(verdicts))
    won: list[bool | None] = [None] * len(verdicts)
    errors: list[BaseException] = []

    def worker(i: int, verdict: Verdict) -> None:
        try:
            with session_factory() as s:
                attempt = s.get(CheckinAttempt, attempt_id)
                prompt = s.get(CheckinPrompt, attempt.prompt_id)
                person = s.get(Person, prompt.person_id)
                s.commit()  # end the read transaction: both start from the same picture
                barrier.wait(timeout=30)
                won[i] = apply_verdict(
                    session=s, settings=settings, verifier=get_verifier(), person=person,
                    prompt=prompt, attempt=attempt, verdict=verdict, templates=[], now=now,
                )  # fmt: skip
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, v)) for i, v in enumerate(verdicts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    return won


def test_two_judgements_of_one_attempt_at_once_write_exactly_one_verdict(
    session_factory, session, settings, clock
):
    world = MiniWorld(session, clock.now())
    person = world.person()
    winners = set()
    for _ in range(ROUNDS):
        prompt = world.prompt(person)
        attempt = world.attempt(prompt)
        verdicts = [
            Verdict(AttemptDecision.verified, "face_match", score=0.2),
            Verdict(AttemptDecision.rejected, "face_mismatch", score=1.4),
        ]
        won = _judge_at_once(session_factory, settings, clock.now(), attempt.id, verdicts)

        assert sorted(won) == [False, True], won
        winner = verdicts[won.index(True)]
        winners.add(winner.decision)
        session.expire_all()
        row = session.get(CheckinAttempt, attempt.id)
        assert (row.decision, row.code, row.score) == (winner.decision, winner.code, winner.score)
        p = session.get(CheckinPrompt, prompt.id)
        if winner.decision is AttemptDecision.verified:
            # a verified answer is one attempt used (issue 19)
            assert (p.state, p.attempts_used) == (PromptState.completed, 1)
        else:  # one counted refusal, the prompt still open for the next try
            assert (p.state, p.attempts_used) == (PromptState.open, 1)
            assert row.details["counted"] is True
        judged = session.scalar(
            select(func.count())
            .select_from(audit.AuditEvent)
            .where(audit.AuditEvent.action == "checkin.judged",
                   audit.AuditEvent.target_id == attempt.id)
        )  # fmt: skip
        assert judged == 1
    assert winners  # at least one round ran


def test_the_same_verdict_twice_at_once_counts_one_attempt(
    session_factory, session, settings, clock
):
    """A retried upload judged by two workers: the refusal is counted once, not twice (two
    counted refusals would leave one attempt of three)."""
    world = MiniWorld(session, clock.now())
    person = world.person()
    for _ in range(ROUNDS):
        prompt = world.prompt(person)
        attempt = world.attempt(prompt)
        verdicts = [Verdict(AttemptDecision.rejected, "face_mismatch", score=1.3) for _ in "ab"]
        won = _judge_at_once(session_factory, settings, clock.now(), attempt.id, verdicts)
        assert sorted(won) == [False, True], won
        session.expire_all()
        assert session.get(CheckinPrompt, prompt.id).attempts_used == 1


def test_what_a_verdict_leaves_behind(session, settings, clock):
    """The records a verdict writes, field by field: the audit event, the failed prompt's
    close time and its alert, a completed prompt's close time (mutation survivors)."""
    from server.alerts.models import Alert

    world = MiniWorld(session, clock.now())
    person = world.person()
    now = clock.now()

    def judge(prompt, verdict):
        attempt = world.attempt(prompt)
        assert apply_verdict(session=session, settings=settings, verifier=get_verifier(),
                             person=person, prompt=prompt, attempt=attempt, verdict=verdict,
                             templates=[], now=now)  # fmt: skip
        session.commit()
        return attempt

    done = world.prompt(person)
    attempt = judge(done, Verdict(AttemptDecision.verified, "face_match", score=0.2))
    event = session.scalar(select(audit.AuditEvent).where(
        audit.AuditEvent.action == "checkin.judged", audit.AuditEvent.target_id == attempt.id))
    assert (event.actor_kind, event.actor_id, event.target_kind, event.area_id, event.at) == (
        "device", attempt.device_id, "checkin_attempt", person.ward_id, now)
    assert event.details == {"decision": "verified", "code": "face_match"}
    session.expire_all()
    assert session.get(CheckinPrompt, done.id).closed_at == now

    failing = world.prompt(person)
    failing.attempts_used = failing.max_attempts - 1
    session.commit()
    last = judge(failing, Verdict(AttemptDecision.rejected, "face_mismatch", score=1.4))
    session.expire_all()
    p = session.get(CheckinPrompt, failing.id)
    assert (p.state, p.closed_at, p.attempts_used) == (PromptState.failed, now, p.max_attempts)
    alert = session.scalar(select(Alert).where(Alert.prompt_id == failing.id))
    assert (alert.kind.value, alert.attempt_id, alert.details) == (
        "failed_verification", last.id, {"last_code": "face_mismatch"})

    away = world.prompt(person)
    attempt = world.attempt(away)
    attempt.distance_from_home_m, attempt.accuracy_m = 5000.0, 10.0
    session.commit()
    apply_verdict(session=session, settings=settings, verifier=get_verifier(), person=person,
                  prompt=away, attempt=attempt,
                  verdict=Verdict(AttemptDecision.verified, "face_match", score=0.2),
                  templates=[], now=now)  # fmt: skip
    session.commit()
    session.expire_all()
    row = session.get(CheckinAttempt, attempt.id)
    assert (row.decision, row.code) == (AttemptDecision.rejected, "outside_home")
    assert row.details["face_decision"] == "verified"
    alert = session.scalar(select(Alert).where(Alert.prompt_id == away.id))
    assert (alert.kind.value, alert.attempt_id, alert.details) == (
        "outside_home", attempt.id, {"distance_m": 5000.0, "accuracy_m": 10.0})
