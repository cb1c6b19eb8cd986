"""FHIR search parameters and searchset Bundles: strict parsing (an unknown or malformed
parameter is ``fhir_invalid_search``, 400, never silently ignored), ``_count``/``_offset``
paging with ``self``/``next``/``previous`` links, ``_lastUpdated``, and the ``$export``
kick-off's ``_since`` and ``_type``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from flask import Response, request, url_for

from server.fhir import mapping
from server.fhir.export import TYPES
from server.fhir.outcome import fhir_response
from server.http.problem import ApiError
from server.people.models import Person

DEFAULT_COUNT, MAX_COUNT = 20, 100
_PREFIXES = {"gt", "ge", "lt", "le"}


def invalid(param: str, message: str) -> ApiError:
    return ApiError(
        "fhir_invalid_search", 400, extra={"errors": [{"field": param, "message": message}]}
    )


def only(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:  # strict: a filter silently ignored would hand out more than was asked for
        raise invalid(unknown[0], f"unsupported search parameter: {unknown[0]}")


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise invalid(name, f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


def paging() -> tuple[int, int]:
    return int_arg("_count", DEFAULT_COUNT, 1, MAX_COUNT), int_arg("_offset", 0, 0, 10**7)


def patient_id() -> int:
    """``patient=Patient/{id}`` (or the bare id): required."""
    raw = request.args.get("patient")
    if raw is None:
        raise invalid("patient", "patient is required")
    value = raw.removeprefix("Patient/")
    if not value.isdigit() or not 0 < int(value) < 2**31:
        raise invalid("patient", "patient must be Patient/{id}")
    return int(value)


def last_updated_filters():
    """``_lastUpdated=ge2026-11-24T00:00:00Z`` (gt/ge/lt/le, repeatable: a range)."""
    clauses = []
    for raw in request.args.getlist("_lastUpdated"):
        prefix, value = raw[:2], raw[2:]
        if prefix not in _PREFIXES:
            raise invalid("_lastUpdated", "use a prefix gt, ge, lt or le")
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid("_lastUpdated", "not an ISO 8601 instant") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        column = Person.updated_at
        clauses.append(
            {"gt": column > at, "ge": column >= at, "lt": column < at, "le": column <= at}[prefix]
        )
    return clauses


def since_arg() -> datetime | None:
    raw = request.args.get("_since")
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("_since", "not an ISO 8601 instant") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def types_arg() -> list[str]:
    raw = request.args.get("_type")
    if raw is None:
        return list(TYPES)
    asked = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = [t for t in asked if t not in TYPES]
    if unknown or not asked:
        raise invalid("_type", f"exportable types: {', '.join(TYPES)}")
    return asked


def bundle(
    entries: list[Any], *, total: int, count: int, offset: int, endpoint: str, now: datetime
) -> Response:
    """A searchset Bundle of one page of ``entries`` with paging links to ``endpoint``."""
    args = {k: request.args.getlist(k) for k in request.args if k not in ("_count", "_offset")}

    def page(at: int) -> str:
        return url_for(endpoint, _external=True, **args, _count=count, _offset=at)

    links = [{"relation": "self", "url": page(offset)}]
    if offset + count < total:
        links.append({"relation": "next", "url": page(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": page(max(0, offset - count))})
    base = url_for(".metadata", _external=True).removesuffix("metadata")
    result = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": mapping.instant(now),
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
    return fhir_response(result)
