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
same stable ``code`` and Vietnamese/English text as the problem+json errors elsewhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from flask import Blueprint, Response, g, json, request, send_file, url_for
from sqlalchemy import func, select

from server.checkins.models import CheckinPrompt
from server.core import audit
from server.core.enums import StaffRole
from server.declarations.models import Declaration
from server.fhir import bulk, mapping
from server.fhir.export import CLOSED, TYPES
from server.fhir.models import FhirExportJob
from server.http import problem as errors
from server.http.auth import current_staff, staff_required
from server.http.context import ctx, db_session
from server.http.problem import ApiError
from server.people.models import Area, Person
from server.people.scope import person_in_scope, persons_in_scope, scope_root

bp = Blueprint("fhir", __name__, url_prefix="/fhir/r4")

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
PROBLEM_SYSTEM = f"{mapping.BASE}/CodeSystem/problem"
DEFAULT_COUNT, MAX_COUNT = 20, 100
EXPORTERS = (StaffRole.admin, StaffRole.area_staff)
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
NDJSON_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}

#: Our problem codes → the OperationOutcome issue type (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = {
    "not_found": "not-found",
    "unauthorized": "login",
    "forbidden": "forbidden",
    "method_not_allowed": "not-supported",
    "unsupported_media_type": "not-supported",
    "request_too_large": "too-long",
    "rate_limited": "throttled",
    "service_unavailable": "transient",
    "internal_error": "exception",
    "export_failed": "exception",
}

errors.register_messages(
    {
        "fhir_invalid_search": {
            "vi": ("Tham số tìm kiếm không hợp lệ", "Một tham số tìm kiếm FHIR không hợp lệ."),
            "en": ("Invalid search parameter", "A FHIR search parameter is not valid."),
        },
        "fhir_respond_async_required": {
            "vi": (
                "Cần xử lý bất đồng bộ",
                "Yêu cầu $export phải có tiêu đề Prefer: respond-async.",
            ),
            "en": (
                "Asynchronous request required",
                "An $export request needs the header Prefer: respond-async.",
            ),
        },
        "export_failed": {
            "vi": ("Xuất dữ liệu thất bại", "Quá trình xuất dữ liệu FHIR bị lỗi. Hãy thử lại."),
            "en": ("Export failed", "The FHIR export failed. Please start it again."),
        },
    }
)


def operation_outcome(
    code: str, status: int, title: str, detail: str, lang: str, extra: dict[str, Any]
) -> Response:
    """The renderer of every error under ``/fhir/``: an OperationOutcome, same code and text."""
    issues = [
        {
            "severity": "error" if status < 500 else "fatal",
            "code": ISSUE_TYPES.get(code, "invalid"),
            "details": {
                "coding": [{"system": PROBLEM_SYSTEM, "code": code, "display": title}],
                "text": detail,
            },
        }
    ]
    for item in extra.get("errors") or []:
        if isinstance(item, dict):
            issues.append(
                {
                    "severity": "error",
                    "code": "invalid",
                    "details": {"text": str(item.get("message", ""))},
                    "expression": [str(item.get("field", ""))] if item.get("field") else None,
                }
            )
    outcome = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})
    return fhir_response(outcome, status)


errors.register_renderer("/fhir/", operation_outcome)


def fhir_response(resource: Any, status: int = 200, headers: dict[str, str] | None = None):
    body = resource if isinstance(resource, str) else resource.model_dump_json(exclude_none=True)
    response = Response(body, status=status, mimetype=FHIR_JSON)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def _accepted(text: str, headers: dict[str, str] | None = None) -> Response:
    """202 with an informational OperationOutcome (Bulk Data allows one as the body)."""
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
        }
    )
    return fhir_response(outcome, 202, headers)


def _now() -> datetime:
    return ctx().clock.now()


def _invalid(param: str, message: str) -> ApiError:
    return ApiError(
        "fhir_invalid_search", 400, extra={"errors": [{"field": param, "message": message}]}
    )


# --- capability statement ------------------------------------------------------------------


@bp.get("/metadata")
def metadata():
    """The CapabilityStatement: what this server reads, searches and exports."""
    search_count = {"name": "_count", "type": "number", "documentation": f"1–{MAX_COUNT}"}
    search_offset = {"name": "_offset", "type": "number"}
    by_patient = {"name": "patient", "type": "reference", "documentation": "required"}
    statement = CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-12-03",
            "publisher": "isocheck",
            "kind": "instance",
            "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
            "software": {"name": "isocheck"},
            "implementation": {
                "description": "isocheck home-isolation monitoring",
                "url": url_for(".metadata", _external=True).removesuffix("/metadata"),
            },
            # Served resources are built with the R4B models but use only elements that are the
            # same in R4 4.0.1 (docs/fhir.md), the version VN Core targets.
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "Bearer staff token (POST /api/v1/auth/token); results "
                        "are limited to the caller's area; every served record is audited."
                    },
                    "resource": [
                        {
                            "type": "Patient",
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [
                                {"name": "_lastUpdated", "type": "date"},
                                search_count,
                                search_offset,
                            ],
                        },
                        {
                            "type": "Observation",
                            "interaction": [{"code": "search-type"}],
                            "searchParam": [by_patient, search_count, search_offset],
                        },
                        {
                            "type": "EpisodeOfCare",
                            "interaction": [{"code": "search-type"}],
                            "searchParam": [by_patient],
                        },
                    ],
                    "operation": [
                        {
                            "name": "export",
                            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        }
                    ],
                }
            ],
        }
    )
    return fhir_response(statement)


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


def _audit(action: str, person: Person, details: dict[str, Any]) -> None:
    audit.record(
        session=db_session(),
        actor_kind="staff",
        actor_id=g.staff.id,
        action=action,
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        ip=request.remote_addr,
        at=_now(),
        details=details,
    )


def _scoped(person_id: int) -> Person:
    person = person_in_scope(session=db_session(), staff=g.staff, person_id=person_id)
    if person is None:
        raise ApiError("not_found", 404)
    return person


def _only(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:  # strict: a filter silently ignored would hand out more than was asked for
        raise _invalid(unknown[0], f"unsupported search parameter: {unknown[0]}")


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise _invalid(name, f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


def _paging() -> tuple[int, int]:
    return _int_arg("_count", DEFAULT_COUNT, 1, MAX_COUNT), _int_arg("_offset", 0, 0, 10**7)


def _patient_arg() -> Person:
    raw = request.args.get("patient")
    if raw is None:
        raise _invalid("patient", "patient is required")
    value = raw.removeprefix("Patient/")
    if not value.isdigit() or not 0 < int(value) < 2**31:
        raise _invalid("patient", "patient must be Patient/{id}")
    return _scoped(int(value))


_PREFIXES = {"gt", "ge", "lt", "le"}


def _last_updated_filters():
    """``_lastUpdated=ge2026-11-24T00:00:00Z`` (gt/ge/lt/le, repeatable: a range)."""
    clauses = []
    for raw in request.args.getlist("_lastUpdated"):
        prefix, value = raw[:2], raw[2:]
        if prefix not in _PREFIXES:
            raise _invalid("_lastUpdated", "use a prefix gt, ge, lt or le")
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("_lastUpdated", "not an ISO 8601 instant") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        column = Person.updated_at
        clauses.append(
            {"gt": column > at, "ge": column >= at, "lt": column < at, "le": column <= at}[prefix]
        )
    return clauses


def _bundle(entries: list[Any], *, total: int, count: int, offset: int, endpoint: str) -> Response:
    args = {k: request.args.getlist(k) for k in request.args if k not in ("_count", "_offset")}

    def page(at: int) -> str:
        return url_for(endpoint, _external=True, **args, _count=count, _offset=at)

    links = [{"relation": "self", "url": page(offset)}]
    if offset + count < total:
        links.append({"relation": "next", "url": page(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": page(max(0, offset - count))})
    base = url_for(".metadata", _external=True).removesuffix("metadata")
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": mapping.instant(_now()),
            "total": total,
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}{r.get_resource_type()}/{r.id}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in entries
            ],
        }
    )
    return fhir_response(bundle)


@bp.get("/Patient/<int:person_id>")
@staff_required()
def patient_read(person_id: int):
    person = _scoped(person_id)
    resource = mapping.patient(person, _areas_for(person))
    _audit("fhir.read", person, {"type": "Patient"})
    db_session().commit()
    return fhir_response(resource)


@bp.get("/Patient")
@staff_required()
def patient_search():
    _only("_lastUpdated", "_count", "_offset")
    count, offset = _paging()
    s = db_session()
    query = persons_in_scope(session=s, staff=g.staff).where(*_last_updated_filters())
    total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
    persons = list(s.scalars(query.order_by(Person.id).offset(offset).limit(count)))
    resources = [mapping.patient(p, _areas_for(p)) for p in persons]
    for p in persons:
        _audit("fhir.search", p, {"type": "Patient"})
    s.commit()
    return _bundle(resources, total=total, count=count, offset=offset, endpoint=".patient_search")


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
    _only("patient", "_count", "_offset")
    count, offset = _paging()
    person = _patient_arg()
    found = _observations(person)
    _audit("fhir.search", person, {"type": "Observation", "count": len(found)})
    db_session().commit()
    return _bundle(
        found[offset : offset + count],
        total=len(found),
        count=count,
        offset=offset,
        endpoint=".observation_search",
    )


@bp.get("/EpisodeOfCare")
@staff_required()
def episode_search():
    _only("patient", "_count", "_offset")
    count, offset = _paging()
    person = _patient_arg()
    found = [mapping.episode_of_care(person, _areas_for(person))]
    _audit("fhir.search", person, {"type": "EpisodeOfCare"})
    db_session().commit()
    return _bundle(
        found[offset : offset + count],
        total=len(found),
        count=count,
        offset=offset,
        endpoint=".episode_search",
    )


# --- $export -------------------------------------------------------------------------------


def _since_arg() -> datetime | None:
    raw = request.args.get("_since")
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("_since", "not an ISO 8601 instant") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _types_arg() -> list[str]:
    raw = request.args.get("_type")
    if raw is None:
        return list(TYPES)
    asked = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = [t for t in asked if t not in TYPES]
    if unknown or not asked:
        raise _invalid("_type", f"exportable types: {', '.join(TYPES)}")
    return asked


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
    _only("_since", "_type", "_outputFormat")
    if request.args.get("_outputFormat", "application/fhir+ndjson") not in NDJSON_FORMATS:
        raise _invalid("_outputFormat", "only application/fhir+ndjson")
    since, types = _since_arg(), _types_arg()
    s, staff = db_session(), current_staff()
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
    audit.record(
        session=s,
        actor_kind="staff",
        actor_id=staff.id,
        action="fhir.export",
        area_id=area.id if area else None,
        ip=request.remote_addr,
        at=_now(),
        details={"job": job.id, "since": mapping.instant(since), "types": job.types},
    )
    s.commit()
    bulk.start(ctx().session_factory, ctx().settings.data_dir, ctx().clock, job.id)
    status_url = url_for(".export_status", job_id=job.id, _external=True)
    return _accepted("export accepted", {"Content-Location": status_url})


@bp.get("/$export-status/<job_id>")
@staff_required(*EXPORTERS, bearer_only=True)
def export_status(job_id: str):
    job = _own_job(job_id)
    if job.status in bulk.ACTIVE:
        progress = f"{job.status}: {job.written} resources written"
        return _accepted(progress, {"X-Progress": progress, "Retry-After": "2"})
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
    audit.record(
        session=s,
        actor_kind="staff",
        actor_id=g.staff.id,
        action="fhir.export.cancel",
        area_id=job.area_id,
        ip=request.remote_addr,
        at=_now(),
        details={"job": job.id},
    )
    s.commit()
    return _accepted("export cancelled")


@bp.get("/$export-file/<job_id>/<rtype>.ndjson")
@staff_required(*EXPORTERS, bearer_only=True)
def export_file(job_id: str, rtype: str):
    job = _own_job(job_id)
    if job.status != "completed" or rtype not in job.types:
        raise ApiError("not_found", 404)
    path = bulk.job_dir(ctx().settings.data_dir, job.id) / f"{rtype}.ndjson"
    if not path.is_file():
        raise ApiError("not_found", 404)
    s = db_session()
    audit.record(
        session=s,
        actor_kind="staff",
        actor_id=g.staff.id,
        action="fhir.export.download",
        area_id=job.area_id,
        ip=request.remote_addr,
        at=_now(),
        details={"job": job.id, "type": rtype, "count": (job.counts or {}).get(rtype, 0)},
    )
    s.commit()
    response = send_file(path, mimetype=NDJSON, conditional=False, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
