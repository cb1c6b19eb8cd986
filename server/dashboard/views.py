"""The staff dashboard's HTTP handlers (``/dashboard``): thin, they parse a form, call
:mod:`server.dashboard.service` or a domain service, commit and render.

Security, in one place:

- a session cookie (HttpOnly, SameSite=Lax, Secure in production; set in ``create_app``) holding
  ``staff_id`` and the password fingerprint, so a password change ends every other session;
  permanent for one 8-hour working shift;
- CSRF tokens (Flask-WTF) on every state-changing request of this blueprint only; the JSON API
  under ``/api/v1`` uses bearer tokens and is never checked;
- scope on every query; anything outside the caller's scope, or a page their role does not use,
  is answered 404;
- Content-Security-Policy ``'self'`` only (no inline script or style), frame-ancestors 'none',
  nosniff, same-origin referrer, ``Cache-Control: no-store`` on every page and image.
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from server import audit
from server.alerts.service import (
    AlertScopeError,
    AlertStateError,
    acknowledge_alert,
    resolve_alert,
)
from server.auth import current_staff, end_sessions, open_session
from server.dashboard import charts, i18n
from server.dashboard import service as svc
from server.enums import AlertKind, AlertState, AreaKind, PersonStatus, StaffRole
from server.errors import ApiError, problem
from server.limits import limiter
from server.people.models import Area, Person, StaffUser
from server.people.scope import area_in_scope, person_in_scope
from server.people.service import check_login
from server.security import hash_password, verify_password
from server.web import ctx, db_session

log = logging.getLogger("isocheck.dashboard")

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)
csrf = CSRFProtect()

#: One working shift; the signed cookie is refused after it (Flask checks its age).
SESSION_LIFETIME = timedelta(hours=8)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
ALL_STAFF = (StaffRole.admin, StaffRole.area_staff, StaffRole.doctor)
MANAGERS = svc.MANAGERS
#: Routes answered with 401 instead of a redirect to the login page (polled by script).
_SCRIPT_ENDPOINTS = {"dashboard.alert_rows"}


@bp.record_once
def _init_app(state) -> None:
    """CSRF for this blueprint only: checked in :func:`_before` (``WTF_CSRF_CHECK_DEFAULT``
    off, so the API's blueprints are never checked); tokens live as long as the session."""
    app = state.app
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", int(SESSION_LIFETIME.total_seconds()))
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    csrf.init_app(app)


# --- request plumbing -------------------------------------------------------------------


@bp.before_request
def _before() -> None:
    g.lang = i18n.current_language()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "dashboard.static":
        response.headers["Cache-Control"] = "no-store"
    response.vary.add("Cookie")
    return response


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    if isinstance(error.response, Response):  # e.g. the rate limiter's problem+json
        return error.response
    if request.endpoint in _SCRIPT_ENDPOINTS:
        return problem("not_found" if error.code == 404 else "bad_request", error.code or 400)
    lang = getattr(g, "lang", "vi")
    if isinstance(error, CSRFError):
        title, detail = i18n.text("csrf_failed", lang), ""
    elif error.code == 404:
        title, detail = i18n.text("not_found", lang), i18n.text("not_found_detail", lang)
    else:
        title, detail = str(error.name), ""
    return render_template("dashboard/error.html", title=title, detail=detail), error.code or 500


@bp.app_template_filter("local")
def _local(moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if moment is None:
        return "—"
    try:
        return moment.astimezone(ctx().settings.zone).strftime(fmt)
    except (OverflowError, ValueError):  # a stored moment at the edge of the calendar
        return moment.strftime(fmt) + " UTC"


@bp.context_processor
def _template_context() -> dict[str, Any]:
    lang = getattr(g, "lang", "vi")
    return {
        "lang": lang,
        "t": lambda key: i18n.text(key, lang),
        "label": lambda group, value: i18n.label(group, value, lang),
        "code_message": lambda code: i18n.code_message(code, lang),
        "staff": g.get("staff"),
        "now": ctx().clock.now(),
        "ago": _ago,
        "is_manager": bool(g.get("staff")) and svc.is_manager(g.staff),
    }


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    lang = getattr(g, "lang", "vi")
    minutes = int((ctx().clock.now() - moment).total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    if minutes < 60:
        return f"{sign}{minutes} {i18n.text('minutes_short', lang)}"
    if minutes < 48 * 60:
        return f"{sign}{minutes // 60} {i18n.text('hours_short', lang)} {minutes % 60:02d}"
    return f"{sign}{minutes // 1440} {i18n.text('days_short', lang)}"


def staff_page(*roles: StaffRole) -> Callable:
    """Require a logged-in staff member (redirect to the login page, or 401 for script calls);
    a role outside ``roles`` gets 404, as anything outside their scope."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            staff = current_staff(session_only=True)
            if staff is None:
                if request.endpoint in _SCRIPT_ENDPOINTS:
                    return problem("unauthorized", 401)
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for(".login", next=target))
            if roles and staff.role not in roles:
                abort(404)
            g.staff = staff
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _t(key: str) -> str:
    return i18n.text(key, g.get("lang", "vi"))


def _now() -> datetime:
    return ctx().clock.now()


def _ip() -> str | None:
    return request.remote_addr


def _safe_next(value: str | None, default: str = ".alerts") -> str:
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


#: Largest number a dashboard query or form field takes (pages, days): anything beyond is no
#: page or period a person asks for, and would overflow a timedelta or an SQL OFFSET (issue 13).
MAX_FORM_INT = 1_000_000


def _int_value(raw: str | None) -> int | None:
    """An integer of at most :data:`MAX_FORM_INT` in size, else None."""
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if abs(value) <= MAX_FORM_INT else None


def _int_arg(name: str) -> int | None:
    return _int_value(request.args.get(name))


# --- login, logout, password --------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: ctx().settings.rate_limit_staff_login, methods=["POST"])
def login():
    """Username + password (argon2, lockout after repeated failures via ``check_login``)."""
    next_url = request.values.get("next", "")
    if request.method == "GET" and current_staff(session_only=True) is not None:
        return redirect(_safe_next(next_url))
    error = None
    if request.method == "POST":
        s = db_session()
        user, code = check_login(
            session=s,
            username=request.form.get("username", "")[:80],
            password=request.form.get("password", "")[:MAX_PASSWORD_LENGTH],
            now=_now(),
            ip=_ip(),
        )
        s.commit()  # the failure counter and the audit event, also on failure
        if user is not None:
            lang = session.get("lang")
            session.clear()  # no session fixation: a fresh session after login
            open_session(user)
            if lang:
                session["lang"] = lang
            session.permanent = True
            return redirect(_safe_next(next_url))
        error = i18n.code_message(code or "invalid_credentials", g.lang)
    return render_template("dashboard/login.html", error=error, next_url=next_url)


@bp.post("/logout")
def logout():
    staff = current_staff(session_only=True)
    if staff is not None:  # server-side: a copy of this cookie stops working too
        end_sessions(staff)
        db_session().commit()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_t("logged_out"), "ok")
    return redirect(url_for(".login"))


@bp.route("/password", methods=["GET", "POST"])
@staff_page()
def password():
    """Current password + the new one twice (≥ 10 characters). The new hash changes the
    fingerprint, so every other session and API token stops working; this session is kept."""
    errors: list[str] = []
    if request.method == "POST":
        staff: StaffUser = g.staff
        current = request.form.get("current", "")[:MAX_PASSWORD_LENGTH]
        new = request.form.get("new", "")[:MAX_PASSWORD_LENGTH]
        again = request.form.get("again", "")[:MAX_PASSWORD_LENGTH]
        s = db_session()
        if not verify_password(staff.password_hash, current):
            errors.append(_t("password_wrong"))
            audit.record(
                session=s,
                actor_kind="staff",
                actor_id=staff.id,
                ip=_ip(),
                at=_now(),
                action="staff.password_change_failed",
            )
            s.commit()
        elif len(new) < MIN_PASSWORD_LENGTH:
            errors.append(_t("password_short"))
        elif new != again:
            errors.append(_t("password_mismatch"))
        elif new == current:
            errors.append(_t("password_same"))
        if not errors:
            staff.password_hash = hash_password(new)
            staff.password_changed_at = _now()
            end_sessions(staff)
            audit.record(
                session=s,
                actor_kind="staff",
                actor_id=staff.id,
                ip=_ip(),
                at=_now(),
                action="staff.password_change",
            )
            s.commit()
            open_session(staff)  # this session is kept; every other one has ended
            flash(_t("password_changed"), "ok")
            return redirect(url_for(".alerts"))
    return render_template("dashboard/password.html", errors=errors), 422 if errors else 200


@bp.get("/")
@staff_page()
def index():
    return redirect(url_for(".alerts"))


# --- alert queue --------------------------------------------------------------------------


def _alert_filters() -> dict[str, Any]:
    s = db_session()
    kind = request.args.get("kind") or None
    state = request.args.get("state") or None
    area_id = _int_arg("area")
    area = None
    if area_id is not None:
        area = svc.area_for_filter(session=s, staff=g.staff, area_id=area_id)
        if area is None:
            abort(404)
    return {
        "kind": AlertKind(kind) if kind in AlertKind.__members__ else None,
        "state": AlertState(state) if state in AlertState.__members__ else None,
        "area": area,
    }


def _queue_rows(filters: dict[str, Any]) -> list[svc.QueueRow]:
    return svc.alert_queue(session=db_session(), staff=g.staff, **filters)


@bp.get("/alerts")
@staff_page()
def alerts():
    """Open and acknowledged alerts of the caller's scope, most urgent first."""
    filters = _alert_filters()
    query = {k: request.args[k] for k in ("kind", "state", "area") if request.args.get(k)}
    return render_template(
        "dashboard/alerts.html",
        rows=_queue_rows(filters),
        filters=filters,
        query=query,
        areas=svc.areas_in_scope(session=db_session(), staff=g.staff),
        kinds=list(AlertKind),
        states=list(AlertState),
        rows_url=url_for(".alert_rows", **query),
        refresh_seconds=current_app.config.get("DASHBOARD_REFRESH_SECONDS", 15),
        back=url_for(".alerts", **query),
    )


@bp.get("/alerts/rows")
@staff_page()
def alert_rows():
    """The queue's table rows alone: polled every 15 s by ``static/dashboard.js``."""
    filters = _alert_filters()
    query = {k: request.args[k] for k in ("kind", "state", "area") if request.args.get(k)}
    return render_template(
        "dashboard/_alert_rows.html", rows=_queue_rows(filters), back=url_for(".alerts", **query)
    )


def _act_on_alert(alert_id: int, action: Callable, ok_key: str, note: str | None):
    s = db_session()
    if svc.alert_in_scope(session=s, staff=g.staff, alert_id=alert_id) is None:
        abort(404)
    try:
        action(session=s, alert_id=alert_id, staff=g.staff, now=_now(), note=note, ip=_ip())
    except AlertScopeError:
        s.rollback()
        abort(404)
    except AlertStateError as exc:
        s.rollback()
        flash(_t(exc.code), "error")
    else:
        s.commit()
        flash(_t(ok_key), "ok")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@staff_page()
def alert_acknowledge(alert_id: int):
    note = request.form.get("note", "").strip()[:2000] or None
    return _act_on_alert(alert_id, acknowledge_alert, "acknowledged_ok", note)


@bp.post("/alerts/<int:alert_id>/resolve")
@staff_page()
def alert_resolve(alert_id: int):
    note = request.form.get("note", "").strip()[:2000]
    if not note:
        if svc.alert_in_scope(session=db_session(), staff=g.staff, alert_id=alert_id) is None:
            abort(404)
        flash(_t("note_required"), "error")
        return redirect(_safe_next(request.form.get("next")))
    return _act_on_alert(alert_id, resolve_alert, "resolved_ok", note)


# --- failed check-in review ---------------------------------------------------------------


@bp.get("/reviews")
@staff_page(*MANAGERS)
def reviews():
    include_quality = request.args.get("all") == "1"
    rows = svc.review_queue(session=db_session(), staff=g.staff, include_quality=include_quality)
    return render_template("dashboard/reviews.html", rows=rows, include_quality=include_quality)


def _scoped_attempt(attempt_id: int):
    found = svc.attempt_in_scope(session=db_session(), staff=g.staff, attempt_id=attempt_id)
    if found is None:
        abort(404)
    return found


@bp.get("/reviews/<int:attempt_id>")
@staff_page(*MANAGERS)
def review(attempt_id: int):
    """The enrolment photo and the selfie side by side, the score, the reason and a map of the
    fix against home; the reviewer decides "same person" or "not the same person"."""
    attempt, person = _scoped_attempt(attempt_id)
    s = db_session()
    details = attempt.details or {}
    fix = (
        (attempt.latitude, attempt.longitude)
        if attempt.latitude is not None and attempt.longitude is not None
        else None
    )
    geo = charts.geofence(
        home=(person.home_lat, person.home_lon),
        fix=fix,
        radius_m=person.geofence_radius_m,
        accuracy_m=attempt.accuracy_m,
        title=_t("location"),
        labels={"home": _t("home"), "radius": _t("geofence_radius"), "fix": _t("selfie")},
    )
    reviewer = s.get(StaffUser, attempt.reviewed_by_id) if attempt.reviewed_by_id else None
    return render_template(
        "dashboard/review.html",
        attempt=attempt,
        person=person,
        details=details,
        enrolment=svc.enrolment_images(session=s, person=person),
        geofence_svg=geo,
        reviewer=reviewer,
    )


@bp.post("/reviews/<int:attempt_id>")
@staff_page(*MANAGERS)
def review_decide(attempt_id: int):
    attempt, person = _scoped_attempt(attempt_id)
    outcome = request.form.get("outcome")
    note = request.form.get("note", "").strip()[:2000]
    if outcome not in ("same_person", "not_same_person"):
        abort(400)
    if not note:
        flash(_t("note_required"), "error")
        return redirect(url_for(".review", attempt_id=attempt_id))
    s = db_session()
    try:
        svc.review_attempt(
            session=s,
            staff=g.staff,
            attempt=attempt,
            person=person,
            same_person=outcome == "same_person",
            note=note,
            now=_now(),
            ip=_ip(),
        )
    except svc.ReviewError:
        s.rollback()
        flash(_t("already_reviewed"), "error")
        return redirect(url_for(".review", attempt_id=attempt_id))
    if outcome == "same_person":
        _learn_template(person, attempt)
    s.commit()
    flash(_t("reviewed_same" if outcome == "same_person" else "reviewed_not_same"), "ok")
    return redirect(url_for(".reviews"))


def _learn_template(person: Person, attempt) -> None:
    """The confirmed selfie may join the templates; a failure here never undoes the review."""
    s = db_session()
    try:
        with s.begin_nested():
            added = svc.learn_confirmed_template(
                session=s, settings=ctx().settings, person=person, attempt=attempt, now=_now()
            )
    except Exception:  # the verifier or the image store: log, keep the review
        log.warning("could not learn a template from attempt %s", attempt.id, exc_info=True)
        return
    if added:
        audit.record(
            session=s,
            actor_kind="staff",
            actor_id=g.staff.id,
            ip=_ip(),
            at=_now(),
            action="template.add_confirmed",
            target_kind="checkin_attempt",
            target_id=attempt.id,
            area_id=person.ward_id,
        )


@bp.get("/images/<int:image_id>")
@staff_page(*MANAGERS)
def image(image_id: int):
    """A face image, decrypted from the store and re-encoded as JPEG (which drops EXIF data
    such as GPS and anything that is not a picture). Every view is audited."""
    from server.storage import image_store

    s = db_session()
    found = svc.image_in_scope(session=s, staff=g.staff, image_id=image_id)
    if found is None:
        abort(404)
    stored, person = found
    try:
        data = _as_jpeg(image_store(ctx().settings).load(stored.storage_key))
    except Exception:  # missing file, wrong key, not an image
        log.warning("cannot show image %s", image_id, exc_info=True)
        abort(404)
    audit.record(
        session=s,
        actor_kind="staff",
        actor_id=g.staff.id,
        action="face_image.view",
        target_kind="stored_image",
        target_id=stored.id,
        area_id=person.ward_id,
        ip=_ip(),
        at=_now(),
        details={"person_id": person.id, "kind": stored.kind},
    )
    s.commit()
    return Response(
        data,
        mimetype="image/jpeg",
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )


def _as_jpeg(data: bytes, max_side: int = 1024) -> bytes:
    """Re-encode within the verifier's bounds: the header is checked before any pixel is
    decoded (issue 13, finding 3: a stored 13000x13000 PNG took 4 s and 2.2 GB here)."""
    from PIL import ImageOps

    from server.faces import get_verifier
    from verification.image import read_header

    limits = get_verifier().settings
    if len(data) > limits.max_image_bytes:
        raise ValueError("stored image above the byte limit")
    with read_header(data, max_pixels=limits.max_image_pixels) as img:
        if img.format == "JPEG":
            img.draft("RGB", (max_side, max_side))  # decode JPEGs at a reduced scale
        img = ImageOps.exif_transpose(img).convert("RGB")
        img.thumbnail((max_side, max_side))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=88)
    return out.getvalue()


# --- persons ------------------------------------------------------------------------------


PAGE_SIZE = 50


@bp.get("/persons")
@staff_page()
def persons():
    q = request.args.get("q", "")
    sort = request.args.get("sort", "risk")
    page = max(_int_arg("page") or 1, 1)
    # "→" carries the last row's id (keyset, issue 18): the next page starts where this one
    # ended instead of reading and dropping every row before it; a bare ?page=N still works
    after_id = _int_arg("after")
    after = None
    if after_id is not None:
        after = person_in_scope(session=db_session(), staff=g.staff, person_id=after_id)
        if after is None:
            abort(404)
    rows = svc.person_list(
        session=db_session(),
        staff=g.staff,
        q=q,
        sort=sort,
        limit=PAGE_SIZE + 1,
        offset=0 if after is not None else (page - 1) * PAGE_SIZE,
        after=after,
    )
    return render_template(
        "dashboard/persons.html",
        rows=rows[:PAGE_SIZE],
        q=q,
        sort=sort,
        page=page,
        more=len(rows) > PAGE_SIZE,
        next_after=rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None,
    )


def _scoped_person(person_id: int) -> Person:
    person = person_in_scope(session=db_session(), staff=g.staff, person_id=person_id)
    if person is None:
        abort(404)
    return person


@bp.get("/persons/<int:person_id>")
@staff_page()
def person(person_id: int):
    p = _scoped_person(person_id)
    return _render_person(p)


def _render_person(p: Person, status: int = 200, **extra: Any):
    s = db_session()
    now = _now()
    decls = svc.declarations(session=s, person=p)
    history = svc.alert_history(session=s, person=p)
    stamps = [d.measured_at.astimezone(ctx().settings.zone).strftime("%d/%m %H:%M") for d in decls]
    spo2 = [(d.measured_at, float(d.spo2)) for d in decls if d.spo2 is not None]
    temps = [(d.measured_at, float(d.temperature_c)) for d in decls if d.temperature_c is not None]
    spo2_labels = [stamps[i] for i, d in enumerate(decls) if d.spo2 is not None]
    temp_labels = [stamps[i] for i, d in enumerate(decls) if d.temperature_c is not None]
    doctor = s.get(StaffUser, p.doctor_id) if p.doctor_id else None
    manager = svc.is_manager(g.staff)
    return render_template(
        "dashboard/person.html",
        person=p,
        ward=s.get(Area, p.ward_id),
        compliance=svc.compliance(session=s, person=p, now=now),
        last_checkin=svc.last_checkin(session=s, person=p),
        declarations=list(reversed(decls))[:30],
        spo2_chart=charts.line_chart(
            spo2,
            title=_t("spo2_chart"),
            y_min=80,
            y_max=100,
            unit="%",
            threshold=95,
            threshold_label="95 %",
            danger_below=True,
            labels=spo2_labels,
            empty=_t("no_data"),
        ),
        temperature_chart=charts.line_chart(
            temps,
            title=_t("temperature_chart"),
            y_min=35,
            y_max=41,
            unit="°",
            threshold=37.5,
            threshold_label="37,5 °C",
            labels=temp_labels,
            empty=_t("no_data"),
        ),
        alerts=history,
        alert_occurrences=svc.alert_occurrences(session=s, alerts=history),
        audit_rows=svc.audit_trail(session=s, person=p),
        doctor=doctor,
        doctors=svc.doctors_in_scope(session=s, staff=g.staff) if manager else [],
        policy_text=extra.pop("policy_text", None)
        if "policy_text" in extra
        else (
            json.dumps(p.schedule_policy, ensure_ascii=False, indent=2) if p.schedule_policy else ""
        ),
        symptoms=_symptoms(),
        **extra,
    ), status


def _symptoms() -> list[str]:
    from server.declarations.schemas import Symptom

    return [s.value for s in Symptom]


def _replan(person: Person) -> None:
    """Bring the person's future prompts in line (the scheduler's planning, when present)."""
    try:
        from server.schedule.planning import replan_person
    except ImportError:
        return
    kwargs: dict[str, Any] = {"session": db_session(), "person": person, "now": _now()}
    if "settings" in inspect.signature(replan_person).parameters:
        kwargs["settings"] = ctx().settings
    replan_person(**kwargs)


MAX_ISOLATION = timedelta(days=60)


@bp.post("/persons/<int:person_id>/isolation")
@staff_page(*MANAGERS)
def person_isolation(person_id: int):
    """Extend by 1–30 days (at most 60 days in all), or end now. Ending sets the end to now and
    cancels future prompts; the scheduler's release sweep then releases the person and tells
    their phone (as for any isolation that ends)."""
    p = _scoped_person(person_id)
    s = db_session()
    now = _now()
    action = request.form.get("action")
    if p.status is PersonStatus.released:
        flash(_t("isolation_released"), "error")
        return redirect(url_for(".person", person_id=p.id))
    before = p.isolation_end
    if action == "extend":
        days = _int_value(request.form.get("days")) or 0
        new_end = max(p.isolation_end, now) + timedelta(days=days)
        if not 1 <= days <= 30 or new_end - p.isolation_start > MAX_ISOLATION:
            flash(_t("isolation_invalid"), "error")
            return redirect(url_for(".person", person_id=p.id))
        p.isolation_end = new_end
        message = "isolation_extended"
    elif action == "end" and request.form.get("confirm") == "1":
        p.isolation_end = max(now, p.isolation_start)
        message = "isolation_ended"
    else:
        flash(_t("invalid_value"), "error")
        return redirect(url_for(".person", person_id=p.id))
    p.updated_at = now
    svc.record_action(
        session=s,
        staff=g.staff,
        action=f"person.isolation_{action}",
        person=p,
        now=now,
        ip=_ip(),
        details={"from": before.isoformat(), "to": p.isolation_end.isoformat()},
    )
    _replan(p)
    s.commit()
    flash(_t(message), "ok")
    return redirect(url_for(".person", person_id=p.id))


@bp.post("/persons/<int:person_id>/schedule")
@staff_page(*MANAGERS)
def person_schedule(person_id: int):
    """The person's own schedule overrides (JSON object), validated by the scheduler's policy
    model when present; empty clears them (the ward's schedule applies)."""
    p = _scoped_person(person_id)
    raw = request.form.get("policy", "").strip()
    error = None
    overrides: dict[str, Any] | None = None
    if raw:
        try:
            overrides = json.loads(raw)
            if not isinstance(overrides, dict):
                raise ValueError("a JSON object is needed")
            _validate_policy(overrides)
        # JSONDecodeError and PolicyError are ValueErrors; RecursionError: nesting deeper than
        # the parser goes (issue 13, finding 6)
        except (ValueError, TypeError, RecursionError) as exc:
            error = str(exc)[:500]
    if error:
        error = i18n.policy_message(error, g.lang)
        return _render_person(p, 422, policy_text=raw, policy_error=error)
    s = db_session()
    before = p.schedule_policy
    p.schedule_policy = overrides or None
    p.updated_at = _now()
    svc.record_action(
        session=s,
        staff=g.staff,
        action="person.schedule_policy",
        person=p,
        now=_now(),
        ip=_ip(),
        details={"from": before, "to": p.schedule_policy},
    )
    _replan(p)
    s.commit()
    flash(_t("schedule_saved"), "ok")
    return redirect(url_for(".person", person_id=p.id))


def _validate_policy(overrides: dict[str, Any]) -> None:
    try:
        from server.schedule.policy import validate_overrides
    except ImportError:
        return
    validate_overrides(overrides)


@bp.post("/persons/<int:person_id>/checkin-now")
@staff_page(*MANAGERS)
def person_checkin_now(person_id: int):
    """Yêu cầu điểm danh ngay: a check-in prompt that opens now for this person (audited,
    once per person per 15 minutes, never in quiet hours; server.checkins.on_demand)."""
    return _checkin_now([_scoped_person(person_id)], back=url_for(".person", person_id=person_id))


@bp.post("/areas/<int:area_id>/checkin-now")
@staff_page(*MANAGERS)
def area_checkin_now(area_id: int):
    """The same for everyone in home isolation in a ward (or any area) within the caller's
    scope."""
    from sqlalchemy import select

    from server.people.scope import area_in_scope, persons_in_scope

    s = db_session()
    area = s.get(Area, area_id)
    if area is None or not area_in_scope(session=s, staff=g.staff, area=area):
        abort(404)
    ward_ids = select(Area.id).where(Area.path.startswith(area.path))
    people = s.scalars(
        persons_in_scope(session=s, staff=g.staff).where(Person.ward_id.in_(ward_ids))
    ).all()
    return _checkin_now(list(people), back=url_for(".persons"))


def _checkin_now(people: list[Person], *, back: str):
    from server.checkins.on_demand import request_checkins
    from server.schedule.policy import resolver_for

    s = db_session()
    made = request_checkins(
        session=s, persons=people, now=_now(), resolver=resolver_for(session=s,
        settings=ctx().settings), actor_id=g.staff.id, ip=_ip(),
    )  # fmt: skip
    s.commit()
    if made.prompts:
        flash(_t("checkin_now_ok").format(n=len(made.prompts)), "ok")
    for reason in sorted(set(made.refused.values())):
        flash(_t(f"checkin_now_{reason}"), "error")
    return redirect(back)


@bp.post("/persons/<int:person_id>/activation-code")
@staff_page(*MANAGERS)
def person_activation(person_id: int):
    """A new one-time activation code, shown once on the answer page (never stored in clear)."""
    from server.people.enrolment import issue_activation_code

    p = _scoped_person(person_id)
    s = db_session()
    issued = issue_activation_code(
        session=s,
        person=p,
        now=_now(),
        actor_id=g.staff.id,
        server_url=ctx().settings.public_url,
        secret=ctx().settings.secret_key,
    )
    s.commit()
    return render_template("dashboard/activation.html", person=p, issued=issued)


@bp.post("/persons/<int:person_id>/doctor")
@staff_page(*MANAGERS)
def person_doctor(person_id: int):
    p = _scoped_person(person_id)
    s = db_session()
    raw = request.form.get("doctor_id", "")
    doctor_id: int | None = None
    if raw:
        allowed = {d.id for d in svc.doctors_in_scope(session=s, staff=g.staff)}
        try:
            doctor_id = int(raw)
        except ValueError:
            doctor_id = -1
        if doctor_id not in allowed:
            abort(404)
    before = p.doctor_id
    p.doctor_id = doctor_id
    svc.record_action(
        session=s,
        staff=g.staff,
        action="person.assign_doctor",
        person=p,
        now=_now(),
        ip=_ip(),
        details={"from": before, "to": doctor_id},
    )
    s.commit()
    flash(_t("doctor_assigned"), "ok")
    return redirect(url_for(".person", person_id=p.id))


@bp.post("/persons/<int:person_id>/declarations")
@staff_page()
def person_declaration(person_id: int):
    """Staff enter a health declaration for a person without a smartphone (risk rules and
    alerts exactly as for the phone's)."""
    from server.declarations.schemas import DeclarationIn
    from server.declarations.service import submit

    p = _scoped_person(person_id)
    s = db_session()
    form = request.form
    try:
        measured = _parse_local(form.get("measured_at", "")) or _now()
        data = DeclarationIn(
            measured_at=measured,
            temperature_c=form.get("temperature_c") or None,
            spo2=form.get("spo2") or None,
            heart_rate=form.get("heart_rate") or None,
            symptoms=form.getlist("symptoms"),
            note=form.get("note") or None,
        )
        submit(
            session=s,
            settings=ctx().settings,
            person=p,
            data=data,
            now=_now(),
            entered_by_id=g.staff.id,
        )
    except (ValidationError, ValueError, ApiError) as exc:
        s.rollback()
        flash(f"{_t('declaration_invalid')}: {_short_error(exc)}", "error")
        return redirect(url_for(".person", person_id=p.id))
    s.commit()
    flash(_t("declaration_saved"), "ok")
    return redirect(url_for(".person", person_id=p.id))


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())[
            :300
        ]
    if isinstance(exc, ApiError):
        errs = exc.extra.get("errors") or []
        return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errs) or exc.code
    return str(exc)[:300]


def _parse_local(value: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` or ``YYYY-MM-DD`` in the deployment's zone, as aware UTC."""
    value = value.strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ctx().settings.zone)
    return parsed


# --- enrolment ----------------------------------------------------------------------------


ENROL_FIELDS = (
    "full_name",
    "phone",
    "date_of_birth",
    "national_id",
    "category",
    "ward_id",
    "home_address",
    "home_lat",
    "home_lon",
    "geofence_radius_m",
    "isolation_start",
    "isolation_days",
    "comorbidities",
    "pregnant",
)


@bp.route("/enrol", methods=["GET", "POST"])
@staff_page(*MANAGERS)
def enrol():
    """Create a person with 1–3 face photos in one step. Each photo passes the face library's
    enrolment quality gate first; a refused photo is shown with the library's code and
    message, and nothing is created until every photo and field is right."""
    s = db_session()
    wards = [a for a in svc.areas_in_scope(session=s, staff=g.staff) if a.kind is AreaKind.ward]
    values = {k: request.form.get(k, "") for k in ENROL_FIELDS}
    if request.method == "GET":
        values.update(
            isolation_days="7",
            geofence_radius_m="100",
            category="F0",
            isolation_start=_now().astimezone(ctx().settings.zone).date().isoformat(),
        )
        return render_template(
            "dashboard/enrol.html", wards=wards, values=values, field_errors={}, photo_errors=[]
        )
    field_errors: dict[str, str] = {}
    photo_errors: list[tuple[str, str, str, str]] = []
    ward = next((w for w in wards if str(w.id) == values["ward_id"]), None)
    if ward is None:
        field_errors["ward_id"] = i18n.code_message("area_not_found", g.lang)[1]
    data = _person_create(values, ward, field_errors)
    photos = [f for f in request.files.getlist("photos") if f and f.filename]
    templates = []
    if not 1 <= len(photos) <= 3:
        field_errors["photos"] = _t("photos_required")
    else:
        templates = _enrol_photos(photos, photo_errors)
    if field_errors or photo_errors or data is None or ward is None:
        return render_template(
            "dashboard/enrol.html",
            wards=wards,
            values=values,
            field_errors=field_errors,
            photo_errors=photo_errors,
        ), 422
    try:
        person, issued = _create_enrolled(data, ward, templates)
    except ApiError as exc:
        s.rollback()
        field_errors["national_id"] = i18n.code_message(exc.code, g.lang)[1]
        return render_template(
            "dashboard/enrol.html",
            wards=wards,
            values=values,
            field_errors=field_errors,
            photo_errors=photo_errors,
        ), 422
    s.commit()
    flash(_t("enrolled_ok"), "ok")
    return render_template("dashboard/activation.html", person=person, issued=issued)


def _person_create(values: dict[str, str], ward: Area | None, field_errors: dict[str, str]):
    from server.people.schemas import PersonCreate

    zone = ctx().settings.zone
    now = _now()
    try:
        start_day = datetime.fromisoformat(values["isolation_start"]).date()
        days = int(values["isolation_days"] or 7)
    except ValueError:
        field_errors.setdefault("isolation_start", _t("invalid_value"))
        return None
    start = datetime.combine(start_day, datetime.min.time(), tzinfo=zone)
    if start_day == now.astimezone(zone).date():
        start = now
    comorbidities = [
        c.strip().lower().replace(" ", "_") for c in values["comorbidities"].split(",") if c.strip()
    ]
    try:
        return PersonCreate(
            full_name=values["full_name"],
            phone=values["phone"],
            date_of_birth=values["date_of_birth"] or None,
            national_id=values["national_id"] or None,
            category=values["category"] or "F0",
            ward_code=ward.code if ward else "-",
            home_address=values["home_address"],
            home_lat=values["home_lat"] or None,
            home_lon=values["home_lon"] or None,
            geofence_radius_m=values["geofence_radius_m"] or 100,
            isolation_start=start,
            isolation_end=start + timedelta(days=days),
            risk_factors={"comorbidities": comorbidities, "pregnant": values["pregnant"] == "1"},
        )
    except ValidationError as exc:
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else "isolation_start"
            name = {
                "ward_code": "ward_id",
                "isolation_end": "isolation_days",
                "risk_factors": "comorbidities",
            }.get(name, name)
            field_errors.setdefault(name, e["msg"].removeprefix("Value error, "))
        return None


def _enrol_photos(photos, photo_errors: list) -> list[tuple[Any, bytes, str]]:
    from server.faces import get_verifier
    from verification import VerificationError

    out = []
    for f in photos:
        data = f.read()
        try:
            template = get_verifier().enrol(data)
        except VerificationError as exc:
            title, detail = i18n.code_message(exc.code, g.lang)
            photo_errors.append((f.filename[:80], exc.code, title, detail))
            continue
        out.append((template, data, f.mimetype))
    return out


def _create_enrolled(data, ward: Area, templates):
    from server.people.flows import enrol_person

    return enrol_person(
        session=db_session(),
        settings=ctx().settings,
        data=data,
        ward=ward,
        now=_now(),
        photos=list(templates),
        actor_kind="staff",
        actor_id=g.staff.id,
        ip=_ip(),
    )


# --- statistics ---------------------------------------------------------------------------


def _stats() -> tuple[svc.Stats, Area | None, int]:
    s = db_session()
    area_id = _int_arg("area")
    root = None
    if area_id is not None:
        root = svc.area_for_filter(session=s, staff=g.staff, area_id=area_id)
        if root is None or not area_in_scope(session=s, staff=g.staff, area=root):
            abort(404)
    days = _int_arg("days") or 7
    days = min(max(days, 1), 31)
    stats = svc.statistics_by_area(
        session=s, staff=g.staff, root=root, days=days, now=_now(), zone=ctx().settings.zone
    )
    return stats, root, days


@bp.get("/stats")
@staff_page(*MANAGERS)
def stats():
    data, root, days = _stats()
    labels = [d.strftime("%d/%m") for d in data.days]
    names = {k.value: i18n.label("alert_kind", k, g.lang) for k in AlertKind}
    return render_template(
        "dashboard/stats.html",
        stats=data,
        root=root,
        days=days,
        areas=svc.areas_in_scope(session=db_session(), staff=g.staff),
        kinds=list(AlertKind),
        compliance_chart=charts.bar_chart(
            list(zip(labels, [r.compliance for r in data.totals], strict=True)),
            title=_t("compliance_chart"),
            empty=_t("no_data"),
        ),
        alerts_chart=charts.stacked_bars(
            labels, svc.alert_kind_series(data), title=_t("alerts_chart"), names=names
        ),
        query={k: v for k, v in (("area", root.id if root else None), ("days", days)) if v},
    )


@bp.get("/stats.csv")
@staff_page(*MANAGERS)
def stats_csv():
    """The statistics table as CSV: UTF-8 with a byte-order mark so that Excel shows the
    Vietnamese names right; one row per ward and day."""
    data, root, days = _stats()
    lang = g.lang
    kinds = list(AlertKind)
    header = (
        [
            _t("day"),
            "area_code",
            _t("area"),
            _t("monitored"),
            _t("prompts_due"),
            _t("prompts_done"),
            _t("compliance") + " (%)",
        ]
        + [i18n.label("alert_kind", k, lang) for k in kinds]
        + [_t("ack_median")]
    )

    def lines():
        # streamed a row at a time (issue 18): the body is never held whole, once as text and
        # again as bytes; the rows themselves are bounded by wards × days (≤ 31), not by data
        out = io.StringIO()
        writer = csv.writer(out)

        def take() -> bytes:
            text = out.getvalue()
            out.seek(0)
            out.truncate()
            return text.encode("utf-8")

        writer.writerow(header)
        yield "\ufeff".encode() + take()
        for r in data.rows:
            writer.writerow(
                [
                    r.day.isoformat(),
                    r.area.code,
                    r.area.name,
                    r.monitored,
                    r.due,
                    r.completed,
                    "" if r.compliance is None else r.compliance,
                ]
                + [r.alerts.get(k.value, 0) for k in kinds]
                + ["" if r.ack_median is None else r.ack_median]
            )
            yield take()

    name = f"isocheck-thong-ke-{data.days[-1].isoformat()}-{days}d.csv"
    return Response(
        lines(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
