"""What administrators see of the outbox, and what they can do about a dead notification."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.core.enums import NotificationState
from server.notify.models import Notification


@dataclass(frozen=True)
class OutboxReport:
    #: ``{state: {channel: count}}`` over the whole table.
    counts: dict[str, dict[str, int]]
    #: The listed rows: the dead ones, or those not yet delivered (pending and sending).
    rows: list[Notification] = field(default_factory=list)
    #: When the oldest undelivered row became due; None when nothing waits.
    oldest_due_at: datetime | None = None

    def total(self, state: NotificationState) -> int:
        return sum(self.counts.get(state.value, {}).values())


def outbox_report(
    *, session: Session, dead: bool = False, channel: str | None = None, limit: int = 50
) -> OutboxReport:
    """Counts per state and channel, the oldest undelivered row's due time, and up to ``limit``
    rows: dead ones newest first (``dead=True``), else pending/sending ones by due time."""
    counts: dict[str, dict[str, int]] = {}
    for state, chan, n in session.execute(
        select(Notification.state, Notification.channel, func.count()).group_by(
            Notification.state, Notification.channel
        )
    ):
        counts.setdefault(str(state), {})[chan] = n
    waiting = (NotificationState.pending, NotificationState.sending)
    oldest = session.scalar(
        select(func.min(Notification.next_attempt_at)).where(Notification.state.in_(waiting))
    )
    query = select(Notification)
    if channel:
        query = query.where(Notification.channel == channel)
    if dead:
        query = query.where(Notification.state == NotificationState.dead).order_by(
            Notification.id.desc()
        )
    else:
        query = query.where(Notification.state.in_(waiting)).order_by(
            Notification.next_attempt_at, Notification.id
        )
    rows = list(session.scalars(query.limit(limit)))
    return OutboxReport(counts=counts, rows=rows, oldest_due_at=oldest)


def requeue_dead(*, session: Session, ids: list[int], now: datetime) -> int:
    """Give dead notifications another full set of attempts (after a fix, e.g. a corrected
    address or credentials); returns how many were requeued. Compare-and-swap on ``dead``."""
    if not ids:
        return 0
    return session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.state == NotificationState.dead)
        .values(state=NotificationState.pending, attempts=0, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
