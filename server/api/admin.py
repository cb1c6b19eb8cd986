"""Administrators' API (``/api/v1/admin``): enrol persons, photos, activation codes, devices.

Every route checks the caller's area scope; a person outside it is ``404`` (never ``403``, which
would confirm the person exists).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from server.api.serialize import iso, person_admin
from server.core.enums import StaffRole
from server.face_verifier import get_verifier, server_fault
from server.flows.enrolment import enrol_person
from server.http.auth import current_staff, issue_staff_token, staff_required
from server.http.context import ctx, db_session
from server.http.limits import per_ip
from server.http.problem import ApiError
from server.http.validation import field_error, json_body
from server.people import enrolment
from server.people.areas import get_area_by_code
from server.people.models import Device, FaceTemplate, Person
from server.people.schemas import PersonCreate, StaffLogin
from server.people.staff import get_staff_by_username, login_staff
from server.scope import area_in_scope, person_in_scope
from server.storage import image_store

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1")

ENROLLERS = (StaffRole.admin, StaffRole.area_staff)


@bp.post("/auth/token")
@per_ip("rate_limit_staff_login")
def create_staff_token():
    """createStaffToken: username + password → a bearer token for the admin API (12 h)."""
    body = json_body(StaffLogin)
    s = db_session()
    user = login_staff(
        session=s,
        username=body.username,
        password=body.password,
        now=ctx().clock.now(),
        ip=request.remote_addr,
    )
    s.commit()
    return jsonify(
        token=issue_staff_token(user),
        token_type="Bearer",  # noqa: S106
        expires_in=12 * 3600,
        role=user.role.value,
    )


def _scoped_person(person_id: int) -> Person:
    person = person_in_scope(session=db_session(), staff=current_staff(), person_id=person_id)
    if person is None:
        raise ApiError("not_found", 404)
    return person


def _person_response(person: Person, status: int = 200, **extra):
    s = db_session()
    templates = (
        s.scalar(
            select(func.count())
            .select_from(FaceTemplate)
            .where(FaceTemplate.person_id == person.id)
        )
        or 0
    )
    devices = (
        s.scalar(
            select(func.count())
            .select_from(Device)
            .where(Device.person_id == person.id, Device.revoked_at.is_(None))
        )
        or 0
    )
    return jsonify({**person_admin(person, templates=templates, devices=devices), **extra}), status


def _code_json(issued: enrolment.IssuedCode) -> dict:
    return {
        "code": issued.code,
        "expires_at": iso(issued.expires_at),
        "qr_payload": issued.qr_payload,
    }


@bp.post("/admin/persons")
@staff_required(*ENROLLERS, bearer_only=True)
def create_person():
    """createPerson: enrol a person; the answer carries a one-time activation code."""
    body = json_body(PersonCreate)
    s = db_session()
    staff = current_staff()
    ward = get_area_by_code(session=s, code=body.ward_code)
    if ward is None or not area_in_scope(session=s, staff=staff, area=ward):
        raise ApiError(
            "area_not_found",
            422,
            extra={"errors": [field_error("ward_code", "unknown_ward")]},
        )
    person, issued = enrol_person(
        session=s,
        settings=ctx().settings,
        data=body,
        ward=ward,
        photos=[],
        now=ctx().clock.now(),
        actor_kind="staff",
        actor_id=staff.id,
        ip=request.remote_addr,
    )
    s.commit()
    return _person_response(person, 201, activation=_code_json(issued))


@bp.get("/admin/persons/<int:person_id>")
@staff_required(bearer_only=True)
def get_person(person_id: int):
    """getPerson: the person's record, within the caller's scope."""
    person = _scoped_person(person_id)
    return _person_response(person)


@bp.post("/admin/persons/<int:person_id>/photos")
@staff_required(*ENROLLERS, bearer_only=True)
def add_enrolment_photo(person_id: int):
    """addEnrolmentPhoto: one photo through the strict enrolment quality gate (422 with the
    reason when refused); at most 3 per person."""
    from verification import VerificationError

    person = _scoped_person(person_id)
    s = db_session()
    settings = ctx().settings
    photo = request.files.get("photo")
    if photo is None:
        raise ApiError(
            "validation_error",
            422,
            extra={"errors": [field_error("photo", "photo_required")]},
        )
    if enrolment.enrolment_photo_count(session=s, person=person) >= enrolment.MAX_ENROLMENT_PHOTOS:
        raise ApiError("enrolment_photo_limit", 409)
    data = photo.read()
    now = ctx().clock.now()
    try:
        template = get_verifier().enrol(data)
    except VerificationError as exc:
        if server_fault(exc):  # a damaged model file is our fault, not the photo's
            raise ApiError("service_unavailable", 503, headers={"Retry-After": "60"}) from exc
        status = {"image_too_large": 413, "unsupported_format": 415}.get(exc.code, 422)
        raise ApiError(exc.code, status, extra={"measurements": _measurements(exc)}) from exc
    row = enrolment.add_enrolment_photo(
        session=s,
        settings=settings,
        store=image_store(settings),
        person=person,
        template=template,
        data=data,
        content_type=photo.mimetype,
        now=now,
        actor_kind="staff",
        actor_id=current_staff().id,
        ip=request.remote_addr,
    )
    s.commit()
    return jsonify(
        template_id=row.id,
        embedder=row.embedder,
        quality=row.quality,
        enrolment_photos=enrolment.enrolment_photo_count(session=s, person=person),
    ), 201


@bp.post("/admin/persons/<int:person_id>/activation-code")
@staff_required(*ENROLLERS, bearer_only=True)
def issue_activation_code(person_id: int):
    """issueActivationCode: a new one-time code (earlier unused codes stop working)."""
    person = _scoped_person(person_id)
    s = db_session()
    issued = enrolment.issue_activation_code(
        session=s,
        person=person,
        now=ctx().clock.now(),
        actor_id=current_staff().id,
        server_url=ctx().settings.public_url,
        secret=ctx().settings.secret_key,
    )
    s.commit()
    return jsonify(_code_json(issued)), 201


@bp.post("/admin/persons/<int:person_id>/devices/revoke")
@staff_required(*ENROLLERS, bearer_only=True)
def revoke_devices(person_id: int):
    """revokeDevices: every active phone of the person stops working at once."""
    person = _scoped_person(person_id)
    s = db_session()
    count = enrolment.revoke_devices(
        session=s, person=person, now=ctx().clock.now(), actor_id=current_staff().id
    )
    s.commit()
    return jsonify(revoked=count)


def _measurements(exc) -> dict:
    from server.core.jsonsafe import json_safe

    return json_safe(getattr(exc, "details", {}) or {})


__all__ = ["bp", "get_staff_by_username"]
