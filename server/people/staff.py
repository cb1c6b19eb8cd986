"""Staff accounts and their login (argon2, lockout): plain functions over a session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core import audit
from server.core.enums import StaffRole
from server.core.errors import NotAuthenticated, Throttled
from server.core.security import hash_password, password_needs_rehash, verify_password
from server.people.login_throttle import LoginThrottle
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


def check_login(
    *, session: Session, username: str, password: str, now: datetime, ip: str | None
) -> tuple[StaffUser | None, str | None]:
    """Check a staff login; returns ``(user, None)`` or ``(None, error_code)``.

    1. This client is waiting out a backoff for this name, or for all names
       (:mod:`server.people.login_throttle`) → ``login_throttled``, before any password is checked,
       whether the name exists or not.
    2. Unknown user or inactive account → ``invalid_credentials`` (a dummy hash is checked so
       the answer takes as long as for a real account); the failure counts for the client.
    3. Wrong password → ``invalid_credentials``, the failure counts for the client (the account
       is never locked for everyone: issue 13, finding 12); right → the client's run for this
       name is forgotten.
    Every outcome is audited. The caller commits, also on failure.
    """
    throttle = LoginThrottle(username=username, client=ip or "unknown")
    user = get_staff_by_username(session=session, username=username)
    known = user is not None and user.is_active
    if throttle.wait():
        audit.record(
            session=session,
            actor_kind="staff" if known else "anonymous",
            actor_id=user.id if known else None,
            action="staff.login_throttled",
            ip=ip,
            details=None if known else {"username": username[:80]},
            at=now,
        )
        return None, "login_throttled"
    if not known:
        verify_password(_timing_equaliser(), password)
        throttle.failed()
        audit.record(
            session=session,
            actor_kind="anonymous",
            action="staff.login_failed",
            ip=ip,
            details={"username": username[:80]},
            at=now,
        )
        return None, "invalid_credentials"
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1  # informational (failures since the last login); locks nothing
        throttle.failed()
        audit.record(
            session=session,
            actor_kind="staff",
            actor_id=user.id,
            action="staff.login_failed",
            ip=ip,
            at=now,
        )
        return None, "invalid_credentials"
    throttle.succeeded()
    user.failed_logins = 0
    user.locked_until = None  # no longer set (the pre-issue-13 lockout); cleared for old rows
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
    """:func:`check_login`, committing the counters and raising the problem on failure
    (``login_throttled`` with the seconds to wait, else ``invalid_credentials``)."""
    user, error = check_login(session=session, username=username, password=password, now=now, ip=ip)
    if user is None:
        session.commit()
        if error == "login_throttled":
            wait = max(1, LoginThrottle(username=username, client=ip or "unknown").wait())
            raise Throttled(error, retry_after_s=wait, extra={"retry_after_s": wait})
        raise NotAuthenticated(error or "invalid_credentials")
    return user


_dummy_hash: str | None = None


def _timing_equaliser() -> str:
    """A hash with the hasher's *current* parameters, checked for unknown names so they take
    as long as a known one (a hash made once at import kept the parameters of that moment:
    after a parameter change unknown names answered measurably faster or slower)."""
    global _dummy_hash
    if _dummy_hash is None or password_needs_rehash(_dummy_hash):
        _dummy_hash = hash_password("isocheck-timing-equaliser")
    return _dummy_hash
