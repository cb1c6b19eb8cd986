"""Who is told what: outbox rows for an alert or for a person, written in the caller's transaction.

Alerts. The alert's escalation level picks the *target area*: level 0 the alert's ward, 1 its
district, 2 its city. The routing in force is the ``"notify"`` entry of ``Area.escalation_policy``
on the nearest area of the ward's chain (ward, then district, then city), else
:data:`DEFAULT_ROUTING`::

    {"staff": [                       # who among the staff, on which channels
        {"roles": ["area_staff"],     # area_staff / admin: staff of the target area / all admins
         "kinds": "*",                #   doctor: the person's assigned doctor, at any level
         "channels": ["fcm", "email"],#   fcm needs a push token, email an address; log always
         "levels": [0, 1, 2]}],       # optional: only at these escalation levels
     "webhooks": [                    # e.g. a city operations centre or an SMS gateway
        {"url": "https://ops.example/isocheck", "kinds": ["severe_symptoms"], "levels": [0]}]}

An alert that reaches nobody still gets one ``log`` row (recipient ``area:<id>``), so the outbox
shows that nobody could be told.

Persons. A person's message goes by ``fcm`` to the push token of each active (not revoked)
device, or to ``log`` when there is none. A web app's row says ``"platform": "web"`` in its
payload, so the FCM channel sends it as web push (:func:`for_device`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.enums import AlertKind, StaffRole
from server.notify.messaging import alert_payload, person_payload
from server.notify.models import Notification
from server.notify.outbox import enqueue
from server.people.models import Area, Device, Person, StaffUser

#: Used when no area on the ward's chain has a ``"notify"`` routing.
DEFAULT_ROUTING: dict[str, Any] = {
    "staff": [{"roles": ["area_staff"], "kinds": "*", "channels": ["fcm", "email"]}],
    "webhooks": [],
}
#: The key of ``Area.escalation_policy`` that holds the routing (the other keys are deadlines).
ROUTING_KEY = "notify"
STAFF_CHANNELS = ("fcm", "email", "log")
ROLES = ("area_staff", "admin", "doctor")
MAX_KEY = 128


# --------------------------------------------------------------------------- configuration


def validate_routing(routing: Any) -> dict[str, Any]:
    """Check a routing object (shape in the module docstring); return a normalised copy.
    Raises ValueError saying what is wrong."""
    if not isinstance(routing, dict):
        raise ValueError("routing must be an object with 'staff' and/or 'webhooks'")
    unknown = set(routing) - {"staff", "webhooks"}
    if unknown:
        raise ValueError(f"unknown routing keys {sorted(unknown)}")
    out: dict[str, Any] = {"staff": [], "webhooks": []}
    for i, rule in enumerate(routing.get("staff", [])):
        where = f"staff[{i}]"
        _only(rule, {"roles", "kinds", "channels", "levels"}, where)
        roles = _names(rule.get("roles"), ROLES, f"{where}.roles")
        channels = _names(rule.get("channels"), STAFF_CHANNELS, f"{where}.channels")
        out["staff"].append(
            {
                "roles": roles,
                "kinds": _kinds(rule.get("kinds", "*"), where),
                "channels": channels,
                **_levels(rule, where),
            }
        )
    for i, hook in enumerate(routing.get("webhooks", [])):
        where = f"webhooks[{i}]"
        _only(hook, {"url", "kinds", "levels"}, where)
        url = hook.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError(f"{where}.url must be an http(s) URL")
        out["webhooks"].append(
            {"url": url, "kinds": _kinds(hook.get("kinds", "*"), where), **_levels(hook, where)}
        )
    return out


def set_area_routing(*, session: Session, area: Area, routing: dict[str, Any] | None) -> None:
    """Store (or with None remove) ``area``'s routing under ``escalation_policy["notify"]``,
    leaving the policy's other keys alone. Validated first (ValueError)."""
    policy = dict(area.escalation_policy or {})
    if routing is None:
        policy.pop(ROUTING_KEY, None)
    else:
        policy[ROUTING_KEY] = validate_routing(routing)
    area.escalation_policy = policy or None
    session.flush()


def routing_for(*, session: Session, ward: Area) -> dict[str, Any]:
    """The routing in force for alerts of ``ward``: the nearest ``"notify"`` up its chain."""
    for area in reversed(_chain(session=session, area=ward)):
        policy = area.escalation_policy or {}
        if ROUTING_KEY in policy:
            return validate_routing(policy[ROUTING_KEY])
    return DEFAULT_ROUTING


# --------------------------------------------------------------------------- alerts


def notify_alert(*, session: Session, alert: Alert, now: datetime) -> list[Notification]:
    """Enqueue the notifications for ``alert`` at its current escalation level.

    1. Find the target area (ward / district / city for level 0 / 1 / 2) and the routing.
    2. For each staff rule matching the alert's kind and level: each matching active staff
       member gets one row per listed channel they can be reached on.
    3. Each matching webhook gets one row.
    4. If nothing was written, one ``log`` row records that nobody could be told.
    Idempotent: keys are ``alert:<id>:L<level>:<channel>:<recipient>``, so calling it again for
    the same level writes nothing new. Returns the rows (new or existing)."""
    person = session.get(Person, alert.person_id)
    ward = session.get(Area, alert.area_id)
    if person is None or ward is None:
        raise ValueError(f"alert {alert.id} has no person or area")
    level = alert.escalation_level
    chain = _chain(session=session, area=ward)
    target = chain[max(0, len(chain) - 1 - level)]
    routing = routing_for(session=session, ward=ward)
    payload = alert_payload(alert=alert, person=person, ward=ward, level=level)
    base = f"alert:{alert.id}:L{level}"
    common = {
        "session": session,
        "payload": payload,
        "now": now,
        "alert_id": alert.id,
        "person_id": person.id,
        "prompt_id": alert.prompt_id,
    }
    rows: list[Notification] = []
    seen: set[str] = set()

    def add(channel: str, recipient: str, key: str, staff_id: int | None = None) -> None:
        key = _key(key)
        if key not in seen:
            seen.add(key)
            rows.append(
                enqueue(
                    channel=channel,
                    recipient=recipient,
                    idempotency_key=key,
                    staff_id=staff_id,
                    **common,
                )
            )

    for channel, recipient, key, staff_id in alert_recipients(
        routing=routing, kind=alert.kind, level=level, target=target, base=base,
        staff_of=lambda roles: _staff(session=session, roles=roles, target=target, person=person),
    ):  # fmt: skip
        add(channel, recipient, key, staff_id)
    return rows


def alert_recipients(
    *,
    routing: dict[str, Any],
    kind: Any,
    level: int,
    target: Area,
    base: str,
    staff_of: Callable[[list[str]], list[StaffUser]],
) -> list[tuple[str, str, str, int | None]]:
    """Who is told about an alert of ``kind`` at ``level``, and on which channel: the one rule
    both :func:`notify_alert` and the escalation sweep's bulk version follow.

    Returns ``(channel, recipient, idempotency key, staff id)`` rows: per matching staff rule,
    each staff member ``staff_of(roles)`` names, on each listed channel they can be reached on;
    each matching webhook; and, when nobody can be told, one ``log`` row saying so."""
    out: list[tuple[str, str, str, int | None]] = []
    for rule in routing["staff"]:
        if not _matches(rule, kind, level):
            continue
        for staff in staff_of(rule["roles"]):
            for channel in rule["channels"]:
                if channel == "fcm" and staff.push_token:
                    out.append(("fcm", staff.push_token, f"{base}:fcm:s{staff.id}", staff.id))
                elif channel == "email" and staff.email:
                    out.append(("email", staff.email, f"{base}:email:s{staff.id}", staff.id))
                elif channel == "log":
                    out.append(("log", f"staff:{staff.id}", f"{base}:log:s{staff.id}", staff.id))
    for hook in routing["webhooks"]:
        if _matches(hook, kind, level):
            digest = hashlib.sha256(hook["url"].encode()).hexdigest()[:12]
            out.append(("webhook", hook["url"], f"{base}:webhook:{digest}", None))
    if not out:
        out.append(("log", f"area:{target.id}", f"{base}:log:nobody", None))
    return out


def _staff(*, session: Session, roles: list[str], target: Area, person: Person) -> list[StaffUser]:
    found: dict[int, StaffUser] = {}
    active = StaffUser.is_active.is_(True)
    if "area_staff" in roles:
        for s in session.scalars(
            select(StaffUser).where(
                active, StaffUser.role == StaffRole.area_staff, StaffUser.area_id == target.id
            )
        ):
            found[s.id] = s
    if "admin" in roles:
        for s in session.scalars(
            select(StaffUser).where(active, StaffUser.role == StaffRole.admin)
        ):
            found[s.id] = s
    if "doctor" in roles and person.doctor_id is not None:
        doctor = session.get(StaffUser, person.doctor_id)
        if doctor is not None and doctor.is_active:
            found[doctor.id] = doctor
    return [found[k] for k in sorted(found)]


# --------------------------------------------------------------------------- persons


def notify_person(
    *,
    session: Session,
    person: Person,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    idempotency_key: str,
) -> list[Notification]:
    """Enqueue a message to ``person`` (e.g. ``kind="checkin_prompt"``, ``payload={"prompt_id":
    12, "due_at": "…"}``): one ``fcm`` row per active device with a push token, keyed
    ``<idempotency_key>:d<device id>``; or one ``log`` row keyed ``<idempotency_key>:log`` when the
    person has none. ``prompt_id`` in the payload links the rows to the prompt. Idempotent per key.
    """
    body = person_payload(person=person, kind=kind, payload=payload)
    prompt_id = payload.get("prompt_id")
    common = {
        "session": session,
        "now": now,
        "person_id": person.id,
        "prompt_id": int(prompt_id) if prompt_id is not None else None,
    }
    devices = session.scalars(
        select(Device)
        .where(
            Device.person_id == person.id,
            Device.revoked_at.is_(None),
            Device.push_token.is_not(None),
        )
        .order_by(Device.id)
    ).all()
    rows = [
        enqueue(
            channel="fcm",
            recipient=d.push_token or "",
            idempotency_key=_key(f"{idempotency_key}:d{d.id}"),
            payload=for_device(body, d.platform),
            **common,
        )
        for d in devices
    ]
    if not rows:
        rows.append(
            enqueue(
                channel="log",
                recipient=f"person:{person.id}",
                idempotency_key=_key(f"{idempotency_key}:log"),
                payload=body,
                **common,
            )
        )
    return rows


def for_device(body: dict[str, Any], platform: str | None) -> dict[str, Any]:
    """A person's payload as sent to one device: a web app's (``platform == "web"``) is marked so
    the FCM channel sends it with a ``WebpushConfig``; a phone app's is the payload unchanged."""
    return {**body, "platform": "web"} if platform == "web" else body


# --------------------------------------------------------------------------- helpers


def _chain(*, session: Session, area: Area) -> list[Area]:
    """``area`` and its ancestors, root first (from the materialised ``path``)."""
    ids = [int(x) for x in area.path.strip("/").split("/") if x] or [area.id]
    by_id = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def _matches(rule: dict[str, Any], kind: AlertKind, level: int) -> bool:
    kinds = rule.get("kinds", "*")
    levels = rule.get("levels")
    return (kinds == "*" or kind.value in kinds) and (levels is None or level in levels)


def _key(key: str) -> str:
    """Idempotency keys fit the column (128): a longer one keeps its start and gains a hash."""
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 41] + "#" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _only(obj: Any, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be an object")
    unknown = set(obj) - allowed
    if unknown:
        raise ValueError(f"{where} has unknown keys {sorted(unknown)}")


def _names(value: Any, allowed: tuple[str, ...], where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a non-empty list of names")
    bad = sorted(set(value) - set(allowed))
    if bad:
        raise ValueError(f"{where}: unknown {bad}; choose from {list(allowed)}")
    return list(dict.fromkeys(value))


def _kinds(value: Any, where: str) -> str | list[str]:
    if value == "*":
        return "*"
    allowed = tuple(k.value for k in AlertKind)
    return _names(value, allowed, f"{where}.kinds")


def _levels(rule: dict[str, Any], where: str) -> dict[str, list[int]]:
    if "levels" not in rule:
        return {}
    levels = rule["levels"]
    if not isinstance(levels, list) or not all(isinstance(v, int) and 0 <= v <= 2 for v in levels):
        raise ValueError(f"{where}.levels must be a list of 0, 1, 2")
    return {"levels": sorted(set(levels))}
