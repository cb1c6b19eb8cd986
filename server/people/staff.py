"""Staff accounts and their login (argon2, lockout): plain functions over a session."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core import audit
from server.core.enums import StaffRole
from server.core.errors import Locked, NotAuthenticated
from server.core.security import hash_password, password_needs_rehash, verify_password
from server.people.models import Area, StaffUser


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


#: Failed logins in a row that lock an account, and for how long.
LOCKOUT_AFTER = 5
LOCKOUT_FOR = timedelta(minutes=15)


def check_login(
    *, session: Session, username: str, password: str, now: datetime, ip: str | None
) -> tuple[StaffUser | None, str | None]:
    """Check a staff login; returns ``(user, None)`` or ``(None, error_code)``.

    1. Unknown user or inactive account → ``invalid_credentials`` (a dummy hash is checked so
       the answer takes as long as for a real account).
    2. Locked account (``LOCKOUT_AFTER`` failures in a row) → ``account_locked`` until it expires.
    3. Wrong password → count the failure (and lock at the limit); right → reset the counter.
    Every outcome is audited. The caller commits, also on failure.
    """
    user = get_staff_by_username(session=session, username=username)
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH, password)
        audit.record(
            session=session,
            actor_kind="anonymous",
            action="staff.login_failed",
            ip=ip,
            details={"username": username[:80]},
            at=now,
        )
        return None, "invalid_credentials"
    if user.locked_until is not None and user.locked_until > now:
        audit.record(
            session=session,
            actor_kind="staff",
            actor_id=user.id,
            action="staff.login_locked",
            ip=ip,
            at=now,
        )
        return None, "account_locked"
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= LOCKOUT_AFTER:
            user.locked_until = now + LOCKOUT_FOR
            user.failed_logins = 0
        audit.record(
            session=session,
            actor_kind="staff",
            actor_id=user.id,
            action="staff.login_failed",
            ip=ip,
            at=now,
        )
        return None, "invalid_credentials"
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(
        session=session, actor_kind="staff", actor_id=user.id, action="staff.login", ip=ip, at=now
    )
    return user, None


def login_staff(
    *, session: Session, username: str, password: str, now: datetime, ip: str | None
) -> StaffUser:
    """:func:`check_login`, committing the counters and raising the problem on failure."""
    user, error = check_login(session=session, username=username, password=password, now=now, ip=ip)
    if user is None:
        session.commit()
        if error == "account_locked":
            raise Locked(error)
        raise NotAuthenticated(error or "invalid_credentials")
    return user


_DUMMY_HASH = hash_password("isocheck-timing-equaliser")
