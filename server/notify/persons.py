"""Messages to people, written to the outbox in bulk: the one writer of person rows.

:func:`send_to_persons` writes a whole batch in three statements (the open sweep may push
10,000 people at once); :func:`server.notify.routing.notify_person` is the same call for one
person. Rows: the payload from :func:`server.notify.messaging.person_payload`, one ``fcm`` row
per active device with a push token keyed ``<key>:d<device id>``, or one ``log`` row keyed
``<key>:log`` when there is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core import sql
from server.core.enums import NotificationState
from server.notify.channel import OutboxMessage
from server.notify.messaging import person_payload
from server.notify.models import Notification
from server.notify.outbox import fit_key
from server.people.models import Device, Person
from server.schedule.policy import PolicyResolver, resolver_for, zone_resolver

_NOTIFICATIONS = Notification.__table__


@dataclass(frozen=True)
class PersonMessage:
    """One message to one person: ``kind`` (e.g. ``checkin_prompt``), the data ``payload`` and
    the idempotency key that makes writing it twice write it once."""

    person_id: int
    kind: str
    payload: dict[str, Any]
    key: str


def send_to_persons(
    *,
    session: Session,
    messages: Sequence[PersonMessage],
    now: datetime,
    count_inserted: bool = False,
    resolver: PolicyResolver | None = None,
) -> int:
    """Enqueue ``messages`` (``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``, one
    ``executemany``); returns the number of outbox rows offered (a row whose key exists already
    is skipped by the database). With ``count_inserted`` the insert says which rows it wrote
    (``RETURNING``) and the number of people who got at least one new row is returned instead:
    for callers whose only guard against a second scheduler is the key itself.

    With ``resolver``, a message to a person who is in their quiet hours at ``now`` waits
    (``next_attempt_at``) until the quiet hours end: nobody is messaged at night (the release
    at 23:00 is told at 06:00). Prompt messages need none: prompts never open in quiet hours."""
    if not messages:
        return 0
    rows = person_rows(session=session, messages=messages, now=now, resolver=resolver)
    if count_inserted:
        inserted = sql.insert_ignore(
            session, _NOTIFICATIONS, rows, conflict=("idempotency_key",),
            returning=[_NOTIFICATIONS.c.person_id],
        )  # fmt: skip
        return len({row.person_id for row in inserted})
    sql.insert_ignore_many(session, _NOTIFICATIONS, rows, conflict=("idempotency_key",))
    return len(rows)


def person_rows(
    *,
    session: Session,
    messages: Sequence[PersonMessage],
    now: datetime,
    resolver: PolicyResolver | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows of ``messages`` (not written): see :func:`send_to_persons`. Times in the
    texts are in each person's zone, resolved as everywhere (``PolicyResolver.zone``)."""
    ids = sorted({m.person_id for m in messages})
    zones: dict[int, ZoneInfo] = {}
    not_before: dict[int, datetime] = {}
    resolve = resolver or zone_resolver(session=session)
    for pid, own_zone, ward_id, overrides in session.execute(
        select(Person.id, Person.timezone, Person.ward_id, Person.schedule_policy).where(
            Person.id.in_(ids)
        )
    ):
        zones[pid] = resolve.zone(ward_id=ward_id, person_zone=own_zone)
        if resolver is not None:
            policy = resolver.policy(ward_id=ward_id, person_overrides=overrides)
            ends = policy.quiet_ends_at(now, zones[pid])
            if ends is not None:
                not_before[pid] = ends
    devices: dict[int, list[tuple[int, str, str | None]]] = {}
    for device_id, person_id, token, platform in session.execute(
        select(Device.id, Device.person_id, Device.push_token, Device.platform)
        .where(
            Device.person_id.in_(ids),
            Device.revoked_at.is_(None),
            Device.push_token.is_not(None),
        )
        .order_by(Device.id)
    ):
        devices.setdefault(person_id, []).append((device_id, token, platform))
    rows: list[dict[str, Any]] = []
    for m in messages:
        body = person_payload(
            kind=m.kind, payload=m.payload, zone=zones.get(m.person_id, resolve.default_zone)
        )
        prompt_id = m.payload.get("prompt_id")
        targets = [
            ("fcm", token, fit_key(f"{m.key}:d{device_id}"), for_device(body, platform))
            for device_id, token, platform in devices.get(m.person_id, [])
        ] or [("log", f"person:{m.person_id}", fit_key(f"{m.key}:log"), body)]
        for channel, recipient, key, sent in targets:
            rows.append(
                {
                    "channel": channel,
                    "recipient": recipient,
                    "payload": {**sent, "idempotency_key": key},
                    "idempotency_key": key,
                    "state": NotificationState.pending,
                    "attempts": 0,
                    "next_attempt_at": not_before.get(m.person_id, now),
                    "person_id": m.person_id,
                    "prompt_id": int(prompt_id) if prompt_id is not None else None,
                    "created_at": now,
                }
            )
    return rows


def for_device(body: dict[str, Any], platform: str | None) -> dict[str, Any]:
    """A person's payload as sent to one device: a web app's (``platform == "web"``) is marked so
    the FCM channel sends it with a ``WebpushConfig``; a phone app's is the payload unchanged."""
    return {**body, "platform": "web"} if platform == "web" else body


#: ``last_error`` prefix of a retry dropped because it could only go after its due time.
EXPIRED_IN_QUIET_HOURS = "expired: due before the person's quiet hours end: "


class QuietHours:
    """A retry of a message to a person that would fall in their quiet hours waits until they
    end (issue 19: nobody is messaged at night, retries included); staff alerts are not held.
    A held message whose ``due_at`` (a prompt's deadline) has passed by then is not sent at
    all: "check in by 21:00" at 06:00 would only mislead."""

    def __init__(self, *, session: Session, settings: Any) -> None:
        self.session, self.settings = session, settings
        self._resolver: PolicyResolver | None = None

    def not_before(self, message: OutboxMessage, at: datetime) -> datetime | None:
        """When ``message``'s retry may go (``at`` unless that is quiet for its person), or
        None when it would only go after its due time."""
        row = self.session.execute(
            select(Person.ward_id, Person.timezone, Person.schedule_policy)
            .join(Notification, Notification.person_id == Person.id)
            .where(Notification.id == message.id, Notification.alert_id.is_(None))
        ).first()
        if row is None:
            return at
        if self._resolver is None:
            self._resolver = resolver_for(session=self.session, settings=self.settings)
        ward_id, zone, overrides = row
        policy = self._resolver.policy(ward_id=ward_id, person_overrides=overrides)
        ends = policy.quiet_ends_at(at, self._resolver.zone(ward_id=ward_id, person_zone=zone))
        if ends is None:
            return at
        due = _due_at(message.payload)
        return None if due is not None and ends >= due else ends


def _due_at(payload: dict[str, Any]) -> datetime | None:
    raw = (payload.get("data") or {}).get("due_at")
    try:
        due = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return due if due is not None and due.tzinfo is not None else None
