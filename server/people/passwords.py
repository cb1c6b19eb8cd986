"""Password rules for staff accounts (the dashboard's *Đổi mật khẩu* page): the current
password, then a new one of at least :data:`MIN_PASSWORD_LENGTH` characters typed twice and
different from the current one. Login and lockout are :func:`server.people.staff.check_login`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from server.core import audit
from server.core.security import hash_password, verify_password
from server.people.models import StaffUser

MIN_PASSWORD_LENGTH = 10
#: Longer input is cut before hashing (argon2 of a megabyte is a denial of service).
MAX_PASSWORD_LENGTH = 256


def change_password(
    *,
    session: Session,
    staff: StaffUser,
    current: str,
    new: str,
    again: str,
    now: datetime,
    ip: str | None,
) -> str | None:
    """Change ``staff``'s password; None when changed, else why not: ``password_wrong``
    (audited ``staff.password_change_failed``), ``password_short``, ``password_mismatch`` or
    ``password_same``. A change is audited ``staff.password_change``; the new hash changes the
    password fingerprint, so every session and API token bound to the old one stops working.
    The caller ends the other sessions and commits (also after ``password_wrong``)."""
    if not verify_password(staff.password_hash, current):
        audit.record(
            session=session,
            actor_kind="staff",
            actor_id=staff.id,
            ip=ip,
            at=now,
            action="staff.password_change_failed",
        )
        return "password_wrong"
    if len(new) < MIN_PASSWORD_LENGTH:
        return "password_short"
    if new != again:
        return "password_mismatch"
    if new == current:
        return "password_same"
    staff.password_hash = hash_password(new)
    staff.password_changed_at = now
    audit.record(
        session=session,
        actor_kind="staff",
        actor_id=staff.id,
        ip=ip,
        at=now,
        action="staff.password_change",
    )
    return None
