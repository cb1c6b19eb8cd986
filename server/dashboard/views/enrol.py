"""Đăng ký mới: a person and 1–3 face photos in one step (form parsing:
:mod:`server.dashboard.forms`; the enrolment itself:
:func:`server.flows.enrolment.enrol_person`)."""

from __future__ import annotations

from typing import Any

from flask import flash, g, render_template, request

from server.core.enums import AreaKind
from server.core.errors import DomainError
from server.dashboard import i18n
from server.dashboard import service as svc
from server.dashboard.forms import ENROL_FIELDS, person_create
from server.dashboard.pages import ip, now, t
from server.dashboard.security import staff_page
from server.flows.enrolment import enrol_person
from server.http.context import ctx, db_session
from server.http.problem import ApiError
from server.people.models import Area
from server.scope import areas_in_scope


@staff_page(*svc.MANAGERS)
def enrol():
    """Create a person with 1–3 face photos in one step. Each photo passes the face library's
    enrolment quality gate first; a refused photo is shown with the library's code and
    message, and nothing is created until every photo and field is right."""
    s = db_session()
    wards = [a for a in areas_in_scope(session=s, staff=g.staff) if a.kind is AreaKind.ward]
    values = {k: request.form.get(k, "") for k in ENROL_FIELDS}
    if request.method == "GET":
        values.update(
            isolation_days="7",
            geofence_radius_m="100",
            category="F0",
            isolation_start=now().astimezone(ctx().settings.zone).date().isoformat(),
        )
        return render_template(
            "dashboard/enrol.html", wards=wards, values=values, field_errors={}, photo_errors=[]
        )
    field_errors: dict[str, str] = {}
    photo_errors: list[tuple[str, str, str, str]] = []
    ward = next((w for w in wards if str(w.id) == values["ward_id"]), None)
    if ward is None:
        field_errors["ward_id"] = i18n.code_message("area_not_found", g.lang)[1]
    data = person_create(
        values,
        ward,
        field_errors,
        zone=ctx().settings.zone,
        now=now(),
        invalid_text=t("invalid_value"),
    )
    photos = [f for f in request.files.getlist("photos") if f and f.filename]
    templates = []
    if not 1 <= len(photos) <= 3:
        field_errors["photos"] = t("photos_required")
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
    except (ApiError, DomainError) as exc:
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
    flash(t("enrolled_ok"), "ok")
    return render_template("dashboard/activation.html", person=person, issued=issued)


def _enrol_photos(photos, photo_errors: list) -> list[tuple[Any, bytes, str]]:
    """Each photo through the face library's enrolment gate; a refused one is listed in
    ``photo_errors`` with its code and localised message."""
    from server.face_verifier import get_verifier
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
    return enrol_person(
        session=db_session(),
        settings=ctx().settings,
        data=data,
        ward=ward,
        now=now(),
        photos=list(templates),
        actor_kind="staff",
        actor_id=g.staff.id,
        ip=ip(),
    )
