"""Raising and acting on alerts. Escalation over time is in :mod:`server.alerts.escalation`.

Every alert is told to its ward's staff when it is raised (through
:mod:`server.notify.alerts`, in the same transaction, via the outbox). Staff then
acknowledge it (tiếp nhận: the escalation chain stops) and resolve it (xử lý xong); both are
compare-and-swap updates and both leave an audit event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.alerts.models import Alert, AlertOccurrence
from server.core import audit, sql
from server.core.enums import AlertKind, AlertState
from server.people.models import Area, Person, StaffUser
from server.scope import alert_visible

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
#: Longest acknowledgement deadline an area may set (minutes; one week).
MAX_DEADLINE_MINUTES = 7 * 24 * 60


class AlertStateError(ValueError):
    """The alert is not in a state that allows the action (``code`` says which)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AlertScopeError(PermissionError):
    """The staff member's area does not contain the alert's ward."""


def area_chain(*, session: Session, area_id: int) -> list[Area]:
    """``area_id`` and its ancestors, the top (city) first, from the materialised path."""
    area = session.get(Area, area_id)
    if area is None:
        return []
    ids = area.chain_ids
    by_id = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def deadline_minutes(kind: AlertKind, chain: list[Area]) -> int:
    """Minutes the last area of ``chain`` (top first) has to acknowledge a ``kind`` alert:
    :data:`ALERT_POLICY`, overridden by ``escalation_policy[kind]`` of the nearest area that sets
    it (ward over district over city). Invalid values are ignored."""
    minutes = ALERT_POLICY[kind][1]
    for area in chain:
        value = (area.escalation_policy or {}).get(kind.value)
        if isinstance(value, int | float) and 1 <= value <= MAX_DEADLINE_MINUTES:
            minutes = int(value)
    return minutes


def validate_escalation_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """Check the deadline part of an ``Area.escalation_policy`` ({alert kind: minutes}); keys
    that are not alert kinds (e.g. the notification routing under ``"notify"``) are left to their
    owners. Raises ValueError naming the bad entry; returns a copy."""
    kinds = {k.value for k in AlertKind}
    for key, value in policy.items():
        if key not in kinds:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not 1 <= value <= MAX_DEADLINE_MINUTES:
            raise ValueError(f"{key}: minutes must be between 1 and {MAX_DEADLINE_MINUTES}")
    return dict(policy)


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

    1. An alert or an absorbed occurrence with ``dedupe_key`` exists → return its alert
       (nothing else happens).
    2. An ``open`` alert of ``kind`` for ``person`` exists → the event is a repeat: absorb it
       (:func:`absorb`: counted on that alert, evidence kept, nobody told again).
    3. Otherwise insert it at level 0 (ward) with severity from :data:`ALERT_POLICY` and the
       acknowledgement deadline ``next_escalation_at`` from the ward's effective policy
       (:func:`deadline_minutes`).
    4. Tell the ward's staff (outbox, same transaction)."""
    existing = _known(session, dedupe_key)
    if existing is not None:
        return existing, False
    open_alert = _open_alert(session, person_id=person.id, kind=kind)
    if open_alert is not None:
        absorb(
            session=session, alert=open_alert, now=now, dedupe_key=dedupe_key,
            prompt_id=prompt_id, attempt_id=attempt_id, declaration_id=declaration_id,
            details=details,
        )  # fmt: skip
        return open_alert, False
    severity, _ = ALERT_POLICY[kind]
    minutes = deadline_minutes(kind, area_chain(session=session, area_id=person.ward_id))
    values = {
        "person_id": person.id,
        "area_id": person.ward_id,
        "kind": kind,
        "severity": severity,
        "state": AlertState.open,
        "dedupe_key": dedupe_key,
        "escalation_level": 0,
        "next_escalation_at": now + timedelta(minutes=minutes),
        "prompt_id": prompt_id,
        "attempt_id": attempt_id,
        "declaration_id": declaration_id,
        "details": details,
        "created_at": now,
    }
    # ON CONFLICT DO NOTHING: a concurrent sweep inserting the same key first is not an error
    table = Alert.__table__
    inserted = sql.insert_ignore(
        session, table, [values], conflict=("dedupe_key",), returning=[table.c.id]
    )
    if not inserted:
        existing = session.scalar(select(Alert).where(Alert.dedupe_key == dedupe_key))
        assert existing is not None
        return existing, False
    alert = session.get(Alert, inserted[0].id)
    assert alert is not None
    from server.notify.alerts import notify_level

    notify_level(session=session, alert=alert, now=now)
    return alert, True


def _known(session: Session, dedupe_key: str) -> Alert | None:
    """The alert that already stands for the event ``dedupe_key`` (raised or absorbed)."""
    alert = session.scalar(select(Alert).where(Alert.dedupe_key == dedupe_key))
    if alert is not None:
        return alert
    alert_id = session.scalar(
        select(AlertOccurrence.alert_id).where(AlertOccurrence.dedupe_key == dedupe_key)
    )
    return session.get(Alert, alert_id) if alert_id is not None else None


def _open_alert(session: Session, *, person_id: int, kind: AlertKind) -> Alert | None:
    """The person's oldest ``open`` (not yet taken on) alert of ``kind``."""
    return session.scalar(
        select(Alert)
        .where(Alert.person_id == person_id, Alert.kind == kind, Alert.state == AlertState.open)
        .order_by(Alert.id)
        .limit(1)
    )


def absorb(
    *,
    session: Session,
    alert: Alert,
    now: datetime,
    dedupe_key: str,
    prompt_id: int | None = None,
    attempt_id: int | None = None,
    declaration_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Count a repeat of ``alert``'s event on it: the evidence becomes an
    :class:`AlertOccurrence` (once per ``dedupe_key``), ``occurrences`` goes up by one and
    ``last_occurred_at`` is ``now``. No message is sent: the ward was told when the alert was
    raised and the alert is still open in its queue. Returns False when the key was known."""
    table = AlertOccurrence.__table__
    inserted = sql.insert_ignore(
        session, table,
        [{"alert_id": alert.id, "dedupe_key": dedupe_key, "occurred_at": now,
          "prompt_id": prompt_id, "attempt_id": attempt_id, "declaration_id": declaration_id,
          "details": details}],
        conflict=("dedupe_key",), returning=[table.c.id],
    )  # fmt: skip
    if not inserted:
        return False
    session.execute(
        update(Alert)
        .where(Alert.id == alert.id)
        .values(occurrences=Alert.occurrences + 1, last_occurred_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(alert, ["occurrences", "last_occurred_at"])
    return True


def occurrences_of(*, session: Session, alert_id: int) -> list[AlertOccurrence]:
    """The repeats an alert absorbed, oldest first (the evidence shown with the alert)."""
    return list(
        session.scalars(
            select(AlertOccurrence)
            .where(AlertOccurrence.alert_id == alert_id)
            .order_by(AlertOccurrence.occurred_at, AlertOccurrence.id)
        )
    )


@dataclass(frozen=True)
class AlertRequest:
    """One alert to raise with :func:`raise_alerts` (``ward_id``: the person's ward)."""

    person_id: int
    ward_id: int
    kind: AlertKind
    dedupe_key: str
    prompt_id: int | None = None
    details: dict[str, Any] | None = None


def raise_alerts(
    *, session: Session, requests: Sequence[AlertRequest], now: datetime
) -> list[Alert]:
    """:func:`raise_alert` for many alerts in a few statements (sweeps: a batch of missed
    prompts). Same rules: one alert per ``dedupe_key`` (``ON CONFLICT DO NOTHING``), a repeat
    absorbed by the person's open alert of its kind, level 0, the ward's deadline, the ward
    told. Returns the alerts created by this call."""
    if not requests:
        return []
    # Repeats: a request whose event is already known is dropped; one whose person has an open
    # alert of its kind (or an earlier request of this batch for the same person and kind) is
    # absorbed into that alert instead of raising another.
    keys = [r.dedupe_key for r in requests]
    known = set(session.scalars(select(Alert.dedupe_key).where(Alert.dedupe_key.in_(keys))))
    known |= set(
        session.scalars(
            select(AlertOccurrence.dedupe_key).where(AlertOccurrence.dedupe_key.in_(keys))
        )
    )
    open_by: dict[tuple[int, AlertKind], Alert] = {}
    for alert in session.scalars(
        select(Alert)
        .where(
            Alert.person_id.in_({r.person_id for r in requests}),
            Alert.kind.in_({r.kind for r in requests}),
            Alert.state == AlertState.open,
        )
        .order_by(Alert.id.desc())
    ):
        open_by[(alert.person_id, alert.kind)] = alert  # the oldest wins (ordered newest first)
    fresh: list[AlertRequest] = []
    repeats: list[AlertRequest] = []
    firsts: set[tuple[int, AlertKind]] = set()
    for r in requests:
        if r.dedupe_key in known:
            continue
        known.add(r.dedupe_key)
        key = (r.person_id, r.kind)
        if key in open_by or key in firsts:
            repeats.append(r)
        else:
            firsts.add(key)
            fresh.append(r)
    created = _insert_alerts(session=session, requests=fresh, now=now)
    for alert in created:
        open_by.setdefault((alert.person_id, alert.kind), alert)
    for r in repeats:
        target = open_by.get((r.person_id, r.kind)) or _open_alert(
            session, person_id=r.person_id, kind=r.kind
        )
        if target is not None:
            absorb(
                session=session, alert=target, now=now, dedupe_key=r.dedupe_key,
                prompt_id=r.prompt_id, details=r.details,
            )  # fmt: skip
    return created


def _insert_alerts(
    *, session: Session, requests: Sequence[AlertRequest], now: datetime
) -> list[Alert]:
    if not requests:
        return []
    chains: dict[int, list[Area]] = {}
    rows = []
    for r in requests:
        if r.ward_id not in chains:
            chains[r.ward_id] = area_chain(session=session, area_id=r.ward_id)
        minutes = deadline_minutes(r.kind, chains[r.ward_id])
        rows.append({
            "person_id": r.person_id, "area_id": r.ward_id, "kind": r.kind,
            "severity": ALERT_POLICY[r.kind][0], "state": AlertState.open,
            "dedupe_key": r.dedupe_key, "escalation_level": 0,
            "next_escalation_at": now + timedelta(minutes=minutes), "prompt_id": r.prompt_id,
            "attempt_id": None, "declaration_id": None, "details": r.details, "created_at": now,
        })  # fmt: skip
    table = Alert.__table__
    inserted = sql.insert_ignore(
        session, table, rows, conflict=("dedupe_key",), returning=[table.c.id]
    )
    ids = [row.id for row in inserted]
    if not ids:
        return []
    alerts = list(session.scalars(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id)))
    from server.notify.alerts import notify_levels

    notify_levels(session=session, alerts=alerts, now=now)
    return alerts


def _act(
    *,
    session: Session,
    alert_id: int,
    staff: StaffUser,
    now: datetime,
    allowed: tuple[AlertState, ...],
    values: dict[str, Any],
    action: str,
    note: str | None,
    ip: str | None,
) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertStateError("not_found", f"no alert {alert_id}")
    if not staff.is_active or not alert_visible(session=session, staff=staff, alert=alert):
        raise AlertScopeError(f"alert {alert_id} is outside {staff.username}'s area")
    moved = session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.state.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(alert)
    if moved != 1:
        raise AlertStateError(f"alert_{alert.state.value}", f"alert {alert_id} is {alert.state}")
    audit.record(
        session=session,
        actor_kind="staff",
        actor_id=staff.id,
        action=action,
        target_kind="alert",
        target_id=alert.id,
        area_id=alert.area_id,
        ip=ip,
        at=now,
        details={"escalation_level": alert.escalation_level, "note": note},
    )
    return alert


def acknowledge_alert(
    *,
    session: Session,
    alert_id: int,
    staff: StaffUser,
    now: datetime,
    note: str | None = None,
    ip: str | None = None,
) -> Alert:
    """Staff take the alert on (tiếp nhận): ``open → acknowledged``, the escalation chain stops
    (``next_escalation_at`` cleared). Staff of the alert's ward or any area above it, or an
    administrator, may do it. Raises :class:`AlertStateError` (``alert_acknowledged`` /
    ``alert_resolved``) when someone was first, :class:`AlertScopeError` out of scope.
    Audited as ``alert.acknowledge``."""
    return _act(
        session=session, alert_id=alert_id, staff=staff, now=now, allowed=(AlertState.open,),
        values={"state": AlertState.acknowledged, "acknowledged_at": now,
                "acknowledged_by_id": staff.id, "next_escalation_at": None},
        action="alert.acknowledge", note=note, ip=ip,
    )  # fmt: skip


def resolve_alert(
    *,
    session: Session,
    alert_id: int,
    staff: StaffUser,
    now: datetime,
    note: str,
    ip: str | None = None,
) -> Alert:
    """Close the alert (xử lý xong) with a note: ``open | acknowledged → resolved``. Resolving
    an open alert acknowledges it too. Audited as ``alert.resolve``."""
    if not note or not note.strip():
        raise AlertStateError("note_required", "resolving an alert needs a note")
    alert = session.get(Alert, alert_id)
    extra: dict[str, Any] = {}
    if alert is not None and alert.acknowledged_at is None:
        extra = {"acknowledged_at": now, "acknowledged_by_id": staff.id}
    return _act(
        session=session, alert_id=alert_id, staff=staff, now=now,
        allowed=(AlertState.open, AlertState.acknowledged),
        values={"state": AlertState.resolved, "resolved_at": now, "resolved_by_id": staff.id,
                "resolution_note": note[:2000], "next_escalation_at": None, **extra},
        action="alert.resolve", note=note[:2000], ip=ip,
    )  # fmt: skip
