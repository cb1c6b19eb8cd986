"""Areas and staff: plain functions over a session (keyword-only, the session passed in)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.enums import AreaKind, StaffRole
from server.people.models import Area, StaffUser
from server.security import hash_password

#: Which kind of area may sit under which.
PARENT_KIND = {
    AreaKind.city: None,
    AreaKind.district: AreaKind.city,
    AreaKind.ward: AreaKind.district,
}


def get_area_by_code(*, session: Session, code: str) -> Area | None:
    return session.scalar(select(Area).where(Area.code == code))


def create_area(
    *, session: Session, code: str, name: str, kind: AreaKind, parent: Area | None = None
) -> Area:
    """Create an area under ``parent`` (a city has none; a district sits in a city; a ward in a
    district) and set its materialised ``path``."""
    expected = PARENT_KIND[kind]
    if (parent.kind if parent else None) != expected:
        raise ValueError(f"a {kind.value} must sit under a {expected or 'nothing'}")
    area = Area(
        code=code, name=name, kind=kind, parent=parent, parent_id=parent.id if parent else None
    )
    session.add(area)
    session.flush()  # assigns the id the path needs
    area.path = f"{parent.path if parent else ''}{area.id}/"
    return area


def ensure_area(
    *, session: Session, code: str, name: str, kind: AreaKind, parent: Area | None = None
) -> tuple[Area, bool]:
    """Get the area with ``code`` or create it; returns ``(area, created)``."""
    area = get_area_by_code(session=session, code=code)
    if area is not None:
        return area, False
    return create_area(session=session, code=code, name=name, kind=kind, parent=parent), True


def subtree_ids(*, session: Session, root: Area) -> list[int]:
    """Ids of ``root`` and every area below it."""
    return list(session.scalars(select(Area.id).where(Area.path.startswith(root.path))))


def get_staff_by_username(*, session: Session, username: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.username == username))


def create_staff(
    *,
    session: Session,
    username: str,
    password: str,
    full_name: str,
    role: StaffRole,
    area: Area | None,
    email: str | None = None,
) -> StaffUser:
    """Create a staff account. Everyone but an administrator needs an area (their scope)."""
    if role is not StaffRole.admin and area is None:
        raise ValueError("staff other than administrators need an area")
    user = StaffUser(
        username=username,
        password_hash=hash_password(password),
        full_name=full_name,
        role=role,
        area_id=area.id if area else None,
        email=email,
    )
    session.add(user)
    session.flush()
    return user
