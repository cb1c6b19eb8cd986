"""Area scope: what a staff member may see, every such query in one place. Anything outside
it is answered as "not found" (404, never 403): callers answer "not found" when one of these
returns None and never learn whether something exists outside the caller's scope.

Scope, by role:

- administrator: everything;
- area staff: persons whose ward lies in their area's subtree, alerts raised in that subtree,
  the areas of that subtree and the doctors working in it;
- doctor: the persons assigned to them (``Person.doctor_id``) and those persons' alerts, no
  areas.

Used by the dashboard, the staff JSON API, the FHIR API and :mod:`server.alerts.service`.
"""

from __future__ import annotations

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.checkins.models import CheckinAttempt
from server.core.enums import StaffRole
from server.people.models import Area, Person, StaffUser, StoredImage


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


def area_ids_under(area: Area) -> Select:
    """``SELECT id`` of ``area`` and every area below it (for ``IN (…)``)."""
    return select(Area.id).where(Area.path.startswith(area.path))


def person_ids_in_area(area: Area | None) -> Select:
    """``SELECT id`` of the persons whose ward lies in ``area``'s subtree (everyone for None):
    what an export job of that area covers, checked against the caller's scope when the job
    was started."""
    query = select(Person.id)
    if area is not None:
        query = query.join(Area, Area.id == Person.ward_id).where(Area.path.startswith(area.path))
    return query


def person_ids_in_scope(*, session: Session, staff: StaffUser) -> Select:
    """``SELECT id`` of the persons ``staff`` may see (for ``IN (…)``)."""
    visible = persons_in_scope(session=session, staff=staff).subquery()
    return select(visible.c.id)


def areas_in_scope(*, session: Session, staff: StaffUser) -> list[Area]:
    """Areas ``staff`` may filter by (their subtree; all for administrators; none for doctors),
    ordered by path so a district comes before its wards."""
    if staff.role is StaffRole.doctor:
        return []
    query = select(Area).order_by(Area.path)
    if staff.role is not StaffRole.admin:
        root = scope_root(session=session, staff=staff)
        if root is None:
            return []
        query = query.where(Area.path.startswith(root.path))
    return list(session.scalars(query))


def area_for_filter(*, session: Session, staff: StaffUser, area_id: int | None) -> Area | None:
    """The area ``area_id`` if ``staff`` may filter by it, else None."""
    if area_id is None:
        return None
    for area in areas_in_scope(session=session, staff=staff):
        if area.id == area_id:
            return area
    return None


def alerts_in_scope(*, session: Session, staff: StaffUser) -> Select[tuple[Alert]]:
    """A ``select(Alert)`` limited to what ``staff`` may see: by the alert's ward for area
    staff (as :func:`alert_visible` checks it), by assignment for doctors."""
    query = select(Alert)
    if staff.role is StaffRole.admin:
        return query
    if staff.role is StaffRole.doctor:
        return query.join(Person, Person.id == Alert.person_id).where(Person.doctor_id == staff.id)
    root = scope_root(session=session, staff=staff)
    if root is None:
        return query.where(false())
    return query.join(Area, Area.id == Alert.area_id).where(Area.path.startswith(root.path))


def alert_in_scope(*, session: Session, staff: StaffUser, alert_id: int) -> Alert | None:
    return session.scalar(alerts_in_scope(session=session, staff=staff).where(Alert.id == alert_id))


def alert_visible(*, session: Session, staff: StaffUser, alert: Alert) -> bool:
    """Whether ``staff`` may see ``alert`` (already loaded): administrators everything, area
    staff their subtree (by the alert's ward), doctors their assigned patients."""
    if staff.role is StaffRole.doctor:
        person = session.get(Person, alert.person_id)
        return person is not None and person.doctor_id == staff.id
    area = session.get(Area, alert.area_id)
    return area is not None and area_in_scope(session=session, staff=staff, area=area)


def attempt_in_scope(
    *, session: Session, staff: StaffUser, attempt_id: int
) -> tuple[CheckinAttempt, Person] | None:
    row = session.execute(
        select(CheckinAttempt, Person)
        .join(Person, Person.id == CheckinAttempt.person_id)
        .where(
            CheckinAttempt.id == attempt_id,
            CheckinAttempt.person_id.in_(person_ids_in_scope(session=session, staff=staff)),
        )
    ).first()
    return (row[0], row[1]) if row else None


def image_in_scope(
    *, session: Session, staff: StaffUser, image_id: int
) -> tuple[StoredImage, Person] | None:
    row = session.execute(
        select(StoredImage, Person)
        .join(Person, Person.id == StoredImage.person_id)
        .where(
            StoredImage.id == image_id,
            StoredImage.purged_at.is_(None),
            StoredImage.person_id.in_(person_ids_in_scope(session=session, staff=staff)),
        )
    ).first()
    return (row[0], row[1]) if row else None


def doctors_in_scope(*, session: Session, staff: StaffUser) -> list[StaffUser]:
    """Active doctors whose area lies in ``staff``'s scope (any doctor for administrators)."""
    query = select(StaffUser).where(
        StaffUser.role == StaffRole.doctor, StaffUser.is_active.is_(True)
    )
    if staff.role is not StaffRole.admin:
        root = scope_root(session=session, staff=staff)
        if root is None:
            return []
        query = query.join(Area, Area.id == StaffUser.area_id).where(
            Area.path.startswith(root.path)
        )
    return list(session.scalars(query.order_by(StaffUser.full_name)))
