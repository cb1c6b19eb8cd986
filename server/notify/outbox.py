"""Writing notifications into the outbox. Delivery (channels, retries) lives in
:mod:`server.notify.delivery`; here only the row is written, inside the caller's transaction."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.notify.models import Notification

MAX_KEY = 128


def enqueue(
    *,
    session: Session,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    idempotency_key: str,
    now: datetime,
    person_id: int | None = None,
    staff_id: int | None = None,
    alert_id: int | None = None,
    prompt_id: int | None = None,
) -> Notification:
    """Add a pending notification unless one with ``idempotency_key`` exists (then return it).

    The key is copied into the payload so receivers can drop duplicates (delivery is
    at-least-once)."""
    existing = session.scalar(
        select(Notification).where(Notification.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing
    row = Notification(
        channel=channel,
        recipient=recipient,
        payload={**payload, "idempotency_key": idempotency_key},
        idempotency_key=idempotency_key,
        next_attempt_at=now,
        created_at=now,
        person_id=person_id,
        staff_id=staff_id,
        alert_id=alert_id,
        prompt_id=prompt_id,
    )
    session.add(row)
    session.flush()
    return row


def fit_key(key: str) -> str:
    """Idempotency keys fit the column (128): a longer one keeps its start and gains a hash."""
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 41] + "#" + hashlib.sha256(key.encode()).hexdigest()[:40]
