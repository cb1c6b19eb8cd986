"""Check-in on demand (Yêu cầu điểm danh ngay): staff ask one person, or everyone in a ward, to
check in now — a spot check outside the schedule — and ``isocheck demo`` leaves one open prompt
so a first run shows a check-in end to end.

A requested prompt is an ordinary ``spot`` prompt with the slot key ``demand/<UTC stamp>``: it
opens at once (``planned`` with ``opens_at = now``; the open sweep opens it and pushes the phone
within one scheduler interval), is due after the person's ``response_minutes`` and is judged,
missed and alerted like any other. Refused per person, with a reason:

- ``quiet_hours``: nobody is asked to check in at night;
- ``prompt_live``: a prompt is already planned to open or open now (answer that one);
- ``too_soon``: one request per person per :data:`COOLDOWN` (the rate limit);
- ``not_active``: not in home isolation now.

Each prompt made is audited as ``checkin.request`` (who asked, for whom).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from server.checkins.models import CheckinPrompt
from server.core import audit
from server.core.enums import PersonStatus, PromptKind, PromptState
from server.people.models import Person
from server.schedule.policy import PolicyResolver

#: One requested check-in per person per this long.
COOLDOWN = timedelta(minutes=15)
#: A ward-wide request asks at most this many people at once.
MAX_PEOPLE = 500
SLOT_PREFIX = "demand/"
LIVE = (PromptState.planned, PromptState.open)


@dataclass
class Requested:
    prompts: list[CheckinPrompt] = field(default_factory=list)
    #: person id -> reason code (``quiet_hours``, ``prompt_live``, ``too_soon``, ``not_active``)
    refused: dict[int, str] = field(default_factory=dict)


def request_checkins(
    *,
    session: Session,
    persons: Sequence[Person],
    now: datetime,
    resolver: PolicyResolver,
    actor_id: int | None,
    ip: str | None = None,
    quiet_hours: bool = True,
) -> Requested:
    """Make a prompt that opens now for each of ``persons`` that may be asked (module docstring);
    the caller has checked they are in the staff member's scope. ``quiet_hours=False`` only for
    the demo's fictional person (a first run at 23:00 still shows a check-in)."""
    out = Requested()
    for person in list(persons)[:MAX_PEOPLE]:
        if (
            person.status is not PersonStatus.active
            or not person.isolation_start <= now < person.isolation_end
        ):
            out.refused[person.id] = "not_active"
            continue
        policy = resolver.policy(ward_id=person.ward_id, person_overrides=person.schedule_policy)
        zone = resolver.zone(ward_id=person.ward_id, person_zone=person.timezone)
        due = now + policy.response
        if quiet_hours and (
            policy.is_quiet(now, zone) or policy.is_quiet(due - timedelta(seconds=1), zone)
        ):
            out.refused[person.id] = "quiet_hours"
            continue
        P = CheckinPrompt
        live = session.scalar(
            select(exists().where(P.person_id == person.id, P.state.in_(LIVE), P.opens_at <= due))
        )
        if live:
            out.refused[person.id] = "prompt_live"
            continue
        recent = session.scalar(
            select(
                exists().where(
                    P.person_id == person.id,
                    P.slot_key.startswith(SLOT_PREFIX),
                    P.created_at > now - COOLDOWN,
                )
            )
        )
        if recent:
            out.refused[person.id] = "too_soon"
            continue
        remind = due - timedelta(minutes=policy.remind_before_due_minutes)
        prompt = CheckinPrompt(
            person_id=person.id,
            slot_key=f"{SLOT_PREFIX}{now.strftime('%Y%m%dT%H%M%S')}",
            kind=PromptKind.spot,
            state=PromptState.planned,
            opens_at=now,
            remind_at=remind if remind > now else None,
            due_at=due,
            nonce=secrets.token_urlsafe(24),
            max_attempts=policy.max_attempts,
            attempts_used=0,
            challenge=None,
            created_at=now,
        )
        session.add(prompt)
        session.flush()
        audit.record(
            session=session,
            actor_kind="staff" if actor_id else "system",
            actor_id=actor_id,
            action="checkin.request",
            target_kind="person",
            target_id=person.id,
            area_id=person.ward_id,
            ip=ip,
            at=now,
            details={"prompt_id": prompt.id, "due_at": due.isoformat()},
        )
        out.prompts.append(prompt)
    return out
