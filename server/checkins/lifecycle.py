"""Prompt state transitions driven by time (the scheduler's side of a prompt's life).

::

    planned ──open_due──► open ──(check-in service)──► completed | failed
       │                   │ └─remind_due (reminded_at set, state unchanged)
       │                   └──close_overdue──► missed         (+ missed_checkin alert)
       └──────────────────────close_overdue──► missed_system  (our downtime: no alert)
    planned | open ──cancel_for_persons──► cancelled         (release, re-plan)

Every function handles one batch with set-based compare-and-swap statements and returns how
many rows it moved; the scheduler's jobs loop over batches and commit between them. The person
is told through the outbox in the same transaction as the move, so a crash loses nothing and a
re-run sends nothing twice.

**Never blame a person for our downtime.** An overdue prompt is ``missed`` only if the person had
its whole window: it was opened (pushed) on time, and the scheduler was alive until shortly
before the due time. Otherwise it is ``missed_system`` and raises no alert:

- ``opened_at`` is None (never pushed) or later than ``opens_at + margin``;
- or the close sweep's previous heartbeat is older than ``due_at − margin`` (the scheduler was
  not running at the end of the window, so it may not have been running at all).

``margin`` is ``Settings.scheduler_downtime_margin_seconds`` (default 120 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session

from server.alerts.service import AlertRequest, raise_alerts
from server.checkins import messaging
from server.checkins.judging import RETAKE_CODE
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.checkins.service import LATE_GRACE
from server.core import sql
from server.core.enums import AlertKind, AttemptDecision, PersonStatus, PromptState
from server.notify import persons
from server.people.models import Person
from server.schedule.policy import PolicyResolver

#: An attempt still being judged this long after upload is treated as abandoned (the request
#: that judged it crashed); until then it keeps its prompt from being closed under it.
JUDGING_TIMEOUT = timedelta(minutes=10)
#: States a prompt can still be answered (or closed) in.
LIVE = (PromptState.planned, PromptState.open)
_P = CheckinPrompt


def _promptable_person():
    return exists().where(
        Person.id == _P.person_id,
        Person.status.in_((PersonStatus.enrolled, PersonStatus.active)),
    )


def open_due(
    *, session: Session, now: datetime, limit: int, resolver: PolicyResolver | None = None
) -> int:
    """``planned → open`` for prompts whose ``opens_at ≤ now < due_at``, and push "check in
    now" to each person (idempotency key ``prompt:<id>:open``).

    A prompt whose due time has already passed is not opened (the close sweep takes it, as
    ``missed_system``: it was never pushed). Released people's prompts are never opened."""
    moved = sql.claim(
        session,
        _P,
        where=[
            _P.state == PromptState.planned,
            _P.opens_at <= now,
            _P.due_at > now,
            _promptable_person(),
        ],  # fmt: skip
        values={"state": PromptState.open, "opened_at": now},
        returning=[_P.id, _P.person_id, _P.due_at],
        limit=limit,
        order_by=[_P.opens_at],
    )
    persons.send_to_persons(
        session=session,
        messages=[messaging.prompt_opened(pid, person, due) for pid, person, due in moved],
        now=now,
        resolver=resolver,
    )
    return len(moved)


def remind_due(
    *, session: Session, now: datetime, limit: int, resolver: PolicyResolver | None = None
) -> int:
    """Push one reminder for open prompts past ``remind_at`` and not yet due (sets
    ``reminded_at``; the state stays ``open``). Key ``prompt:<id>:remind``."""
    moved = sql.claim(
        session,
        _P,
        where=[
            _P.state == PromptState.open,
            _P.reminded_at.is_(None),
            _P.remind_at <= now,
            _P.due_at > now,
        ],  # fmt: skip
        values={"reminded_at": now},
        returning=[_P.id, _P.person_id, _P.due_at],
        limit=limit,
        order_by=[_P.remind_at],
    )
    persons.send_to_persons(
        session=session,
        messages=[messaging.prompt_reminder(pid, person, due) for pid, person, due in moved],
        now=now,
        resolver=resolver,
    )
    return len(moved)


def close_overdue(
    *,
    session: Session,
    now: datetime,
    limit: int,
    last_alive: datetime | None,
    margin: timedelta,
) -> tuple[int, int]:
    """Close prompts whose answering time is over; returns ``(missed, missed_system)``.

    1. Pick ``planned``/``open`` prompts with ``due_at + LATE_GRACE ≤ now`` (uploads are
       accepted for ``LATE_GRACE`` after the due time), skipping those with a verified attempt
       or one still being judged (the check-in service closes those); PostgreSQL: ``FOR NO KEY
       UPDATE SKIP LOCKED``.
    2. Split them by the downtime rule (module docstring) using ``last_alive``, the time this
       sweep last ran before now (None: never ran, so every overdue prompt is ours to excuse).
    3. Compare-and-swap each group (``state IN ('planned', 'open')``) to ``missed_system`` /
       ``missed`` with ``closed_at = now``.
    4. Raise one ``missed_checkin`` alert per ``missed`` prompt (dedupe key
       ``missed_checkin:prompt:<id>``), which tells the ward — in bulk
       (:func:`~server.alerts.service.raise_alerts`), a few statements per batch.
    """
    blocking = exists().where(
        CheckinAttempt.prompt_id == _P.id,
        or_(
            CheckinAttempt.decision == AttemptDecision.verified,
            and_(
                CheckinAttempt.decision.is_(None),
                CheckinAttempt.received_at > now - JUDGING_TIMEOUT,
            ),
        ),
    )
    query = (
        select(_P.id, _P.opens_at, _P.opened_at, _P.due_at)
        .where(_P.state.in_(LIVE), _P.due_at <= now - LATE_GRACE, ~blocking)
        .order_by(_P.due_at, _P.id)
    )
    rows = session.execute(sql.lock_batch(session, query, limit=limit, of=_P)).all()
    rows = _retakes_to_review(session, rows, now)
    excused: list[int] = []
    blamed: list[int] = []
    for pid, opens_at, opened_at, due_at in rows:
        on_time = opened_at is not None and opened_at <= opens_at + margin
        alive = last_alive is not None and last_alive >= due_at - margin
        (blamed if on_time and alive else excused).append(pid)
    cas = [_P.state.in_(LIVE)]
    system = sql.update_ids(
        session, _P, excused, where=cas,
        values={"state": PromptState.missed_system, "closed_at": now}, returning=[_P.id],
    )  # fmt: skip
    missed = sql.update_ids(
        session, _P, blamed, where=cas,
        values={"state": PromptState.missed, "closed_at": now},
        returning=[_P.id, _P.person_id, _P.slot_key, _P.due_at],
    )  # fmt: skip
    if missed:
        wards = {
            pid: ward_id
            for pid, ward_id in session.execute(
                select(Person.id, Person.ward_id).where(
                    Person.id.in_({r.person_id for r in missed})
                )
            )
        }
        raise_alerts(
            session=session,
            now=now,
            requests=[
                AlertRequest(
                    person_id=person_id,
                    ward_id=wards[person_id],
                    kind=AlertKind.missed_checkin,
                    dedupe_key=f"missed_checkin:prompt:{pid}",
                    prompt_id=pid,
                    details={"slot_key": slot_key, "due_at": due_at.isoformat()},
                )
                for pid, person_id, slot_key, due_at in missed
            ],
        )
    return len(missed), len(system)


def _retakes_to_review(session: Session, rows: list, now: datetime) -> list:
    """Prompts whose window closed while a retake was asked for and never sent go to a person,
    not to ``missed``: their first capture's face was close (review band), so it is reviewed as
    it would have been without the retake policy. Returns the other rows."""
    ids = [r[0] for r in rows]
    if not ids:
        return rows
    pending = session.execute(
        select(CheckinAttempt.id, CheckinAttempt.prompt_id).where(
            CheckinAttempt.prompt_id.in_(ids), CheckinAttempt.code == RETAKE_CODE
        )
    ).all()
    if not pending:
        return rows
    session.execute(
        update(CheckinAttempt)
        .where(CheckinAttempt.id.in_([a for a, _ in pending]), CheckinAttempt.code == RETAKE_CODE)
        .values(decision=AttemptDecision.review, code="face_review")
        .execution_options(synchronize_session=False)
    )
    moved = {p for _, p in pending}
    session.execute(
        update(CheckinPrompt)
        .where(CheckinPrompt.id.in_(moved), CheckinPrompt.state.in_(LIVE))
        .values(state=PromptState.completed, closed_at=now)
        .execution_options(synchronize_session=False)
    )
    return [r for r in rows if r[0] not in moved]


def cancel_for_persons(*, session: Session, person_ids: Sequence[int], now: datetime) -> int:
    """``planned | open → cancelled`` for every live prompt of ``person_ids`` (release)."""
    if not person_ids:
        return 0
    moved = session.execute(
        update(_P)
        .where(_P.person_id.in_(list(person_ids)), _P.state.in_(LIVE))
        .values(state=PromptState.cancelled, closed_at=now)
        .returning(_P.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(moved)
