"""Escalation (chuyển cấp): an alert nobody acknowledged in time goes one level up.

Levels: 0 = the ward's health station, 1 = the district, 2 = the city (the top). Each level has
its own acknowledgement deadline for the alert's kind (:func:`server.alerts.service.
deadline_minutes`: :data:`~server.alerts.service.ALERT_POLICY`, overridden per area by
``Area.escalation_policy`` = ``{kind: minutes}``, inherited ward → district → city).

At the top there is nobody left to escalate to, and going quiet would leave a severe alert
unseen: the city is told **again** until someone acknowledges or resolves the alert, with the
interval doubling each time (the city's deadline × 2, × 4, … capped at :data:`MAX_REPEAT`), so
an alert forgotten overnight pages a handful of times rather than every half hour. Each repeat
is a new outbox row; ``details.top_repeats`` counts them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.alerts.service import area_chain, deadline_minutes
from server.core import audit, sql
from server.core.enums import AlertState
from server.notify.alerts import notify_level, renotify_top

log = logging.getLogger("isocheck.alerts")
#: Longest interval between two repeats at the top level.
MAX_REPEAT = timedelta(hours=24)


def escalate_batch(*, session: Session, now: datetime, limit: int) -> int:
    """Escalate up to ``limit`` open alerts past their deadline; returns how many moved.

    1. Pick open alerts with ``next_escalation_at ≤ now``, oldest deadline first (PostgreSQL:
       ``FOR NO KEY UPDATE SKIP LOCKED``, so two schedulers take different alerts).
    2. For each, compare-and-swap on ``(id, state = 'open', escalation_level,
       next_escalation_at)``: below the top, ``escalation_level += 1`` and the next level's
       deadline; at the top, only the next deadline (a repeat). A lost swap means another
       scheduler or an acknowledgement got there first: skip it.
    3. Tell the new level (or the city again) through the outbox, and audit ``alert.escalate``.
    """
    query = (
        select(Alert)
        .where(Alert.state == AlertState.open, Alert.next_escalation_at <= now)
        .order_by(Alert.next_escalation_at, Alert.id)
    )
    alerts = list(session.scalars(sql.lock_batch(session, query, limit=limit, of=Alert)))
    moved = 0
    chains: dict[int, list] = {}
    for alert in alerts:
        chain = chains.get(alert.area_id)
        if chain is None:
            chain = chains[alert.area_id] = area_chain(session=session, area_id=alert.area_id)
        level, deadline = alert.escalation_level, alert.next_escalation_at
        top = len(chain) - 1  # ward-only chain (no parents) is its own top
        new_level = min(level + 1, top) if level < top else level
        target = chain[: len(chain) - new_level] if chain else []
        minutes = deadline_minutes(alert.kind, target)
        repeat = new_level == level
        values: dict = {}
        if repeat:
            rounds = int((alert.details or {}).get("top_repeats", 0)) + 1
            values["details"] = {**(alert.details or {}), "top_repeats": rounds}
            wait = min(timedelta(minutes=minutes) * 2**rounds, MAX_REPEAT)
        else:
            values["escalation_level"] = new_level
            wait = timedelta(minutes=minutes)
        values["next_escalation_at"] = now + wait
        won = session.execute(
            update(Alert)
            .where(
                Alert.id == alert.id,
                Alert.state == AlertState.open,
                Alert.escalation_level == level,
                Alert.next_escalation_at == deadline,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            continue
        moved += 1
        session.refresh(alert)
        if repeat:
            renotify_top(session=session, alert=alert, now=now, round_no=rounds)
        else:
            notify_level(session=session, alert=alert, now=now)
        audit.record(
            session=session, actor_kind="system", action="alert.escalate",
            target_kind="alert", target_id=alert.id, area_id=alert.area_id, at=now,
            details={"from_level": level, "to_level": new_level, "repeat": repeat,
                     "next_in_minutes": wait.total_seconds() / 60},
        )  # fmt: skip
    return moved
