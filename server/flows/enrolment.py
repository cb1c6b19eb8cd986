"""Multi-step enrolment: the one path the admin API, the dashboard and the CLI all take."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.checkins.planning import replan_person
from server.config import Settings
from server.core.errors import FieldProblem, InvalidFields
from server.declarations.risk import load_rules
from server.declarations.service import refresh_high_risk
from server.people import enrolment
from server.people.models import Area, Person
from server.people.schemas import ISOLATION_START_WINDOW, PersonCreate
from server.schedule.policy import effective_zone
from server.storage import image_store


def enrol_person(
    *,
    session: Session,
    settings: Settings,
    data: PersonCreate,
    ward: Area,
    photos: list[tuple[Any, bytes, str | None]],
    now: datetime,
    actor_kind: str,
    actor_id: int | None,
    ip: str | None = None,
) -> tuple[Person, enrolment.IssuedCode]:
    """Enrol a person in home isolation.

    1. Create the person (``active`` once isolation has started).
    2. Keep each photo that already passed the strict gate: ``photos`` holds
       ``(template, image bytes, content type)`` from ``Verifier.enrol``.
    3. Issue the one-time activation code (returned once, stored hashed).
    4. Flag the high-risk group (and raise its consultation alert once).
    5. Plan the person's first prompts, so the phone has something to answer right away.
    The caller checks the ward is in the actor's scope, and commits.
    """
    if abs(data.isolation_start - now) > ISOLATION_START_WINDOW:
        raise InvalidFields(
            FieldProblem(
                "isolation_start",
                "value_error",
                text="isolation must start within 60 days of today",
            )
        )
    person = enrolment.create_person(
        session=session, data=data, now=now, actor_id=actor_id, ward=ward
    )
    store = image_store(settings)
    for template, raw, content_type in photos:
        enrolment.add_enrolment_photo(
            session=session,
            settings=settings,
            store=store,
            person=person,
            template=template,
            data=raw,
            content_type=content_type,
            now=now,
            actor_kind=actor_kind,
            actor_id=actor_id,
            ip=ip,
        )
    issued = enrolment.issue_activation_code(
        session=session,
        person=person,
        now=now,
        actor_id=actor_id,
        server_url=settings.public_url,
        secret=settings.secret_key,
    )
    refresh_high_risk(
        session=session,
        person=person,
        now=now,
        zone=effective_zone(session=session, person=person, settings=settings),
        rules=load_rules(settings.risk_rules_file),
    )
    replan_person(session=session, person=person, now=now, settings=settings)
    return person, issued
