"""Who is calling: a phone (opaque device token) or a staff member (signed staff token or the
dashboard's session cookie). Handlers declare what they need with the decorators below."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request, session
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from server.core.enums import PersonStatus, StaffRole
from server.core.security import token_digest
from server.http.context import ctx, db_session
from server.http.problem import ApiError
from server.people.models import Device, Person, StaffUser

#: Staff API tokens live this long (seconds); the dashboard uses its session cookie instead.
STAFF_TOKEN_TTL_S = 12 * 3600
STAFF_TOKEN_PREFIX = "st."  # noqa: S105 - a marker, not a secret


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _staff_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx().settings.secret_key, salt="isocheck.staff-token")


def password_fingerprint(user: StaffUser) -> str:
    """Changes when the password changes, which revokes every token issued before."""
    return token_digest(user.password_hash)[:16]


def issue_staff_token(user: StaffUser) -> str:
    return STAFF_TOKEN_PREFIX + _staff_serializer().dumps(
        {"sid": user.id, "pw": password_fingerprint(user)}
    )


def open_session(user: StaffUser) -> None:
    """Bind the dashboard's cookie session to ``user`` (revocable: :func:`end_sessions`)."""
    session["staff_id"] = user.id
    session["pw"] = password_fingerprint(user)
    session["ep"] = user.session_epoch or 0


def end_sessions(user: StaffUser) -> None:
    """Revoke every dashboard session of ``user`` server-side (a saved cookie stops working).
    The caller commits."""
    user.session_epoch = (user.session_epoch or 0) + 1


def current_staff(*, bearer_only: bool = False, session_only: bool = False) -> StaffUser | None:
    """The staff member behind the request, or None: a bearer staff token, or (unless
    ``bearer_only``) the dashboard's session cookie. The JSON API is bearer-only, so a browser
    session can never be ridden by a cross-site request to it (the dashboard's own forms carry
    CSRF tokens). ``session_only`` (the dashboard): a bearer token does not count, so a staff
    API token never opens dashboard pages (issue 13, finding 13)."""
    cache = "staff_bearer" if bearer_only else ("staff_session" if session_only else "staff")
    if cache in g:
        return g.get(cache)
    user = None
    token = _bearer()
    s = db_session()
    if session_only:
        token = None
    if token and token.startswith(STAFF_TOKEN_PREFIX):
        try:
            data = _staff_serializer().loads(
                token[len(STAFF_TOKEN_PREFIX) :], max_age=STAFF_TOKEN_TTL_S
            )
        except (BadSignature, SignatureExpired):
            data = None
        if isinstance(data, dict):
            candidate = s.get(StaffUser, data.get("sid"))
            if candidate is not None and data.get("pw") == password_fingerprint(candidate):
                user = candidate
    elif not token and not bearer_only and session.get("staff_id") is not None:
        candidate = s.get(StaffUser, session["staff_id"])
        if (
            candidate is not None
            and session.get("pw") == password_fingerprint(candidate)
            and (session.get("ep") or 0) == (candidate.session_epoch or 0)
        ):
            user = candidate
    if user is not None and not user.is_active:
        user = None
    setattr(g, cache, user)
    return user


def staff_required(*roles: StaffRole, bearer_only: bool = False) -> Callable:
    """Require a staff caller, optionally with one of ``roles`` (403 otherwise).
    ``bearer_only`` (the JSON API): the dashboard's cookie does not count."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            user = current_staff(bearer_only=bearer_only)
            if user is None:
                raise ApiError("unauthorized", 401, headers={"WWW-Authenticate": "Bearer"})
            if roles and user.role not in roles:
                raise ApiError("forbidden", 403)
            g.staff = user
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_device() -> tuple[Device, Person] | None:
    """The active device behind the bearer token and its person, or None."""
    if "device" in g:
        return g.device
    token = _bearer()
    found = None
    if token and not token.startswith(STAFF_TOKEN_PREFIX):
        s = db_session()
        row = s.execute(
            select(Device, Person)
            .join(Person, Person.id == Device.person_id)
            .where(Device.token_hash == token_digest(token), Device.revoked_at.is_(None))
        ).first()
        if row is not None:
            found = (row[0], row[1])
    g.device = found
    return found


def device_required(view: Callable) -> Callable:
    """Require a phone's device token; sets ``g.device`` = (device, person)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        found = current_device()
        if found is None:
            raise ApiError("unauthorized", 401, headers={"WWW-Authenticate": "Bearer"})
        device, person = found
        if person.status is PersonStatus.released:
            raise ApiError("isolation_ended", 403)
        device.last_seen_at = ctx().clock.now()
        return view(*args, **kwargs)

    return wrapper
