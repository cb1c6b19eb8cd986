"""The FHIR R4 read API and the asynchronous Bulk Data ``$export`` under ``/fhir/r4`` (issue 17).

* ``metadata`` — the CapabilityStatement (public, as FHIR clients expect).
* ``Patient/{id}``, ``Patient?_lastUpdated=…``, ``Observation?patient=…``,
  ``EpisodeOfCare?patient=…`` — searchset Bundles paged by ``_count``/``_offset`` with ``next``
  links; a staff token (or the dashboard's session, for its link to a person's record); scoped
  like every staff route: a person outside the caller's scope is 404; every person whose record
  is served is audited (``fhir.read`` / ``fhir.search``), as every face-image view is.
* ``$export`` (kick-off, ``Prefer: respond-async``), ``$export-status/{job}`` (poll / DELETE),
  ``$export-file/{job}/{Type}.ndjson`` (download) — bearer staff tokens only (a cross-site page
  must never start an export with a browser's cookie), administrators and area staff, scoped to
  the caller's area.

Everything is ``application/fhir+json``; every error is an ``OperationOutcome`` carrying the
same stable ``code`` and Vietnamese/English text as the problem+json errors elsewhere
(:mod:`server.fhir.outcome`). Search parameters and Bundles: :mod:`server.fhir.search`; the
CapabilityStatement: :mod:`server.fhir.capability`; resources: :mod:`server.fhir.mapping`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, json, request, send_file, url_for
from sqlalchemy import func, select

from server.checkins.models import CheckinPrompt
from server.core import audit
from server.core.enums import StaffRole
from server.declarations.models import Declaration
from server.fhir import bulk, mapping, search
from server.fhir.capability import capability_statement
from server.fhir.export import CLOSED
from server.fhir.models import FhirExportJob
from server.fhir.outcome import accepted, fhir_response
from server.http.auth import staff_required
from server.http.context import ctx, db_session
from server.http.problem import ApiError
from server.people.models import Area, Person
from server.scope import person_in_scope, persons_in_scope, scope_root

bp = Blueprint("fhir", __name__, url_prefix="/fhir/r4")

NDJSON = "application/fhir+ndjson"
EXPORTERS = (StaffRole.admin, StaffRole.area_staff)
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
NDJSON_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}


def _now() -> datetime:
    return ctx().clock.now()


def _audit(
    action: str,
    details: dict[str, Any],
    *,
    person: Person | None = None,
    area_id: int | None = None,
) -> None:
    """Audit what the caller was served or started: about ``person`` (a read or search), or
    an export job of ``area_id``."""
    audit.record(
        session=db_session(),
        actor_kind="staff",
        actor_id=g.staff.id,
        action=action,
        target_kind="person" if person is not None else None,
        target_id=person.id if person is not None else None,
        area_id=person.ward_id if person is not None else area_id,
        ip=request.remote_addr,
        at=_now(),
        details=details,
    )


@bp.get("/metadata")
def metadata():
    """The CapabilityStatement: what this server reads, searches and exports."""
    base_url = url_for(".metadata", _external=True).removesuffix("/metadata")
    return fhir_response(capability_statement(base_url))


# --- read and search -----------------------------------------------------------------------


def _areas_for(person: Person) -> dict[int, Area]:
    """The person's ward and the areas above it (what :func:`mapping.patient` names)."""
    s, areas, area_id = db_session(), {}, person.ward_id
    while area_id is not None and area_id not in areas:
        area = s.get(Area, area_id)
        if area is None:
            break
        areas[area.id] = area
        area_id = area.parent_id
    return areas


def _scoped(person_id: int) -> Person:
    person = person_in_scope(session=db_session(), staff=g.staff, person_id=person_id)
    if person is None:
        raise ApiError("not_found", 404)
    return person


def _page(entries: list[Any], *, total: int, count: int, offset: int, endpoint: str):
    return search.bundle(
        entries, total=total, count=count, offset=offset, endpoint=endpoint, now=_now()
    )


@bp.get("/Patient/<int:person_id>")
@staff_required()
def patient_read(person_id: int):
    person = _scoped(person_id)
    resource = mapping.patient(person, _areas_for(person))
    _audit("fhir.read", {"type": "Patient"}, person=person)
    db_session().commit()
    return fhir_response(resource)


@bp.get("/Patient")
@staff_required()
def patient_search():
    search.only("_lastUpdated", "_count", "_offset")
    count, offset = search.paging()
    s = db_session()
    query = persons_in_scope(session=s, staff=g.staff).where(*search.last_updated_filters())
    total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
    persons = list(s.scalars(query.order_by(Person.id).offset(offset).limit(count)))
    resources = [mapping.patient(p, _areas_for(p)) for p in persons]
    for p in persons:
        _audit("fhir.search", {"type": "Patient"}, person=p)
    s.commit()
    return _page(resources, total=total, count=count, offset=offset, endpoint=".patient_search")


def _observations(person: Person) -> list[Any]:
    """Everything of one person that is an Observation: declarations' vital signs and symptoms,
    closed check-ins' outcomes (one person's isolation: a bounded list)."""
    s = db_session()
    out: list[Any] = []
    for d in s.scalars(
        select(Declaration).where(Declaration.person_id == person.id).order_by(Declaration.id)
    ):
        out.extend(mapping.vital_observations(d))
        out.append(mapping.symptom_observation(d))
    for p in s.scalars(
        select(CheckinPrompt)
        .where(CheckinPrompt.person_id == person.id, CheckinPrompt.state.in_(CLOSED))
        .order_by(CheckinPrompt.id)
    ):
        out.append(mapping.checkin_observation(p))
    return out


@bp.get("/Observation")
@staff_required()
def observation_search():
    search.only("patient", "_count", "_offset")
    count, offset = search.paging()
    person = _scoped(search.patient_id())
    found = _observations(person)
    _audit("fhir.search", {"type": "Observation", "count": len(found)}, person=person)
    db_session().commit()
    return _page(
        found[offset : offset + count],
        total=len(found),
        count=count,
        offset=offset,
        endpoint=".observation_search",
    )


@bp.get("/EpisodeOfCare")
@staff_required()
def episode_search():
    search.only("patient", "_count", "_offset")
    count, offset = search.paging()
    person = _scoped(search.patient_id())
    found = [mapping.episode_of_care(person, _areas_for(person))]
    _audit("fhir.search", {"type": "EpisodeOfCare"}, person=person)
    db_session().commit()
    return _page(
        found[offset : offset + count],
        total=len(found),
        count=count,
        offset=offset,
        endpoint=".episode_search",
    )


# --- $export -------------------------------------------------------------------------------


def _sweep() -> None:
    s = db_session()
    bulk.sweep(session=s, data_dir=ctx().settings.data_dir, now=_now())
    s.commit()


def _own_job(job_id: str) -> FhirExportJob:
    """The caller's job, or 404 (someone else's job is not found either)."""
    _sweep()
    job = db_session().get(FhirExportJob, job_id) if JOB_ID.match(job_id) else None
    if job is None or job.staff_id != g.staff.id:
        raise ApiError("not_found", 404)
    return job


@bp.get("/$export")
@staff_required(*EXPORTERS, bearer_only=True)
def export_kickoff():
    """Kick-off (FHIR Bulk Data): 202 + Content-Location of the status URL."""
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise ApiError("fhir_respond_async_required", 400)
    search.only("_since", "_type", "_outputFormat")
    if request.args.get("_outputFormat", "application/fhir+ndjson") not in NDJSON_FORMATS:
        raise search.invalid("_outputFormat", "only application/fhir+ndjson")
    since, types = search.since_arg(), search.types_arg()
    s, staff = db_session(), g.staff
    area = scope_root(session=s, staff=staff)
    if staff.role is not StaffRole.admin and area is None:
        raise ApiError("forbidden", 403)  # area staff without an area export nothing
    _sweep()
    if bulk.active_jobs(session=s, staff_id=staff.id) >= bulk.MAX_ACTIVE_PER_CALLER:
        raise ApiError("rate_limited", 429, headers={"Retry-After": "30"})
    job = bulk.create_job(
        session=s,
        staff_id=staff.id,
        area=area,
        since=since,
        types=types,
        request_url=request.url,
        now=_now(),
    )
    _audit(
        "fhir.export",
        {"job": job.id, "since": mapping.instant(since), "types": job.types},
        area_id=area.id if area else None,
    )
    s.commit()
    bulk.start(ctx().session_factory, ctx().settings.data_dir, ctx().clock, job.id)
    status_url = url_for(".export_status", job_id=job.id, _external=True)
    return accepted("export accepted", {"Content-Location": status_url})


@bp.get("/$export-status/<job_id>")
@staff_required(*EXPORTERS, bearer_only=True)
def export_status(job_id: str):
    job = _own_job(job_id)
    if job.status in bulk.ACTIVE:
        progress = f"{job.status}: {job.written} resources written"
        return accepted(progress, {"X-Progress": progress, "Retry-After": "2"})
    if job.status == "failed":
        raise ApiError("export_failed", 500)
    counts = job.counts or {}
    manifest = {
        "transactionTime": mapping.instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": t,
                "url": url_for(".export_file", job_id=job.id, rtype=t, _external=True),
                "count": counts.get(t, 0),
            }
            for t in job.types
        ],
        "error": [],
    }
    return Response(
        json.dumps(manifest),
        status=200,
        mimetype="application/json",
        headers={
            "Expires": job.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "Cache-Control": "no-store",
        },
    )


@bp.delete("/$export-status/<job_id>")
@staff_required(*EXPORTERS, bearer_only=True)
def export_cancel(job_id: str):
    job = _own_job(job_id)
    s = db_session()
    bulk.cancel(session=s, data_dir=ctx().settings.data_dir, job=job)
    _audit("fhir.export.cancel", {"job": job.id}, area_id=job.area_id)
    s.commit()
    return accepted("export cancelled")


@bp.get("/$export-file/<job_id>/<rtype>.ndjson")
@staff_required(*EXPORTERS, bearer_only=True)
def export_file(job_id: str, rtype: str):
    job = _own_job(job_id)
    if job.status != "completed" or rtype not in job.types:
        raise ApiError("not_found", 404)
    path = bulk.job_dir(ctx().settings.data_dir, job.id) / f"{rtype}.ndjson"
    if not path.is_file():
        raise ApiError("not_found", 404)
    details = {"job": job.id, "type": rtype, "count": (job.counts or {}).get(rtype, 0)}
    _audit("fhir.export.download", details, area_id=job.area_id)
    db_session().commit()
    response = send_file(path, mimetype=NDJSON, conditional=False, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
