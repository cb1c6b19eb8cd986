"""The notification outbox: every message to a phone or a person is a row first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow
from server.core.enums import NotificationState, db_enum


class Notification(Base):
    """Written in the same transaction as the state change that causes it; delivered later by
    the delivery sweep with retries. ``idempotency_key`` travels in the payload so receivers can
    drop the (at most one) duplicate that at-least-once delivery allows."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_state_next_attempt", "state", "next_attempt_at"),
        # the retention sweep: delivered rows, oldest first (issue 18)
        Index(
            "ix_notifications_sent_at",
            "sent_at",
            postgresql_where=text("state = 'sent'"),
            sqlite_where=text("state = 'sent'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(4096))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    state: Mapped[NotificationState] = mapped_column(
        db_enum(NotificationState, "notification_state"), default=NotificationState.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    prompt_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_prompts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
