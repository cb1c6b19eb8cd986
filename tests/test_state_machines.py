"""Every state-machine transition tried from every state it must refuse (SQLite and PostgreSQL).

The machines (their diagrams are in the modules' docstrings):

- prompt (server/checkins/lifecycle.py, service.py, review.py):
  ``planned → open`` (open sweep), ``open → reminded`` (remind sweep), ``planned|open →
  missed|missed_system`` (close sweep), ``planned|open → cancelled`` (release),
  ``planned|open → completed|failed`` (check-in judging), ``open|failed → completed`` and
  ``completed → failed`` (staff review);
- attempt (server/checkins/service.py, review.py): undecided → decided once;
  decided ``review|rejected`` → reviewed once;
- alert (server/alerts): ``open → acknowledged``, ``open|acknowledged → resolved``, ``open`` →
  escalated;
- notification (server/notify): ``pending|sending(lease over) → sending`` (claim),
  ``sending(our attempt) → sent|pending|dead`` (record) and ``→ pending`` (release),
  ``dead → pending`` (requeue).

Each test puts one row in a state the transition must refuse, runs the real transition and
checks that it reports no move and that the row (and the outbox) did not change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server.alerts.escalation import escalate_batch
from server.alerts.models import Alert
from server.alerts.service import (
    AlertStateError,
    acknowledge_alert,
    raise_alert,
    resolve_alert,
)
from server.checkins import lifecycle
from server.checkins.judging import Verdict
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.checkins.review import ReviewError, review_attempt
from server.checkins.service import (
    CLOSED_CODES,
    LATE_GRACE,
    apply_verdict,
    find_prompt_for_upload,
)
from server.core.enums import (
    AlertKind,
    AlertState,
    AttemptDecision,
    NotificationState,
    PromptState,
)
from server.core.errors import DomainError
from server.face_verifier import get_verifier
from server.http.problem import status_of
from server.notify import delivery
from server.notify.channel import OutboxMessage, Outcome, Result
from server.notify.models import Notification
from server.notify.service import requeue_dead
from server.people.models import Person
from tests.minimal_world import MiniWorld

ALL_PROMPT = list(PromptState)
LIVE = {PromptState.planned, PromptState.open}


def _others(allowed) -> list:
    return [s for s in ALL_PROMPT if s not in allowed]


@pytest.fixture
def world(session, clock):
    return MiniWorld(session, clock.now())


def _outbox(session) -> int:
    return session.scalar(select(func.count()).select_from(Notification)) or 0


def _alerts(session) -> int:
    return session.scalar(select(func.count()).select_from(Alert)) or 0


def _snapshot(session, prompt_id):
    session.expire_all()
    p = session.get(CheckinPrompt, prompt_id)
    return (p.state, p.opened_at, p.reminded_at, p.closed_at, p.attempts_used)


# --------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("state", _others({PromptState.planned}), ids=str)
def test_open_sweep_refuses_every_state_but_planned(world, session, clock, state):
    now = clock.now()
    prompt = world.prompt(world.person(), state=state, opens_at=now - timedelta(minutes=1))
    before = _snapshot(session, prompt.id)
    assert lifecycle.open_due(session=session, now=now, limit=100) == 0
    session.commit()
    assert _snapshot(session, prompt.id) == before and _outbox(session) == 0


@pytest.mark.parametrize("state", _others({PromptState.open}), ids=str)
def test_remind_sweep_refuses_every_state_but_open(world, session, clock, state):
    now = clock.now()
    prompt = world.prompt(world.person(), state=state, opens_at=now - timedelta(minutes=10),
                          remind_at=now - timedelta(minutes=1))  # fmt: skip
    before = _snapshot(session, prompt.id)
    assert lifecycle.remind_due(session=session, now=now, limit=100) == 0
    session.commit()
    assert _snapshot(session, prompt.id) == before and _outbox(session) == 0


def test_remind_sweep_reminds_once(world, session, clock):
    now = clock.now()
    world.prompt(world.person(), state=PromptState.open, opens_at=now - timedelta(minutes=10),
                 remind_at=now - timedelta(minutes=1))  # fmt: skip
    assert lifecycle.remind_due(session=session, now=now, limit=100) == 1
    session.commit()
    assert lifecycle.remind_due(session=session, now=now + timedelta(seconds=5), limit=100) == 0


@pytest.mark.parametrize("state", _others(LIVE), ids=str)
def test_close_sweep_refuses_every_closed_state(world, session, clock, state):
    now = clock.now()
    opens = now - timedelta(hours=1)
    prompt = world.prompt(world.person(), state=state, opens_at=opens,
                          due_at=now - LATE_GRACE - timedelta(minutes=5), opened_at=opens)
    before = _snapshot(session, prompt.id)
    moved = lifecycle.close_overdue(session=session, now=now, limit=100, last_alive=now,
                                    margin=timedelta(seconds=120))  # fmt: skip
    session.commit()
    assert moved == (0, 0)
    assert _snapshot(session, prompt.id) == before and _alerts(session) == 0


@pytest.mark.parametrize("state", _others(LIVE), ids=str)
def test_release_cancels_only_live_prompts(world, session, clock, state):
    person = world.person()
    prompt = world.prompt(person, state=state)
    before = _snapshot(session, prompt.id)
    assert lifecycle.cancel_for_persons(session=session, person_ids=[person.id],
                                        now=clock.now()) == 0  # fmt: skip
    session.commit()
    assert _snapshot(session, prompt.id) == before


@pytest.mark.parametrize("state", sorted(CLOSED_CODES, key=str), ids=str)
def test_an_upload_to_a_closed_prompt_is_refused_with_its_code(world, session, clock, state):
    person = world.person()
    prompt = world.prompt(person, state=state)
    with pytest.raises(DomainError) as err:
        find_prompt_for_upload(session=session, person=person, nonce=prompt.nonce,
                               now=clock.now())  # fmt: skip
    assert (err.value.code, status_of(err.value)) == (CLOSED_CODES[state], 409)
    assert set(CLOSED_CODES) == set(_others(LIVE))  # every closed state has its answer


def _judge(session, settings, now, prompt, verdict) -> bool:
    attempt = CheckinAttempt(
        prompt_id=prompt.id, person_id=prompt.person_id, received_at=now,
        distance_from_home_m=0.0, accuracy_m=10.0,
    )  # fmt: skip
    session.add(attempt)
    session.commit()
    person = session.get(Person, prompt.person_id)
    won = apply_verdict(session=session, settings=settings, verifier=get_verifier(),
                        person=person, prompt=prompt, attempt=attempt, verdict=verdict,
                        templates=[], now=now)  # fmt: skip
    session.commit()
    return won


@pytest.mark.parametrize("state", _others(LIVE), ids=str)
def test_judging_never_moves_a_closed_prompt(world, session, settings, clock, state):
    """A verdict that lands after the prompt closed (a slow request) is written on the attempt
    but does not reopen, complete or fail the prompt, and raises no alert."""
    person = world.person()
    verified = world.prompt(person, state=state)
    failing = world.prompt(person, state=state)
    failing.attempts_used = failing.max_attempts - 1
    session.commit()
    before = _snapshot(session, verified.id)
    assert _judge(session, settings, clock.now(), verified,
                  Verdict(AttemptDecision.verified, "face_match", score=0.2))  # fmt: skip
    assert _snapshot(session, verified.id) == before
    assert _judge(session, settings, clock.now(), failing,
                  Verdict(AttemptDecision.rejected, "face_mismatch", score=1.4))  # fmt: skip
    session.expire_all()
    assert session.get(CheckinPrompt, failing.id).state is state
    assert _alerts(session) == 0


def _reviewable(world, session, prompt, decision):
    attempt = world.attempt(prompt, decision=decision, code="face_mismatch")
    return attempt


@pytest.mark.parametrize("state", _others({PromptState.open, PromptState.failed}), ids=str)
def test_review_same_person_completes_only_open_or_failed_prompts(
    world, session, clock, state
):
    person = world.person()
    prompt = world.prompt(person, state=state)
    attempt = _reviewable(world, session, prompt, AttemptDecision.rejected)
    before = _snapshot(session, prompt.id)
    changes = review_attempt(session=session, staff=world.staff, attempt=attempt, person=person,
                             same_person=True, note="ok", now=clock.now(), ip=None)  # fmt: skip
    session.commit()
    assert changes["prompt_state"] is None
    assert _snapshot(session, prompt.id) == before


@pytest.mark.parametrize("state", _others({PromptState.completed}), ids=str)
def test_review_not_same_person_fails_only_completed_prompts(world, session, clock, state):
    person = world.person()
    prompt = world.prompt(person, state=state)
    attempt = _reviewable(world, session, prompt, AttemptDecision.review)
    before = _snapshot(session, prompt.id)
    changes = review_attempt(session=session, staff=world.staff, attempt=attempt, person=person,
                             same_person=False, note="no", now=clock.now(), ip=None)  # fmt: skip
    session.commit()
    assert changes["prompt_state"] is None
    assert _snapshot(session, prompt.id) == before


# --------------------------------------------------------------------------- attempts


@pytest.mark.parametrize("decision", list(AttemptDecision), ids=str)
def test_a_decided_attempt_is_never_judged_again(world, session, settings, clock, decision):
    person = world.person()
    prompt = world.prompt(person)
    attempt = world.attempt(prompt, decision=decision, code="earlier")
    verdict = (
        Verdict(AttemptDecision.rejected, "face_mismatch", score=1.5)
        if decision is not AttemptDecision.rejected
        else Verdict(AttemptDecision.verified, "face_match", score=0.1)
    )
    before = _snapshot(session, prompt.id)
    won = apply_verdict(session=session, settings=settings, verifier=get_verifier(),
                        person=person, prompt=prompt, attempt=attempt, verdict=verdict,
                        templates=[], now=clock.now())  # fmt: skip
    session.commit()
    assert won is False
    session.expire_all()
    row = session.get(CheckinAttempt, attempt.id)
    assert (row.decision, row.code) == (decision, "earlier")
    assert _snapshot(session, prompt.id) == before and _alerts(session) == 0


@pytest.mark.parametrize("decision", [None, AttemptDecision.verified], ids=str)
def test_only_review_and_rejected_attempts_can_be_reviewed(world, session, clock, decision):
    person = world.person()
    attempt = world.attempt(world.prompt(person), decision=decision)
    with pytest.raises(ReviewError) as err:
        review_attempt(session=session, staff=world.staff, attempt=attempt, person=person,
                       same_person=True, note="x", now=clock.now(), ip=None)  # fmt: skip
    assert err.value.code == "not_reviewable"
    session.rollback()
    session.expire_all()
    assert session.get(CheckinAttempt, attempt.id).review_outcome is None


@pytest.mark.parametrize("first", [True, False], ids=["same", "not_same"])
def test_a_reviewed_attempt_is_never_reviewed_again(world, session, clock, first):
    person = world.person()
    prompt = world.prompt(person, state=PromptState.failed)
    attempt = world.attempt(prompt, decision=AttemptDecision.rejected, code="face_mismatch")
    review_attempt(session=session, staff=world.staff, attempt=attempt, person=person,
                   same_person=first, note="first", now=clock.now(), ip=None)  # fmt: skip
    session.commit()
    before = _snapshot(session, prompt.id)
    session.expire_all()
    attempt = session.get(CheckinAttempt, attempt.id)
    # the second reviewer sees the attempt as it was (rejected), before the first one's verdict
    attempt.decision = AttemptDecision.rejected
    with pytest.raises(ReviewError) as err:
        review_attempt(session=session, staff=world.staff, attempt=attempt, person=person,
                       same_person=not first, note="second", now=clock.now(), ip=None)
    assert err.value.code == "already_reviewed"
    session.rollback()
    session.expire_all()
    row = session.get(CheckinAttempt, attempt.id)
    assert row.review_note == "first"
    assert _snapshot(session, prompt.id) == before


# --------------------------------------------------------------------------- alerts


def _alert(world, session, clock, state: AlertState) -> Alert:
    person = world.person()
    alert, _ = raise_alert(session=session, person=person, kind=AlertKind.missed_checkin,
                           now=clock.now(), dedupe_key=f"t:{person.id}")  # fmt: skip
    alert.state = state
    # a deadline in the past, as if it had been left set: the state alone must refuse
    alert.next_escalation_at = clock.now() - timedelta(minutes=1)
    session.commit()
    return alert


def _alert_row(session, alert_id):
    session.expire_all()
    a = session.get(Alert, alert_id)
    return (a.state, a.escalation_level, a.acknowledged_at, a.resolved_at, a.resolution_note)


@pytest.mark.parametrize("state", [AlertState.acknowledged, AlertState.resolved], ids=str)
def test_acknowledge_refuses_every_state_but_open(world, session, clock, state):
    alert = _alert(world, session, clock, state)
    before, outbox = _alert_row(session, alert.id), _outbox(session)
    with pytest.raises(AlertStateError) as err:
        acknowledge_alert(session=session, alert_id=alert.id, staff=world.staff,
                          now=clock.now())  # fmt: skip
    assert err.value.code == f"alert_{state.value}"
    session.rollback()
    assert _alert_row(session, alert.id) == before and _outbox(session) == outbox


def test_resolve_refuses_a_resolved_alert(world, session, clock):
    alert = _alert(world, session, clock, AlertState.resolved)
    before = _alert_row(session, alert.id)
    with pytest.raises(AlertStateError) as err:
        resolve_alert(session=session, alert_id=alert.id, staff=world.staff, now=clock.now(),
                      note="again")  # fmt: skip
    assert err.value.code == "alert_resolved"
    session.rollback()
    assert _alert_row(session, alert.id) == before


@pytest.mark.parametrize("state", [AlertState.acknowledged, AlertState.resolved], ids=str)
def test_escalation_refuses_every_state_but_open(world, session, clock, state):
    alert = _alert(world, session, clock, state)
    before, outbox = _alert_row(session, alert.id), _outbox(session)
    assert escalate_batch(session=session, now=clock.now(), limit=100) == 0
    session.commit()
    assert _alert_row(session, alert.id) == before and _outbox(session) == outbox


def test_escalation_refuses_an_alert_whose_deadline_moved_meanwhile(world, session, clock):
    """The escalation CAS includes the deadline it read: an alert another scheduler escalated
    (deadline moved, level up) is not escalated again from the stale copy."""
    alert = _alert(world, session, clock, AlertState.open)
    assert escalate_batch(session=session, now=clock.now(), limit=100) == 1
    session.commit()
    before = _alert_row(session, alert.id)
    assert escalate_batch(session=session, now=clock.now(), limit=100) == 0
    assert _alert_row(session, alert.id) == before and before[1] == 1


# --------------------------------------------------------------------------- notifications


def _notification(session, clock, state: NotificationState, *, attempts=1, due_in_s=-1):
    n = Notification(
        channel="log", recipient="person:1", payload={"kind": "t"},
        idempotency_key=f"t:{state.value}:{attempts}:{due_in_s}", state=state,
        attempts=attempts, next_attempt_at=clock.now() + timedelta(seconds=due_in_s),
        created_at=clock.now(),
    )  # fmt: skip
    session.add(n)
    session.commit()
    return n


def _n_row(session, n_id):
    session.expire_all()
    n = session.get(Notification, n_id)
    return (n.state, n.attempts, n.next_attempt_at, n.sent_at, n.last_error)


REFUSED_CLAIMS = [
    (NotificationState.sent, -1),
    (NotificationState.dead, -1),
    (NotificationState.sending, 60),  # a live lease: its sender is still at work
    (NotificationState.pending, 60),  # not due yet (a retry's backoff)
]


@pytest.mark.parametrize("state, due_in_s", REFUSED_CLAIMS, ids=lambda v: str(v))
def test_claim_refuses_rows_not_due(world, session, clock, state, due_in_s):
    n = _notification(session, clock, state, due_in_s=due_in_s)
    before = _n_row(session, n.id)
    claimed = delivery.claim(session=session, channel="log", now=clock.now(), limit=10,
                             lease_s=300)  # fmt: skip
    assert claimed == []
    assert _n_row(session, n.id) == before


REFUSED_RECORDS = [
    (NotificationState.pending, 1),
    (NotificationState.sent, 1),
    (NotificationState.dead, 1),
    (NotificationState.sending, 2),  # another sender reclaimed it after our lease ran out
]


@pytest.mark.parametrize("outcome", [Outcome.sent, Outcome.retry, Outcome.permanent], ids=str)
@pytest.mark.parametrize("state, attempts", REFUSED_RECORDS, ids=lambda v: str(v))
def test_record_refuses_rows_that_are_not_our_claim(
    world, session, settings, clock, state, attempts, outcome
):
    n = _notification(session, clock, state, attempts=attempts)
    before = _n_row(session, n.id)
    ours = OutboxMessage(id=n.id, channel="log", recipient=n.recipient,
                         idempotency_key=n.idempotency_key, attempts=1)  # fmt: skip
    counts = delivery.record(session=session, messages=[ours], results=[Result(outcome, "x")],
                             now=clock.now(), settings=settings)  # fmt: skip
    assert sum(counts.values()) == 0
    assert _n_row(session, n.id) == before


@pytest.mark.parametrize("state, attempts", REFUSED_RECORDS, ids=lambda v: str(v))
def test_release_refuses_rows_that_are_not_our_claim(world, session, clock, state, attempts):
    n = _notification(session, clock, state, attempts=attempts)
    before = _n_row(session, n.id)
    ours = OutboxMessage(id=n.id, channel="log", recipient=n.recipient,
                         idempotency_key=n.idempotency_key, attempts=1)  # fmt: skip
    assert delivery.release(session=session, messages=[ours], now=clock.now()) == 0
    assert _n_row(session, n.id) == before


@pytest.mark.parametrize(
    "state", [s for s in NotificationState if s is not NotificationState.dead], ids=str
)
def test_requeue_refuses_every_state_but_dead(world, session, clock, state):
    n = _notification(session, clock, state, attempts=3)
    before = _n_row(session, n.id)
    assert requeue_dead(session=session, ids=[n.id], now=clock.now()) == 0
    session.commit()
    assert _n_row(session, n.id) == before
