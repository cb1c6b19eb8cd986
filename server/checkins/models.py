"""Check-in prompts (yêu cầu điểm danh) and the attempts that answer them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.core.db import Base, utcnow
from server.core.enums import AttemptDecision, PromptKind, PromptState, db_enum

if TYPE_CHECKING:
    from server.people.models import StoredImage


#: The attempts the review queue lists by default (dashboard ``review_queue``): the predicate of
#: the partial index ``ix_checkin_attempts_review_queue``.
REVIEW_WAITING = (
    "review_outcome IS NULL AND (decision = 'review' OR (decision = 'rejected' AND "
    "code IN ('face_mismatch', 'liveness_failed', 'replayed_image')))"
)


class CheckinPrompt(Base):
    """One moment a person must check in. The row carries its own deadlines; the scheduler's
    sweeps move it ``planned → open → completed | failed | missed | missed_system | cancelled``
    with compare-and-swap updates on ``state``."""

    __tablename__ = "checkin_prompts"
    __table_args__ = (
        UniqueConstraint("person_id", "slot_key"),
        Index("ix_checkin_prompts_state_opens_at", "state", "opens_at"),
        Index("ix_checkin_prompts_state_due_at", "state", "due_at"),
        # statistics by day and their rollup (issue 18)
        Index("ix_checkin_prompts_due_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    #: Idempotency key of planning, e.g. ``2026-11-24/morning`` or ``2026-11-24/spot-1``.
    slot_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[PromptKind] = mapped_column(db_enum(PromptKind, "prompt_kind"))
    state: Mapped[PromptState] = mapped_column(
        db_enum(PromptState, "prompt_state"), default=PromptState.planned
    )
    opens_at: Mapped[datetime]
    remind_at: Mapped[datetime | None]
    due_at: Mapped[datetime]
    #: Single-use value the phone must echo with its selfie (binds the upload to this prompt).
    nonce: Mapped[str] = mapped_column(String(64))
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    attempts_used: Mapped[int] = mapped_column(Integer, default=0)
    #: Liveness challenge issued with the prompt, e.g. {"action": "turn_left"}; None = none asked.
    challenge: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    opened_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckinAttempt(Base):
    """One selfie upload answering a prompt, stored before it is judged."""

    __tablename__ = "checkin_attempts"
    __table_args__ = (
        UniqueConstraint("device_id", "idempotency_key"),
        # the review queue, oldest first: only the attempts waiting for a person (issue 18)
        Index(
            "ix_checkin_attempts_review_queue",
            "received_at",
            "id",
            postgresql_where=text(REVIEW_WAITING),
            sqlite_where=text(REVIEW_WAITING),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("checkin_prompts.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("stored_images.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    captured_at: Mapped[datetime | None]
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    distance_from_home_m: Mapped[float | None] = mapped_column(Float)
    #: None while the upload is being judged.
    decision: Mapped[AttemptDecision | None] = mapped_column(
        db_enum(AttemptDecision, "attempt_decision")
    )
    code: Mapped[str | None] = mapped_column(String(48))
    score: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Staff review of a `review`/`rejected` attempt: "same_person" or "not_same_person".
    review_outcome: Mapped[str | None] = mapped_column(String(24))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(String(2000))

    image: Mapped[StoredImage | None] = relationship()
