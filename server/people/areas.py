"""Areas (city → district → ward): creating and finding them, plain functions over a session."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.enums import AreaKind
from server.people.models import Area

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
