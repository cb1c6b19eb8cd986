"""Bulk export in FHIR Bulk Data's NDJSON layout: one ``<Type>.ndjson`` per resource type,
scoped to an area subtree, incremental by ``since``; rows are streamed (bounded memory)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.declarations.models import Declaration
from server.fhir import mapping
from server.people.models import Area, Person

TYPES = ("Patient", "EpisodeOfCare", "Observation", "QuestionnaireResponse", "Flag")
CLOSED = tuple(mapping.CHECKIN_OUTCOMES)
BATCH = 1000


def _persons_in(area: Area | None):
    q = select(Person.id)
    if area is not None:
        q = q.join(Area, Area.id == Person.ward_id).where(Area.path.startswith(area.path))
    return q


def iter_resources(
    *, session: Session, area: Area | None, since: datetime | None
) -> Iterator[tuple[str, object]]:
    """(resource type, validated resource) for everything in scope changed at/after ``since``."""
    areas = {a.id: a for a in session.scalars(select(Area))}
    scope = _persons_in(area)
    q = select(Person).where(Person.id.in_(scope)).order_by(Person.id)
    if since is not None:
        q = q.where(Person.updated_at >= since)
    for person in session.scalars(q.execution_options(yield_per=BATCH)):
        yield "Patient", mapping.patient(person, areas)
        yield "EpisodeOfCare", mapping.episode_of_care(person, areas)
        yield "Flag", mapping.risk_flag(person)
    q = select(Declaration).where(Declaration.person_id.in_(scope)).order_by(Declaration.id)
    if since is not None:
        q = q.where(Declaration.received_at >= since)
    for d in session.scalars(q.execution_options(yield_per=BATCH)):
        yield "QuestionnaireResponse", mapping.questionnaire_response(d)
        for obs in mapping.vital_observations(d):
            yield "Observation", obs
        yield "Observation", mapping.symptom_observation(d)
    q = select(Alert).where(Alert.person_id.in_(scope)).order_by(Alert.id)
    if since is not None:
        q = q.where(
            or_(
                Alert.created_at >= since,
                Alert.acknowledged_at >= since,
                Alert.resolved_at >= since,
            )
        )
    for a in session.scalars(q.execution_options(yield_per=BATCH)):
        yield "Flag", mapping.alert_flag(a)
    q = (
        select(CheckinPrompt)
        .where(CheckinPrompt.person_id.in_(scope), CheckinPrompt.state.in_(CLOSED))
        .order_by(CheckinPrompt.id)
    )
    if since is not None:
        q = q.where(or_(CheckinPrompt.created_at >= since, CheckinPrompt.closed_at >= since))
    for p in session.scalars(q.execution_options(yield_per=BATCH)):
        yield "Observation", mapping.checkin_observation(p)


def export_ndjson(
    *, session: Session, out_dir: Path, area: Area | None, since: datetime | None
) -> dict[str, int]:
    """Write ``<Type>.ndjson`` for every type (empty files too); returns lines per type."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(TYPES, 0)
    files = {t: (out_dir / f"{t}.ndjson").open("w", encoding="utf-8") for t in TYPES}
    try:
        for rtype, resource in iter_resources(session=session, area=area, since=since):
            files[rtype].write(resource.model_dump_json(exclude_none=True) + "\n")
            counts[rtype] += 1
            if counts[rtype] % BATCH == 0:
                session.expunge_all()  # keep the identity map from growing with the export
    finally:
        for f in files.values():
            f.close()
    return counts
