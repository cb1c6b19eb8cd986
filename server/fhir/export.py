"""Bulk export in FHIR Bulk Data's NDJSON layout: one ``<Type>.ndjson`` per resource type,
scoped to an area subtree, incremental by ``since``; rows are streamed (bounded memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.core.enums import AlertState
from server.declarations.models import Declaration
from server.fhir import mapping
from server.people.models import Area, Person
from server.scope import person_ids_in_area

TYPES = ("Patient", "EpisodeOfCare", "Observation", "QuestionnaireResponse", "Flag")
CLOSED = tuple(mapping.CHECKIN_OUTCOMES)
BATCH = 1000
#: An alert is a Flag while it is not resolved (acknowledged = someone is on it, still open).
OPEN_ALERTS = (AlertState.open, AlertState.acknowledged)


class ExportCancelled(Exception):
    """The progress callback asked the export to stop (a ``DELETE`` of the ``$export`` job)."""


def iter_resources(
    *,
    session: Session,
    area: Area | None,
    since: datetime | None,
    types: Iterable[str] = TYPES,
) -> Iterator[tuple[str, object]]:
    """(resource type, validated resource) for everything in scope changed at/after ``since``,
    of the given ``types`` only (the tables no asked-for type comes from are not read).

    Alerts: a full export has a Flag for every *open* (or acknowledged) alert only; resolved
    alerts are history, not flags. An incremental export (``since``) also carries the alerts
    resolved since then, as ``inactive`` Flags, so a receiver can close the Flag it had."""
    wanted = set(types)
    areas = {a.id: a for a in session.scalars(select(Area))}
    scope = person_ids_in_area(area)
    if wanted & {"Patient", "EpisodeOfCare", "Flag"}:
        yield from _person_resources(session, scope, areas, since, wanted)
    if wanted & {"QuestionnaireResponse", "Observation"}:
        yield from _declaration_resources(session, scope, since, wanted)
    if "Flag" in wanted:
        yield from _alert_flags(session, scope, since)
    if "Observation" in wanted:
        yield from _checkin_observations(session, scope, since)


def _person_resources(session, scope, areas, since, wanted):
    q = select(Person).where(Person.id.in_(scope)).order_by(Person.id)
    if since is not None:
        q = q.where(Person.updated_at >= since)
    for person in session.scalars(q.execution_options(yield_per=BATCH)):
        if "Patient" in wanted:
            yield "Patient", mapping.patient(person, areas)
        if "EpisodeOfCare" in wanted:
            yield "EpisodeOfCare", mapping.episode_of_care(person, areas)
        if "Flag" in wanted:
            yield "Flag", mapping.risk_flag(person)


def _declaration_resources(session, scope, since, wanted):
    q = select(Declaration).where(Declaration.person_id.in_(scope)).order_by(Declaration.id)
    if since is not None:
        q = q.where(Declaration.received_at >= since)
    for d in session.scalars(q.execution_options(yield_per=BATCH)):
        if "QuestionnaireResponse" in wanted:
            yield "QuestionnaireResponse", mapping.questionnaire_response(d)
        if "Observation" in wanted:
            for obs in mapping.vital_observations(d):
                yield "Observation", obs
            yield "Observation", mapping.symptom_observation(d)


def _alert_flags(session, scope, since):
    q = select(Alert).where(Alert.person_id.in_(scope)).order_by(Alert.id)
    if since is None:
        q = q.where(Alert.state.in_(OPEN_ALERTS))
    else:
        q = q.where(
            or_(
                Alert.created_at >= since,
                Alert.acknowledged_at >= since,
                Alert.resolved_at >= since,
            ),
            or_(Alert.state.in_(OPEN_ALERTS), Alert.resolved_at >= since),
        )
    for a in session.scalars(q.execution_options(yield_per=BATCH)):
        yield "Flag", mapping.alert_flag(a)


def _checkin_observations(session, scope, since):
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
    *,
    session: Session,
    out_dir: Path,
    area: Area | None,
    since: datetime | None,
    types: Iterable[str] = TYPES,
    on_progress: Callable[[int], bool] | None = None,
) -> dict[str, int]:
    """Write ``<Type>.ndjson`` for every asked-for type (empty files too); returns lines per
    type. ``on_progress(lines written)`` is called every :data:`BATCH` lines; when it returns
    False the export stops with :class:`ExportCancelled` (the files written so far remain)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = [t for t in TYPES if t in set(types)]
    counts = dict.fromkeys(wanted, 0)
    files = {t: (out_dir / f"{t}.ndjson").open("w", encoding="utf-8") for t in wanted}
    written = 0
    try:
        for rtype, resource in iter_resources(
            session=session, area=area, since=since, types=wanted
        ):
            files[rtype].write(resource.model_dump_json(exclude_none=True) + "\n")
            counts[rtype] += 1
            written += 1
            # No expunge_all() here: it invalidates the identity map the yield_per cursor is
            # still loading into (InvalidRequestError past BATCH rows). The identity map holds
            # rows weakly; unreferenced rows go, which the streaming test measures.
            if written % BATCH == 0 and on_progress is not None and on_progress(written) is False:
                raise ExportCancelled
    finally:
        for f in files.values():
            f.close()
    return counts
