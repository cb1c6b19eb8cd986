"""The home position without typing coordinates (issue 19, item 7): a person enrolled without
latitude/longitude has ``home_source = "pending"``; the phone proposes its position at
activation (or later, from home) and staff confirm it on the dashboard. Until then no check-in is
judged against home (``record_upload`` leaves the distance empty), so nobody is flagged
"outside home" against a placeholder. Typing the coordinates stays as the fallback.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from server.core import audit
from server.people.models import Person
from server.people.schemas import HomePosition

#: Accuracy beyond which the dashboard warns that the phone's fix is too coarse to be a home.
COARSE_ACCURACY_M = 100.0


def pending(person: Person) -> bool:
    return person.home_source == "pending"


def home_status(person: Person) -> str:
    """For the phone: ``confirmed`` (a home to check against), ``proposed`` (its position
    waits for staff) or ``needed`` (send the position from home)."""
    if not pending(person):
        return "confirmed"
    return "proposed" if person.home_proposed_lat is not None else "needed"


def propose(
    *, session: Session, person: Person, position: HomePosition, now: datetime, device_id: int
) -> str:
    """Keep ``position`` as the person's proposed home while their home is pending (a confirmed
    home is never moved by the phone); returns :func:`home_status`."""
    if not pending(person):
        return home_status(person)
    person.home_proposed_lat = position.latitude
    person.home_proposed_lon = position.longitude
    person.home_proposed_accuracy_m = position.accuracy_m
    person.home_proposed_at = now
    audit.record(
        session=session,
        actor_kind="device",
        actor_id=device_id,
        action="person.home_proposed",
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        at=now,
        details={"accuracy_m": position.accuracy_m},  # no coordinates in the audit trail
    )
    return home_status(person)


def _clear(person: Person) -> None:
    person.home_proposed_lat = person.home_proposed_lon = None
    person.home_proposed_accuracy_m = None
    person.home_proposed_at = None


def confirm_proposed(*, person: Person, now: datetime) -> bool:
    """Staff confirm the phone's position as home; False when there is none to confirm."""
    if person.home_proposed_lat is None or person.home_proposed_lon is None:
        return False
    person.home_lat, person.home_lon = person.home_proposed_lat, person.home_proposed_lon
    person.home_source = "phone"
    _clear(person)
    person.updated_at = now
    return True


def set_typed(*, person: Person, lat: float, lon: float, now: datetime) -> None:
    person.home_lat, person.home_lon = lat, lon
    person.home_source = "typed"
    _clear(person)
    person.updated_at = now


def reject_proposed(*, person: Person, now: datetime) -> None:
    """Staff refuse the phone's position (not at home): the home stays pending."""
    _clear(person)
    person.updated_at = now
