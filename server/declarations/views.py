"""Declaration endpoints: the phone's own (submitDeclaration), and staff entering one on a
person's behalf (people without smartphones), recorded as such."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from sqlalchemy import select

from server.api.serialize import iso
from server.core.enums import StaffRole
from server.declarations import service
from server.declarations.models import Declaration
from server.declarations.schemas import DeclarationIn
from server.http.auth import current_staff, device_required, staff_required
from server.http.context import ctx, db_session
from server.http.limits import per_device
from server.http.problem import ApiError, request_language
from server.http.validation import json_body
from server.scope import person_in_scope

bp = Blueprint("declarations", __name__, url_prefix="/api/v1")


@bp.after_request
def _content_language(response):
    """Declaration answers carry texts (fired rules, advice) in the request's language: say
    which, as every problem does."""
    response.headers.setdefault("Content-Language", request_language())
    return response


def declaration_json(outcome: service.Outcome, lang: str) -> dict:
    d = outcome.declaration
    return {
        "id": d.id,
        "measured_at": iso(d.measured_at),
        "risk_level": d.risk_level.value if d.risk_level else None,
        "fired_rules": [
            {"id": r["id"], "level": r["level"], "text": r.get(lang) or r["vi"]}
            for r in d.fired_rules
        ],
        "advice": outcome.assessment.advice.get(lang) or outcome.assessment.advice["vi"],
        "alerts_raised": outcome.alerts_raised,
        "entered_by_staff": d.entered_by_id is not None,
    }


@bp.post("/me/declarations")
@device_required
@per_device("rate_limit_device")
def submit_declaration():
    """submitDeclaration: temperature, SpO2, heart rate, symptoms → risk level and advice."""
    body = json_body(DeclarationIn)
    _device, person = g.device
    s = db_session()
    outcome = service.submit(
        session=s, settings=ctx().settings, person=person, data=body, now=ctx().clock.now()
    )
    s.commit()
    return jsonify(declaration_json(outcome, request_language())), 201


@bp.get("/me/declarations")
@device_required
@per_device("rate_limit_device")
def list_my_declarations():
    """listMyDeclarations: the person's last 50 declarations, newest first."""
    _device, person = g.device
    s = db_session()
    rows = s.scalars(
        select(Declaration)
        .where(Declaration.person_id == person.id)
        .order_by(Declaration.measured_at.desc())
        .limit(50)
    ).all()
    s.commit()
    return jsonify(
        items=[
            {
                "id": d.id,
                "measured_at": iso(d.measured_at),
                "temperature_c": d.temperature_c,
                "spo2": d.spo2,
                "heart_rate": d.heart_rate,
                "symptoms": d.symptoms,
                "risk_level": d.risk_level.value if d.risk_level else None,
            }
            for d in rows
        ]
    )


@bp.post("/admin/persons/<int:person_id>/declarations")
@staff_required(StaffRole.admin, StaffRole.area_staff, StaffRole.doctor, bearer_only=True)
def submit_declaration_for_person(person_id: int):
    """submitDeclarationForPerson: staff enter a declaration on a person's behalf."""
    body = json_body(DeclarationIn)
    s = db_session()
    staff = current_staff()
    person = person_in_scope(session=s, staff=staff, person_id=person_id)
    if person is None:
        raise ApiError("not_found", 404)
    outcome = service.submit(
        session=s,
        settings=ctx().settings,
        person=person,
        data=body,
        now=ctx().clock.now(),
        entered_by_id=staff.id,
    )
    s.commit()
    return jsonify(declaration_json(outcome, request_language())), 201
