"""Area scope: what a staff member may see. Anything outside it is answered as "not found"."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from server.core.enums import StaffRole
from server.people.models import Area, Person, StaffUser


def scope_root(*, session: Session, staff: StaffUser) -> Area | None:
    """The root area of ``staff``'s scope; None means everything (administrators)."""
    if staff.role is StaffRole.admin:
        return None
    return session.get(Area, staff.area_id) if staff.area_id else None


def area_in_scope(*, session: Session, staff: StaffUser, area: Area) -> bool:
    if staff.role is StaffRole.admin:
        return True
    if staff.role is StaffRole.doctor:
        return False  # doctors see assigned persons, not areas
    root = scope_root(session=session, staff=staff)
    return root is not None and area.path.startswith(root.path)


def persons_in_scope(*, session: Session, staff: StaffUser) -> Select[tuple[Person]]:
    """A ``select(Person)`` limited to what ``staff`` may see."""
    query = select(Person)
    if staff.role is StaffRole.admin:
        return query
    if staff.role is StaffRole.doctor:
        return query.where(Person.doctor_id == staff.id)
    root = scope_root(session=session, staff=staff)
    if root is None:
        return query.where(False)
    return query.join(Area, Area.id == Person.ward_id).where(Area.path.startswith(root.path))


def person_in_scope(*, session: Session, staff: StaffUser, person_id: int) -> Person | None:
    """The person if ``staff`` may see them, else None (callers answer 404, never 403)."""
    return session.scalar(
        persons_in_scope(session=session, staff=staff).where(Person.id == person_id)
    )
