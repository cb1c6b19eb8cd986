"""What staff are told about alerts: the one place alerts reach the outbox.

:func:`notify_level` delegates to :func:`notify_alert`, which picks the
recipients of the alert's *current* escalation level (ward, district, city) from the area's
routing and writes one idempotent row per recipient and channel. Call it after the alert row has
its new level. :func:`notify_levels` writes the same rows for a whole batch of alerts (the close
sweep), and :func:`renotify_top` repeats the top level's rows under new keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core import sql
from server.core.enums import NotificationState, StaffRole
from server.notify.messaging import AlertFacts, alert_payload
from server.notify.models import Notification
from server.notify.outbox import fit_key
from server.notify.routing import (
    DEFAULT_ROUTING,
    ROUTING_KEY,
    alert_recipients,
    validate_routing,
)
from server.people.models import Area, Person, StaffUser, path_ids
from server.schedule.policy import zone_resolver


def notify_level(*, session: Session, alert: AlertFacts, now: datetime) -> int:
    """Tell the staff of ``alert``'s current level; returns how many outbox rows exist for it."""
    return len(notify_alert(session=session, alert=alert, now=now))


def renotify_top(*, session: Session, alert: AlertFacts, now: datetime, round_no: int) -> int:
    """Tell the top level again (an alert nobody acknowledged at the city's deadline).

    ``notify_alert`` keys rows by level, so a repeat at the same level would write nothing; the
    repeat is written as the same rows under ``alert:<id>:L<level>r<round>`` keys."""
    from server.notify.outbox import enqueue

    rows = notify_alert(session=session, alert=alert, now=now)
    written = 0
    for row in rows:
        key = row.idempotency_key.replace(
            f"alert:{alert.id}:L{alert.escalation_level}",
            f"alert:{alert.id}:L{alert.escalation_level}r{round_no}",
            1,
        )
        payload = {k: v for k, v in row.payload.items() if k != "idempotency_key"}
        payload["repeat"] = round_no
        enqueue(
            session=session, channel=row.channel, recipient=row.recipient, payload=payload,
            idempotency_key=key[:128], now=now, person_id=row.person_id, staff_id=row.staff_id,
            alert_id=row.alert_id, prompt_id=row.prompt_id,
        )  # fmt: skip
        written += 1
    return written


def notify_levels(*, session: Session, alerts: Sequence[AlertFacts], now: datetime) -> int:
    """:func:`notify_level` for many alerts at once, in a handful of statements.

    The one writer of alert rows (:func:`notify_alert` is this call for one alert), for sweeps
    that raise thousands of alerts at once. Returns the number of rows offered."""
    if not alerts:
        return 0
    rows = alert_rows(session=session, alerts=alerts, now=now)
    sql.insert_ignore_many(session, Notification.__table__, rows, conflict=("idempotency_key",))
    return len(rows)


def notify_alert(*, session: Session, alert: AlertFacts, now: datetime) -> list[Notification]:
    """Enqueue the notifications for ``alert`` at its current escalation level.

    1. Find the target area (ward / district / city for level 0 / 1 / 2) and the routing.
    2. For each staff rule matching the alert's kind and level: each matching active staff
       member gets one row per listed channel they can be reached on.
    3. Each matching webhook gets one row.
    4. If nothing was written, one ``log`` row records that nobody could be told.
    Idempotent: keys are ``alert:<id>:L<level>:<channel>:<recipient>``, so calling it again for
    the same level writes nothing new. Returns the rows (new or existing)."""
    if session.get(Person, alert.person_id) is None or session.get(Area, alert.area_id) is None:
        raise ValueError(f"alert {alert.id} has no person or area")
    rows = alert_rows(session=session, alerts=[alert], now=now)
    sql.insert_ignore_many(session, Notification.__table__, rows, conflict=("idempotency_key",))
    keys = [row["idempotency_key"] for row in rows]
    found = {
        n.idempotency_key: n
        for n in session.scalars(
            select(Notification).where(Notification.idempotency_key.in_(keys))
        )
    }
    return [found[k] for k in keys if k in found]


def alert_rows(
    *, session: Session, alerts: Sequence[AlertFacts], now: datetime
) -> list[dict[str, Any]]:
    """The outbox rows for ``alerts`` at their current levels (not written), in a handful of
    statements: routing from the nearest ``"notify"`` up each ward's chain, recipients by
    :func:`server.notify.routing.alert_recipients`."""
    persons = {
        p.id: p
        for p in session.scalars(select(Person).where(Person.id.in_({a.person_id for a in alerts})))
    }
    ward_ids = {a.area_id for a in alerts}
    wards = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(ward_ids)))}
    wanted = {i for w in wards.values() for i in path_ids(w.path)} | ward_ids
    areas = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(wanted)))}
    doctors = {
        s.id: s
        for s in session.scalars(
            select(StaffUser).where(
                StaffUser.id.in_({p.doctor_id for p in persons.values() if p.doctor_id})
            )
        )
    }
    admins: list[StaffUser] | None = None
    area_staff: dict[int, list[StaffUser]] = {}
    routings: dict[int, dict[str, Any]] = {}

    def chain(ward: Area) -> list[Area]:
        ids = ward.chain_ids
        return [areas[i] for i in ids if i in areas]

    def staff_of(roles: list[str], target: Area, person: Person) -> list[StaffUser]:
        nonlocal admins
        found: dict[int, StaffUser] = {}
        if "area_staff" in roles:
            if target.id not in area_staff:
                area_staff[target.id] = list(session.scalars(select(StaffUser).where(
                    StaffUser.is_active.is_(True), StaffUser.role == StaffRole.area_staff,
                    StaffUser.area_id == target.id)))  # fmt: skip
            found |= {s.id: s for s in area_staff[target.id]}
        if "admin" in roles:
            if admins is None:
                admins = list(session.scalars(select(StaffUser).where(
                    StaffUser.is_active.is_(True), StaffUser.role == StaffRole.admin)))  # fmt: skip
            found |= {s.id: s for s in admins}
        if "doctor" in roles and person.doctor_id in doctors:
            doctor = doctors[person.doctor_id]
            if doctor.is_active:
                found[doctor.id] = doctor
        return [found[k] for k in sorted(found)]

    rows: dict[str, dict[str, Any]] = {}
    zones = zone_resolver(session=session)  # times in the ward's zone (ward → district → city)
    for alert in alerts:
        person, ward = persons[alert.person_id], wards[alert.area_id]
        level = alert.escalation_level
        links = chain(ward)
        target = links[max(0, len(links) - 1 - level)]
        if ward.id not in routings:
            routings[ward.id] = DEFAULT_ROUTING
            for area in reversed(links):
                if ROUTING_KEY in (area.escalation_policy or {}):
                    routings[ward.id] = validate_routing(area.escalation_policy[ROUTING_KEY])
                    break
        routing = routings[ward.id]
        payload = alert_payload(
            alert=alert, person=person, ward=ward, level=level,
            zone=zones.zone(ward_id=ward.id, person_zone=None),
        )  # fmt: skip
        base = f"alert:{alert.id}:L{level}"
        mine: dict[str, dict[str, Any]] = {}

        def add(channel: str, recipient: str, key: str, staff_id: int | None = None,
                alert=alert, person=person, payload=payload, mine=mine) -> None:  # fmt: skip
            key = fit_key(key)
            mine.setdefault(key, {
                "channel": channel, "recipient": recipient,
                "payload": {**payload, "idempotency_key": key}, "idempotency_key": key,
                "state": NotificationState.pending, "attempts": 0, "next_attempt_at": now,
                "person_id": person.id, "staff_id": staff_id, "alert_id": alert.id,
                "prompt_id": alert.prompt_id, "created_at": now,
            })  # fmt: skip

        for channel, recipient, key, staff_id in alert_recipients(
            routing=routing, kind=alert.kind, level=level, target=target, base=base,
            staff_of=lambda roles, target=target, person=person: staff_of(roles, target, person),
        ):  # fmt: skip
            add(channel, recipient, key, staff_id)
        rows |= mine
    return list(rows.values())
