"""Bounded growth (issue 18): the retention sweep trims what would otherwise grow forever.

- Delivered notifications (the outbox, ``state = 'sent'``) older than
  ``Settings.outbox_retention_days`` are deleted: a sent row is only evidence that it was sent,
  and the audit trail keeps what caused it.
- Audit events older than ``Settings.audit_retention_days`` are moved to ``audit_events_archive``
  (same columns; the dashboard's audit trail reads only the live table), so the live table a
  person's page searches stays the size of the recent past. 0 keeps everything.

Each run that moved anything writes one audit event ``retention.sweep`` with the counts and the
cut-off times (never the rows' contents). Rows are handled in batches, oldest first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from server.core import audit
from server.core.audit import AuditArchive, AuditEvent
from server.core.db import UTCDateTime
from server.core.enums import NotificationState
from server.notify.models import Notification

_COLUMNS = ("id", "at", "actor_kind", "actor_id", "action", "target_kind", "target_id",
            "area_id", "ip", "details")  # fmt: skip


def trim_outbox(*, session: Session, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` notifications delivered (``sent``) before ``before``."""
    ids = list(
        session.scalars(
            select(Notification.id)
            .where(Notification.state == NotificationState.sent, Notification.sent_at < before)
            .order_by(Notification.sent_at)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(Notification).where(Notification.id.in_(ids)))
    return len(ids)


def archive_audit(*, session: Session, before: datetime, now: datetime, limit: int) -> int:
    """Move up to ``limit`` audit events older than ``before`` to the archive."""
    ids = list(
        session.scalars(
            select(AuditEvent.id).where(AuditEvent.at < before).order_by(AuditEvent.id).limit(limit)
        )
    )
    if not ids:
        return 0
    columns = [getattr(AuditEvent, c) for c in _COLUMNS]
    session.execute(
        insert(AuditArchive).from_select(
            [*_COLUMNS, "archived_at"],
            select(*columns, bindparam("archived_at", now, type_=UTCDateTime())).where(
                AuditEvent.id.in_(ids)
            ),
        )
    )
    session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))
    return len(ids)


def sweep(
    *,
    session: Session,
    now: datetime,
    outbox_days: float,
    audit_days: float,
    limit: int,
    rounds: int = 50,
) -> int:
    """Trim the outbox and archive old audit events, ``limit`` rows a batch (committed), at most
    ``rounds`` batches of each; audits the run. ``*_days`` 0 = keep. Returns the rows moved."""
    outbox_before = now - timedelta(days=outbox_days) if outbox_days else None
    audit_before = now - timedelta(days=audit_days) if audit_days else None
    trimmed = archived = 0
    for _ in range(rounds):
        n = trim_outbox(session=session, before=outbox_before, limit=limit) if outbox_before else 0
        # the sweep's own audit event is newer than any cut-off: never archived by this run
        m = (
            archive_audit(session=session, before=audit_before, now=now, limit=limit)
            if audit_before
            else 0
        )
        session.commit()
        trimmed, archived = trimmed + n, archived + m
        if n < limit and m < limit:
            break
    if trimmed or archived:
        audit.record(
            session=session,
            actor_kind="system",
            action="retention.sweep",
            at=now,
            details={
                "outbox_deleted": trimmed,
                "outbox_sent_before": outbox_before.isoformat() if outbox_before else None,
                "audit_archived": archived,
                "audit_before": audit_before.isoformat() if audit_before else None,
            },
        )
        session.commit()
    return trimmed + archived
