"""The dashboard's security plumbing, in one place:

- a session cookie (HttpOnly, SameSite=Lax, Secure in production; set in ``create_app``) holding
  ``staff_id`` and the password fingerprint, so a password change ends every other session;
  permanent for one 8-hour working shift (:data:`SESSION_LIFETIME`);
- CSRF tokens (Flask-WTF) on every state-changing request of this blueprint only; the JSON API
  under ``/api/v1`` uses bearer tokens and is never checked;
- :func:`staff_page` on every page: a logged-in staff member, a role that uses the page; scope
  on every query (:mod:`server.scope`); anything outside the caller's scope, or a page their
  role does not use, is answered 404;
- Content-Security-Policy ``'self'`` only (no inline script or style), frame-ancestors 'none',
  nosniff, same-origin referrer, ``Cache-Control: no-store`` on every page and image;
- redirects only to paths inside the dashboard (:func:`safe_next`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from server.core.enums import StaffRole
from server.dashboard import i18n
from server.http.auth import current_staff
from server.http.problem import problem

csrf = CSRFProtect()

#: One working shift; the signed cookie is refused after it (Flask checks its age).
SESSION_LIFETIME = timedelta(hours=8)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Routes answered with 401 instead of a redirect to the login page (polled by script).
SCRIPT_ENDPOINTS = {"dashboard.alert_rows"}


def install(bp: Blueprint) -> None:
    """Register the session settings, CSRF check, security headers and error pages on ``bp``."""
    bp.record_once(_init_app)
    bp.before_request(_before)
    bp.after_request(_security_headers)
    bp.register_error_handler(HTTPException, _http_error)


def _init_app(state) -> None:
    """CSRF for this blueprint only: checked in :func:`_before` (``WTF_CSRF_CHECK_DEFAULT``
    off, so the API's blueprints are never checked); tokens live as long as the session."""
    app = state.app
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", int(SESSION_LIFETIME.total_seconds()))
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    csrf.init_app(app)


def _before() -> None:
    g.lang = i18n.current_language()  # first: a CSRF error page is in the caller's language
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "dashboard.static":
        response.headers["Cache-Control"] = "no-store"
    response.vary.add("Cookie")
    return response


def _http_error(error: HTTPException):
    if isinstance(error.response, Response):  # e.g. the rate limiter's problem+json
        return error.response
    if request.endpoint in SCRIPT_ENDPOINTS:
        return problem("not_found" if error.code == 404 else "bad_request", error.code or 400)
    lang = getattr(g, "lang", "vi")
    if isinstance(error, CSRFError):
        title, detail = i18n.text("csrf_failed", lang), ""
    elif error.code == 404:
        title, detail = i18n.text("not_found", lang), i18n.text("not_found_detail", lang)
    else:
        title, detail = str(error.name), ""
    return render_template("dashboard/error.html", title=title, detail=detail), error.code or 500


def staff_page(*roles: StaffRole) -> Callable:
    """Require a logged-in staff member (redirect to the login page, or 401 for script calls);
    a role outside ``roles`` gets 404, as anything outside their scope."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            staff = current_staff(session_only=True)
            if staff is None:
                if request.endpoint in SCRIPT_ENDPOINTS:
                    return problem("unauthorized", 401)
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for(".login", next=target))
            if roles and staff.role not in roles:
                abort(404)
            g.staff = staff
            return view(*args, **kwargs)

        return wrapper

    return decorator


def safe_next(value: str | None, default: str = ".alerts") -> str:
    """Only a path inside the dashboard: never another host (open redirect)."""
    if (
        value
        and value.startswith("/dashboard/")
        and "//" not in value
        and "\\" not in value
        and value.isprintable()  # no CR/LF (header injection), NUL or other control characters
    ):
        return value
    return url_for(default)
