"""Raising and acting on alerts. Escalation over time is in :mod:`server.alerts.escalation`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.enums import AlertKind
from server.people.models import Person

#: Per kind: (severity 1-4, minutes the ward has to acknowledge before the district is told).
#: Severe symptoms get the shortest deadline; areas may override minutes (Area.escalation_policy).
ALERT_POLICY: dict[AlertKind, tuple[int, int]] = {
    AlertKind.severe_symptoms: (4, 10),
    AlertKind.failed_verification: (3, 30),
    AlertKind.outside_home: (3, 30),
    AlertKind.missed_checkin: (2, 30),
    AlertKind.high_risk: (2, 60),
    AlertKind.non_reporting: (1, 120),
}


def raise_alert(
    *,
    session: Session,
    person: Person,
    kind: AlertKind,
    now: datetime,
    dedupe_key: str,
    prompt_id: int | None = None,
    attempt_id: int | None = None,
    declaration_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> tuple[Alert, bool]:
    """Raise an alert for ``person``'s ward, once per ``dedupe_key``; returns ``(alert, created)``.

    The acknowledgement deadline (``next_escalation_at``) comes from :data:`ALERT_POLICY`."""
    existing = session.scalar(select(Alert).where(Alert.dedupe_key == dedupe_key))
    if existing is not None:
        return existing, False
    severity, minutes = ALERT_POLICY[kind]
    alert = Alert(
        person_id=person.id,
        area_id=person.ward_id,
        kind=kind,
        severity=severity,
        dedupe_key=dedupe_key,
        escalation_level=0,
        next_escalation_at=now + timedelta(minutes=minutes),
        prompt_id=prompt_id,
        attempt_id=attempt_id,
        declaration_id=declaration_id,
        details=details,
        created_at=now,
    )
    session.add(alert)
    session.flush()
    return alert, True
