"""Người cách ly: the person list, a person's page, and what staff change on it (isolation
period, schedule, doctor, activation code, a declaration entered for them, a check-in now)."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from server.checkins.on_demand import request_checkins
from server.checkins.planning import replan_person
from server.core.errors import DomainError
from server.dashboard import charts, i18n, schedule_form
from server.dashboard import service as svc
from server.dashboard.forms import parse_local, short_error
from server.dashboard.pages import int_arg, int_value, ip, now, t
from server.dashboard.security import staff_page
from server.dashboard.statistics import compliance
from server.declarations.schemas import DeclarationIn, Symptom
from server.declarations.service import submit
from server.http.context import ctx, db_session
from server.http.problem import ApiError
from server.people import home
from server.people.enrolment import issue_activation_code
from server.people.isolation import IsolationChangeError, change_isolation
from server.people.models import Area, Person, StaffUser
from server.schedule.policy import resolver_for, validate_overrides
from server.scope import (
    area_ids_under,
    area_in_scope,
    doctors_in_scope,
    person_in_scope,
    persons_in_scope,
)

PAGE_SIZE = 50


@staff_page()
def persons():
    q = request.args.get("q", "")
    sort = request.args.get("sort", "risk")
    page = max(int_arg("page") or 1, 1)
    # "→" carries the last row's id (keyset, issue 18): the next page starts where this one
    # ended instead of reading and dropping every row before it; a bare ?page=N still works
    after_id = int_arg("after")
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


@staff_page()
def person(person_id: int):
    p = _scoped_person(person_id)
    return _render_person(p)


def _render_person(p: Person, status: int = 200, **extra: Any):
    s = db_session()
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
        compliance=compliance(session=s, person=p, now=now()),
        last_checkin=svc.last_checkin(session=s, person=p),
        declarations=list(reversed(decls))[:30],
        spo2_chart=charts.line_chart(
            spo2,
            title=t("spo2_chart"),
            y_min=80,
            y_max=100,
            unit="%",
            threshold=95,
            threshold_label="95 %",
            danger_below=True,
            labels=spo2_labels,
            empty=t("no_data"),
        ),
        temperature_chart=charts.line_chart(
            temps,
            title=t("temperature_chart"),
            y_min=35,
            y_max=41,
            unit="°",
            threshold=37.5,
            threshold_label="37,5 °C",
            labels=temp_labels,
            empty=t("no_data"),
        ),
        alerts=history,
        alert_occurrences=svc.alert_occurrences(session=s, alerts=history),
        audit_rows=svc.audit_trail(session=s, person=p),
        doctor=doctor,
        doctors=doctors_in_scope(session=s, staff=g.staff) if manager else [],
        policy_text=extra.pop("policy_text", None)
        if "policy_text" in extra
        else (
            json.dumps(p.schedule_policy, ensure_ascii=False, indent=2) if p.schedule_policy else ""
        ),
        symptoms=[s.value for s in Symptom],
        **extra,
    ), status


def _replan(person: Person) -> None:
    """Bring the person's future prompts in line with what was just changed."""
    replan_person(session=db_session(), person=person, now=now(), settings=ctx().settings)


@staff_page(*svc.MANAGERS)
def person_isolation(person_id: int):
    """Extend by 1–30 days (at most 60 days in all), or end now (rules:
    :mod:`server.people.isolation`); then the person's prompts are re-planned."""
    p = _scoped_person(person_id)
    s = db_session()
    at = now()
    action = request.form.get("action")
    before = p.isolation_end
    try:
        message = change_isolation(
            person=p,
            action=action,
            days=int_value(request.form.get("days")),
            confirmed=request.form.get("confirm") == "1",
            now=at,
        )
    except IsolationChangeError as exc:
        flash(t(exc.code), "error")
        return redirect(url_for(".person", person_id=p.id))
    svc.record_action(
        session=s,
        staff=g.staff,
        action=f"person.isolation_{action}",
        person=p,
        now=at,
        ip=ip(),
        details={"from": before.isoformat(), "to": p.isolation_end.isoformat()},
    )
    _replan(p)
    s.commit()
    flash(t(message), "ok")
    return redirect(url_for(".person", person_id=p.id))


@staff_page(*svc.MANAGERS)
def person_schedule(person_id: int):
    """The person's own schedule overrides (JSON object), validated by the scheduler's policy
    model; empty clears them (the ward's schedule applies)."""
    p = _scoped_person(person_id)
    raw = request.form.get("policy", "").strip()
    error = None
    overrides: dict[str, Any] | None = None
    if raw:
        try:
            overrides = json.loads(raw)
            if not isinstance(overrides, dict):
                raise ValueError("a JSON object is needed")
            validate_overrides(overrides)
        # JSONDecodeError and PolicyError are ValueErrors; RecursionError: nesting deeper than
        # the parser goes (issue 13, finding 6)
        except (ValueError, TypeError, RecursionError) as exc:
            error = str(exc)[:500]
    if error:
        error = i18n.policy_message(error, g.lang)
        return _render_person(p, 422, policy_text=raw, policy_error=error)
    return _save_schedule(p, overrides or None)


def _save_schedule(p: Person, overrides: dict[str, Any] | None, anchor: str | None = None):
    """Store the person's schedule overrides (None: the ward's schedule), audited, re-plan."""
    s = db_session()
    before = p.schedule_policy
    p.schedule_policy = overrides
    p.updated_at = now()
    svc.record_action(
        session=s,
        staff=g.staff,
        action="person.schedule_policy",
        person=p,
        now=now(),
        ip=ip(),
        details={"from": before, "to": p.schedule_policy},
    )
    _replan(p)
    s.commit()
    flash(t("schedule_saved"), "ok")
    return redirect(url_for(".person", person_id=p.id, _anchor=anchor))


@staff_page(*svc.MANAGERS)
def person_schedule_form(person_id: int):
    """The schedule as a form (issue 19, item 6): windows, minutes to answer, spot checks and
    quiet hours, each refusal at its field (422); stores as the person's overrides what differs
    from the ward's schedule (:mod:`server.dashboard.schedule_form`)."""
    p = _scoped_person(person_id)
    s = db_session()
    base = schedule_form.ward_policy(session=s, person=p, settings=ctx().settings)
    overrides, shown = schedule_form.parse(
        request.form, base=base, existing=p.schedule_policy, lang=g.lang
    )
    if shown.errors:
        return _render_person(p, 422, schedule=shown)
    return _save_schedule(p, overrides, anchor="schedule")


@staff_page(*svc.MANAGERS)
def person_home(person_id: int):
    """The home position of a person enrolled without coordinates (issue 19, item 7):
    ``confirm`` the position the phone sent at activation, ``reject`` it (still awaited), or
    ``typed`` coordinates (the fallback). Audited; then check-ins are judged against it."""
    p = _scoped_person(person_id)
    s = db_session()
    at = now()
    action = request.form.get("action")
    before = {"source": p.home_source, "accuracy_m": p.home_proposed_accuracy_m}
    if action == "confirm":
        if not home.confirm_proposed(person=p, now=at):
            flash(t("home_nothing"), "error")
            return redirect(url_for(".person", person_id=p.id))
        event, message = "person.home_confirm", "home_confirmed"
    elif action == "reject":
        home.reject_proposed(person=p, now=at)
        event, message = "person.home_reject", "home_rejected"
    elif action == "typed":
        try:
            lat = float(request.form.get("home_lat", ""))
            lon = float(request.form.get("home_lon", ""))
        except ValueError:
            lat = lon = float("nan")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # NaN fails both
            flash(t("invalid_value"), "error")
            return redirect(url_for(".person", person_id=p.id))
        home.set_typed(person=p, lat=lat, lon=lon, now=at)
        event, message = "person.home_confirm", "home_confirmed"
    else:
        abort(400)
    svc.record_action(
        session=s, staff=g.staff, action=event, person=p, now=at, ip=ip(),
        details={"from": before, "to": {"source": p.home_source}},  # no coordinates
    )  # fmt: skip
    s.commit()
    flash(t(message), "ok")
    return redirect(url_for(".person", person_id=p.id))


@staff_page(*svc.MANAGERS)
def person_checkin_now(person_id: int):
    """Yêu cầu điểm danh ngay: a check-in prompt that opens now for this person (audited,
    once per person per 15 minutes, never in quiet hours; server.checkins.on_demand)."""
    return _checkin_now([_scoped_person(person_id)], back=url_for(".person", person_id=person_id))


@staff_page(*svc.MANAGERS)
def area_checkin_now(area_id: int):
    """The same for everyone in home isolation in a ward (or any area) within the caller's
    scope."""
    s = db_session()
    area = s.get(Area, area_id)
    if area is None or not area_in_scope(session=s, staff=g.staff, area=area):
        abort(404)
    people = s.scalars(
        persons_in_scope(session=s, staff=g.staff).where(Person.ward_id.in_(area_ids_under(area)))
    ).all()
    return _checkin_now(list(people), back=url_for(".persons"))


def _checkin_now(people: list[Person], *, back: str):
    s = db_session()
    made = request_checkins(
        session=s, persons=people, now=now(), resolver=resolver_for(session=s,
        settings=ctx().settings), actor_id=g.staff.id, ip=ip(),
    )  # fmt: skip
    s.commit()
    if made.prompts:
        flash(t("checkin_now_ok").format(n=len(made.prompts)), "ok")
    for reason in sorted(set(made.refused.values())):
        flash(t(f"checkin_now_{reason}"), "error")
    return redirect(back)


@staff_page(*svc.MANAGERS)
def person_activation(person_id: int):
    """A new one-time activation code, shown once on the answer page (never stored in clear)."""
    p = _scoped_person(person_id)
    s = db_session()
    issued = issue_activation_code(
        session=s,
        person=p,
        now=now(),
        actor_id=g.staff.id,
        server_url=ctx().settings.public_url,
        secret=ctx().settings.secret_key,
    )
    s.commit()
    return render_template("dashboard/activation.html", person=p, issued=issued)


@staff_page(*svc.MANAGERS)
def person_doctor(person_id: int):
    p = _scoped_person(person_id)
    s = db_session()
    raw = request.form.get("doctor_id", "")
    doctor_id: int | None = None
    if raw:
        allowed = {d.id for d in doctors_in_scope(session=s, staff=g.staff)}
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
        now=now(),
        ip=ip(),
        details={"from": before, "to": doctor_id},
    )
    s.commit()
    flash(t("doctor_assigned"), "ok")
    return redirect(url_for(".person", person_id=p.id))


@staff_page()
def person_declaration(person_id: int):
    """Staff enter a health declaration for a person without a smartphone (risk rules and
    alerts exactly as for the phone's)."""
    p = _scoped_person(person_id)
    s = db_session()
    form = request.form
    try:
        measured = parse_local(form.get("measured_at", ""), ctx().settings.zone) or now()
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
            now=now(),
            entered_by_id=g.staff.id,
        )
    except (ValidationError, ValueError, ApiError, DomainError) as exc:
        s.rollback()
        flash(f"{t('declaration_invalid')}: {short_error(exc)}", "error")
        return redirect(url_for(".person", person_id=p.id))
    s.commit()
    flash(t("declaration_saved"), "ok")
    return redirect(url_for(".person", person_id=p.id))
