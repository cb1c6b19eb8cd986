"""Alerts (cảnh báo) staff must act on, with their escalation state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, utcnow
from server.core.enums import AlertKind, AlertState, db_enum


class Alert(Base):
    """``escalation_level`` 0 = ward, 1 = district, 2 = city. ``next_escalation_at`` is the
    acknowledgement deadline the escalation sweep watches; None once acknowledged or at the top.
    ``dedupe_key`` makes raising an alert idempotent (one alert per triggering event).

    While an alert is ``open``, the next occurrence of the same kind for the same person does not
    raise another one: it is absorbed (``occurrences`` + 1, ``last_occurred_at``) and its evidence
    kept as an :class:`AlertOccurrence` (docs/declarations.md, "Repeated alerts")."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_state_next_escalation", "state", "next_escalation_at"),
        Index("ix_alerts_area_state", "area_id", "state"),
        # the alert queue (open and acknowledged, most urgent first) and statistics (issue 18)
        Index(
            "ix_alerts_queue",
            "severity",
            "created_at",
            "id",
            postgresql_where=text("state IN ('open', 'acknowledged')"),
            sqlite_where=text("state IN ('open', 'acknowledged')"),
        ),
        Index("ix_alerts_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    #: The ward the alert belongs to (the person's ward when it was raised).
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    kind: Mapped[AlertKind] = mapped_column(db_enum(AlertKind, "alert_kind"))
    #: 1 (lowest) … 4 (most urgent); the queue sorts by it.
    severity: Mapped[int] = mapped_column(Integer)
    state: Mapped[AlertState] = mapped_column(
        db_enum(AlertState, "alert_state"), default=AlertState.open
    )
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None]
    prompt_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_prompts.id"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_attempts.id"))
    declaration_id: Mapped[int | None] = mapped_column(ForeignKey("declarations.id"))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolution_note: Mapped[str | None] = mapped_column(String(2000))
    #: How many triggering events this alert stands for (1 + its absorbed occurrences).
    occurrences: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: When the last absorbed occurrence happened (None: only the first).
    last_occurred_at: Mapped[datetime | None]


class AlertOccurrence(Base):
    """A repeat of an open alert's event (e.g. a second red declaration a minute later): no
    second alert, no second message, but the evidence kept. ``dedupe_key`` is the key the repeat
    would have had as an alert of its own, so raising it again is still idempotent."""

    __tablename__ = "alert_occurrences"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    occurred_at: Mapped[datetime]
    prompt_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_prompts.id"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_attempts.id"))
    declaration_id: Mapped[int | None] = mapped_column(ForeignKey("declarations.id"))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
