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
payload, so the FCM channel sends it as web push (:func:`server.notify.persons.for_device`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core import sql
from server.core.enums import AlertKind
from server.notify import persons
from server.notify.models import Notification
from server.people.models import Area, Person, StaffUser

#: Used when no area on the ward's chain has a ``"notify"`` routing.
DEFAULT_ROUTING: dict[str, Any] = {
    "staff": [{"roles": ["area_staff"], "kinds": "*", "channels": ["fcm", "email"]}],
    "webhooks": [],
}
#: The key of ``Area.escalation_policy`` that holds the routing (the other keys are deadlines).
ROUTING_KEY = "notify"
STAFF_CHANNELS = ("fcm", "email", "log")
ROLES = ("area_staff", "admin", "doctor")


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
    both :func:`server.notify.alerts.notify_alert` and the bulk
    :func:`server.notify.alerts.notify_levels` follow.

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
    The bulk writer (:func:`server.notify.persons.send_to_persons`) for one message; returns the
    rows (new or existing)."""
    message = persons.PersonMessage(person.id, kind, payload, idempotency_key)
    rows = persons.person_rows(session=session, messages=[message], now=now)
    sql.insert_ignore_many(
        session, Notification.__table__, rows, conflict=("idempotency_key",)
    )
    keys = [row["idempotency_key"] for row in rows]
    found = {
        n.idempotency_key: n
        for n in session.scalars(
            select(Notification).where(Notification.idempotency_key.in_(keys))
        )
    }
    return [found[k] for k in keys if k in found]


# --------------------------------------------------------------------------- helpers


def _chain(*, session: Session, area: Area) -> list[Area]:
    """``area`` and its ancestors, root first (from the materialised ``path``)."""
    ids = area.chain_ids
    by_id = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def _matches(rule: dict[str, Any], kind: AlertKind, level: int) -> bool:
    kinds = rule.get("kinds", "*")
    levels = rule.get("levels")
    return (kinds == "*" or kind.value in kinds) and (levels is None or level in levels)


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
