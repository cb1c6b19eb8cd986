"""Đăng nhập / đăng xuất / đổi mật khẩu: login, logout and the password page."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for

from server.dashboard import i18n
from server.dashboard.pages import ip, now, t
from server.dashboard.security import safe_next, staff_page
from server.http.auth import current_staff, end_sessions, open_session
from server.http.context import ctx, db_session
from server.http.limits import limiter
from server.people.login_throttle import LoginThrottle
from server.people.models import StaffUser
from server.people.passwords import MAX_PASSWORD_LENGTH, change_password
from server.people.staff import check_login


@limiter.limit(lambda: ctx().settings.rate_limit_staff_login, methods=["POST"])
def login():
    """Username + password (argon2; repeated failures slow this client down, ``check_login``)."""
    next_url = request.values.get("next", "")
    if request.method == "GET" and current_staff(session_only=True) is not None:
        return redirect(safe_next(next_url))
    error = None
    if request.method == "POST":
        s = db_session()
        user, code = check_login(
            session=s,
            username=request.form.get("username", "")[:80],
            password=request.form.get("password", "")[:MAX_PASSWORD_LENGTH],
            now=now(),
            ip=ip(),
        )
        s.commit()  # the failure counter and the audit event, also on failure
        if user is not None:
            lang = session.get("lang")
            session.clear()  # no session fixation: a fresh session after login
            open_session(user)
            if lang:
                session["lang"] = lang
            session.permanent = True
            return redirect(safe_next(next_url))
        error = i18n.code_message(code or "invalid_credentials", g.lang)
        if code == "login_throttled":
            wait = LoginThrottle(
                username=request.form.get("username", "")[:80], client=ip() or "unknown"
            ).wait()
            page = render_template("dashboard/login.html", error=error, next_url=next_url)
            return page, 429, {"Retry-After": str(max(1, wait))}
    return render_template("dashboard/login.html", error=error, next_url=next_url)


def logout():
    staff = current_staff(session_only=True)
    if staff is not None:  # server-side: a copy of this cookie stops working too
        end_sessions(staff)
        db_session().commit()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(t("logged_out"), "ok")
    return redirect(url_for(".login"))


@staff_page()
def password():
    """Current password + the new one twice (rules: :mod:`server.people.passwords`). The new
    hash changes the fingerprint, so every other session and API token stops working; this
    session is kept."""
    errors: list[str] = []
    if request.method == "POST":
        staff: StaffUser = g.staff
        s = db_session()
        refused = change_password(
            session=s,
            staff=staff,
            current=request.form.get("current", "")[:MAX_PASSWORD_LENGTH],
            new=request.form.get("new", "")[:MAX_PASSWORD_LENGTH],
            again=request.form.get("again", "")[:MAX_PASSWORD_LENGTH],
            now=now(),
            ip=ip(),
        )
        if refused == "password_wrong":
            s.commit()  # the failed attempt's audit event
        if refused:
            errors.append(t(refused))
        else:
            end_sessions(staff)
            s.commit()
            open_session(staff)  # this session is kept; every other one has ended
            flash(t("password_changed"), "ok")
            return redirect(url_for(".alerts"))
    return render_template("dashboard/password.html", errors=errors), 422 if errors else 200


@staff_page()
def index():
    return redirect(url_for(".alerts"))
