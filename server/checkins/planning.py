"""Planning check-in prompts ahead of time (the next ``schedule_horizon_hours``).

A person's day has one prompt per fixed window (slot key ``YYYY-MM-DD/<window>``) and
``spot_checks_per_day`` spot checks (``YYYY-MM-DD/spot-<n>``), dated by the person's local
calendar. Planning is idempotent: ``(person_id, slot_key)`` is unique and rows are inserted with
``ON CONFLICT DO NOTHING``, so planning twice (or in two processes) plans once.

Where a prompt falls:

- **Fixed windows** open at ``window.start + jitter`` where the jitter (0 … window length −
  response window) is a hash of ``person_id:slot_key``: stable across re-plans, spread evenly, so
  a city's phones are not all pushed in the same second.
- **Spot checks** open at a keyed-hash (``Settings.secret_key``) moment inside waking hours that
  does not overlap another prompt of the person; unpredictable to the person, stable within a
  deployment.
- Local wall-clock times are converted to UTC with :mod:`zoneinfo` for each date, so a DST
  change moves the UTC instant, never the local time; arithmetic after that is in UTC, so a
  response window is always exactly ``response_minutes`` long.
- Nothing opens, is reminded or is due in quiet hours; nothing opens before the isolation start
  or before the planning moment, and nothing is due after the isolation end.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from server.checkins.models import CheckinPrompt
from server.core import sql
from server.core.enums import PersonStatus, PromptKind, PromptState
from server.people.models import Person
from server.schedule.models import SchedulePlan
from server.schedule.policy import PolicyResolver, SchedulePolicy, resolver_for
from verification.liveness import new_challenge

#: Attempts a spot check makes to find a free moment before the day goes without one.
SPOT_TRIES = 24
#: People whose status means "may be prompted".
PROMPTABLE = (PersonStatus.enrolled, PersonStatus.active)
_RNG = secrets.SystemRandom()
_PROMPTS = CheckinPrompt.__table__


@dataclass(frozen=True)
class Slot:
    """One planned moment: ``opens_at`` ≤ ``remind_at`` < ``due_at`` (UTC)."""

    slot_key: str
    kind: PromptKind
    opens_at: datetime
    remind_at: datetime | None
    due_at: datetime


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``zone``. A time skipped by a DST
    change (spring forward) maps to the instant an hour later on the wall; an ambiguous one
    (fall back) to its first occurrence."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _hash(text: str, key: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), key=key, digest_size=8).digest(), "big")


def spot_key(secret: str) -> bytes:
    """The key that makes spot-check times unpredictable (derived from the secret key)."""
    return hashlib.sha256(b"isocheck/spot-checks/" + secret.encode()).digest()


def _quiet_free(slot_open: datetime, slot_due: datetime, policy: SchedulePolicy, zone) -> bool:
    # quiet hours last ≥ 60 min and a response window ≤ 60 min, so checking both ends suffices
    last = slot_due - timedelta(seconds=1)
    return not policy.is_quiet(slot_open, zone) and not policy.is_quiet(last, zone)


def slots_for_day(
    *,
    person_id: int,
    day: date,
    policy: SchedulePolicy,
    zone: ZoneInfo,
    key: bytes,
    not_before: datetime,
    not_after: datetime,
) -> list[Slot]:
    """The prompts of ``person_id`` on local date ``day``: fixed windows then spot checks.

    Only slots with ``opens_at ≥ not_before`` and ``due_at ≤ not_after`` are returned (the
    isolation period and the planning moment); all are outside quiet hours."""
    response = policy.response
    remind = timedelta(minutes=policy.remind_before_due_minutes)
    stamp = day.isoformat()
    slots: list[Slot] = []
    busy: list[tuple[datetime, datetime]] = []
    for window in policy.windows:
        slot_key = f"{stamp}/{window.name}"
        span_s = (window.length_minutes - policy.response_minutes) * 60
        opens = local_to_utc(day, window.start, zone) + timedelta(
            seconds=_hash(f"{person_id}:{slot_key}") % (span_s + 1)
        )
        due = opens + response
        busy.append((opens, due))
        if opens < not_before or due > not_after or not _quiet_free(opens, due, policy, zone):
            continue
        slots.append(
            Slot(slot_key, PromptKind.scheduled, opens, due - remind if remind else None, due)
        )
    if policy.spot_checks_per_day:
        waking = local_to_utc(day, policy.waking_start, zone)
        span_s = max(
            0,
            int((local_to_utc(day, policy.waking_end, zone) - waking - response).total_seconds()),
        )
        for n in range(1, policy.spot_checks_per_day + 1):
            slot_key = f"{stamp}/spot-{n}"
            for attempt in range(SPOT_TRIES):
                opens = waking + timedelta(
                    seconds=_hash(f"{person_id}:{slot_key}:{attempt}", key) % (span_s + 1)
                )
                due = opens + response
                if spot_fits(
                    opens, due, policy=policy, zone=zone, busy=busy,
                    not_before=not_before, not_after=not_after,
                ):  # fmt: skip
                    busy.append((opens, due))
                    remind_at = due - remind if remind else None
                    slots.append(Slot(slot_key, PromptKind.spot, opens, remind_at, due))
                    break
    return slots


def spot_fits(
    opens: datetime,
    due: datetime,
    *,
    policy: SchedulePolicy,
    zone: ZoneInfo,
    busy: Iterable[tuple[datetime, datetime]],
    not_before: datetime,
    not_after: datetime,
) -> bool:
    """Whether a spot check at ``[opens, due)`` is allowed: inside the isolation bounds and
    waking hours, outside quiet hours, and overlapping no other prompt of the person."""
    if opens < not_before or due > not_after or due - opens != policy.response:
        return False
    if not (policy.is_waking(opens, zone) and policy.is_waking(due, zone)):
        return False
    if not _quiet_free(opens, due, policy, zone):
        return False
    return all(due <= b_open or opens >= b_due for b_open, b_due in busy)


def _days(first: datetime, last: datetime, zone: ZoneInfo) -> list[date]:
    """Local dates from the one containing ``first`` to the one containing ``last``."""
    start, end = first.astimezone(zone).date(), last.astimezone(zone).date()
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _next_midnight(day: date, zone: ZoneInfo) -> datetime:
    return local_to_utc(day + timedelta(days=1), time(0, 0), zone)


def _prompt_row(
    person_id: int, slot: Slot, policy: SchedulePolicy, now: datetime
) -> dict[str, Any]:
    challenge = None
    if policy.challenge_probability and _RNG.random() < policy.challenge_probability:
        challenge = new_challenge(_RNG).to_dict()
    return {
        "person_id": person_id,
        "slot_key": slot.slot_key,
        "kind": slot.kind,
        "state": PromptState.planned,
        "opens_at": slot.opens_at,
        "remind_at": slot.remind_at,
        "due_at": slot.due_at,
        "nonce": secrets.token_urlsafe(24),
        "max_attempts": policy.max_attempts,
        "attempts_used": 0,
        "challenge": challenge,
        "created_at": now,
    }


@dataclass
class PersonPlan:
    """What planning computed for one person (before it is written)."""

    person_id: int
    policy: SchedulePolicy
    zone: ZoneInfo
    slots: list[Slot]
    planned_until: datetime


def plan_person(
    *,
    person_id: int,
    ward_id: int,
    zone_name: str | None,
    overrides: Mapping[str, Any] | None,
    isolation_start: datetime,
    isolation_end: datetime,
    planned_until: datetime | None,
    now: datetime,
    horizon_end: datetime,
    resolver: PolicyResolver,
    key: bytes,
) -> PersonPlan:
    """Compute (pure, no writes) the slots from ``planned_until`` (or now) to the horizon."""
    policy = resolver.policy(ward_id=ward_id, person_overrides=overrides)
    zone = resolver.zone(ward_id=ward_id, person_zone=zone_name)
    first = max(now, isolation_start, planned_until or now)
    last = min(horizon_end, isolation_end)
    slots: list[Slot] = []
    days = _days(first, last, zone) if first <= last else []
    for day in days:
        slots += slots_for_day(
            person_id=person_id, day=day, policy=policy, zone=zone, key=key,
            not_before=max(now, isolation_start), not_after=isolation_end,
        )  # fmt: skip
    until = min(_next_midnight(days[-1], zone), isolation_end) if days else max(first, now)
    return PersonPlan(person_id, policy, zone, slots, max(until, planned_until or until))


class PlanBatch(NamedTuple):
    people: int
    inserted: int
    #: Highest person id of the batch: pass it as ``after_id`` to continue (keyset paging).
    last_id: int


def plan_batch(
    *, session: Session, now: datetime, settings, limit: int, after_id: int = 0
) -> PlanBatch:
    """Plan ahead for up to ``limit`` people whose plan ends inside the horizon.

    1. Pick people who may be prompted, whose isolation overlaps [now, horizon] and whose
       ``schedule_plans.planned_until`` is missing or inside the horizon (PostgreSQL: ``FOR NO
       KEY UPDATE OF persons SKIP LOCKED``, so concurrent planners take different people).
    2. Compute their slots (policy and zone resolved per ward, cached).
    3. Insert the prompts with ``ON CONFLICT (person_id, slot_key) DO NOTHING``.
    4. Upsert ``planned_until``.

    Returns ``(people planned, prompts inserted, last person id)``; ``people == 0`` means
    nothing is left to plan after ``after_id``. Paging by ``after_id`` keeps each batch an
    index range scan instead of re-skipping everyone already planned."""
    horizon_end = now + timedelta(hours=settings.schedule_horizon_hours)
    query = (
        select(
            Person.id,
            Person.ward_id,
            Person.timezone,
            Person.schedule_policy,
            Person.isolation_start,
            Person.isolation_end,
            SchedulePlan.planned_until,
        )
        .outerjoin(SchedulePlan, SchedulePlan.person_id == Person.id)
        .where(
            Person.id > after_id,
            Person.status.in_(PROMPTABLE),
            Person.isolation_end > now,
            Person.isolation_start < horizon_end,
            or_(
                SchedulePlan.planned_until.is_(None),
                and_(
                    SchedulePlan.planned_until < horizon_end,
                    SchedulePlan.planned_until < Person.isolation_end,
                ),
            ),
        )
        .order_by(Person.id)
    )
    rows = session.execute(sql.lock_batch(session, query, limit=limit, of=Person)).all()
    if not rows:
        return PlanBatch(0, 0, after_id)
    resolver = resolver_for(session=session, settings=settings)
    key = spot_key(settings.secret_key)
    prompts: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    for pid, ward_id, zone_name, overrides, start, end, until in rows:
        plan = plan_person(
            person_id=pid, ward_id=ward_id, zone_name=zone_name, overrides=overrides,
            isolation_start=start, isolation_end=end, planned_until=until, now=now,
            horizon_end=horizon_end, resolver=resolver, key=key,
        )  # fmt: skip
        prompts += [_prompt_row(pid, s, plan.policy, now) for s in plan.slots]
        plans.append({"person_id": pid, "planned_until": plan.planned_until, "updated_at": now})
    sql.insert_ignore_many(session, _PROMPTS, prompts, conflict=("person_id", "slot_key"))
    # rows of this batch created now: what was inserted (a clash kept the older row)
    inserted = session.scalar(
        select(func.count()).where(
            _PROMPTS.c.person_id.in_([r[0] for r in rows]), _PROMPTS.c.created_at == now
        )
    )
    sql.upsert(
        session,
        SchedulePlan.__table__,
        plans,
        conflict=("person_id",),
        update_columns=("planned_until", "updated_at"),
    )
    return PlanBatch(len(rows), inserted or 0, rows[-1][0])


@dataclass
class ReplanResult:
    cancelled: int = 0
    moved: int = 0
    created: int = 0


def replan_person(*, session: Session, person: Person, now: datetime, settings) -> ReplanResult:
    """Bring ``person``'s future prompts in line with their current policy, isolation period and
    status. Call it after changing any of these (enrolment, staff edits, area policy edits).

    1. Compute the slots from now to the horizon (none if the person may not be prompted).
    2. Future ``planned`` prompts (``opens_at > now``) whose slot is gone are cancelled; those
       whose times no longer fit are moved (compare-and-swap on ``state = 'planned'``).
    3. Future ``cancelled`` prompts whose slot is back are planned again (fresh nonce).
    4. New slots are inserted (``ON CONFLICT DO NOTHING``) and ``planned_until`` is reset.
    Prompts already open, answered or closed are never touched."""
    horizon_end = now + timedelta(hours=settings.schedule_horizon_hours)
    resolver = resolver_for(session=session, settings=settings)
    promptable = person.status in PROMPTABLE and person.isolation_end > now
    plan = plan_person(
        person_id=person.id, ward_id=person.ward_id, zone_name=person.timezone,
        overrides=person.schedule_policy, isolation_start=person.isolation_start,
        isolation_end=person.isolation_end, planned_until=None, now=now,
        horizon_end=horizon_end, resolver=resolver, key=spot_key(settings.secret_key),
    )  # fmt: skip
    wanted = {s.slot_key: s for s in plan.slots} if promptable else {}
    result = ReplanResult()
    existing = session.execute(
        select(
            CheckinPrompt.id,
            CheckinPrompt.slot_key,
            CheckinPrompt.state,
            CheckinPrompt.opens_at,
            CheckinPrompt.due_at,
            CheckinPrompt.max_attempts,
        ).where(
            CheckinPrompt.person_id == person.id,
            or_(
                and_(CheckinPrompt.state == PromptState.planned, CheckinPrompt.opens_at > now),
                CheckinPrompt.slot_key.in_(list(wanted)),
            ),
        )
    ).all()
    taken: set[str] = set()
    busy = [(s.opens_at, s.due_at) for s in plan.slots if s.kind is PromptKind.scheduled]
    for pid, slot_key, state, opens_at, due_at, max_attempts in existing:
        taken.add(slot_key)
        slot = wanted.get(slot_key)
        if state is PromptState.planned and opens_at > now:
            if slot is None:
                result.cancelled += _cas(session, pid, PromptState.planned, {
                    "state": PromptState.cancelled, "closed_at": now,
                })  # fmt: skip
                continue
            keep = (opens_at, due_at) == (slot.opens_at, slot.due_at) or (
                slot.kind is PromptKind.spot
                and spot_fits(
                    opens_at, due_at, policy=plan.policy, zone=plan.zone, busy=busy,
                    not_before=now, not_after=person.isolation_end,
                )
            )  # fmt: skip
            values: dict[str, Any] = {}
            if not keep:
                values = {"opens_at": slot.opens_at, "remind_at": slot.remind_at,
                          "due_at": slot.due_at}  # fmt: skip
            if max_attempts != plan.policy.max_attempts:
                values["max_attempts"] = plan.policy.max_attempts
            if values:
                result.moved += _cas(session, pid, PromptState.planned, values)
        elif state is PromptState.cancelled and slot is not None and slot.opens_at > now:
            row = _prompt_row(person.id, slot, plan.policy, now)
            revived = {k: row[k] for k in ("opens_at", "remind_at", "due_at", "nonce",
                                           "max_attempts", "challenge")}  # fmt: skip
            result.created += _cas(session, pid, PromptState.cancelled, {
                **revived, "state": PromptState.planned, "closed_at": None,
            })  # fmt: skip
    fresh = [
        _prompt_row(person.id, s, plan.policy, now) for k, s in wanted.items() if k not in taken
    ]
    result.created += len(
        sql.insert_ignore(
            session,
            _PROMPTS,
            fresh,
            conflict=("person_id", "slot_key"),
            returning=[_PROMPTS.c.id],
        )  # fmt: skip
    )
    sql.upsert(
        session,
        SchedulePlan.__table__,
        [{"person_id": person.id, "planned_until": plan.planned_until, "updated_at": now}],
        conflict=("person_id",),
        update_columns=("planned_until", "updated_at"),
    )
    return result


def _cas(session: Session, prompt_id: int, old: PromptState, values: dict[str, Any]) -> int:
    moved = sql.update_ids(
        session,
        CheckinPrompt,
        [prompt_id],
        where=[CheckinPrompt.state == old],
        values=values,
        returning=[CheckinPrompt.id],
        synchronize="auto",
    )
    return len(moved)
