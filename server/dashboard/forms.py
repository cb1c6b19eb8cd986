"""Parsing the dashboard's forms into the domain's schemas: the enrolment form
(:data:`ENROL_FIELDS` → ``PersonCreate``, field errors keyed by the form's field names), local
date-times, and short error texts for a flash message."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from server.core.errors import DomainError
from server.http.problem import ApiError, request_language
from server.people.models import Area
from server.people.schemas import PersonCreate

ENROL_FIELDS = (
    "full_name",
    "phone",
    "date_of_birth",
    "national_id",
    "category",
    "ward_id",
    "home_address",
    "home_lat",
    "home_lon",
    "geofence_radius_m",
    "isolation_start",
    "isolation_days",
    "comorbidities",
    "pregnant",
)
#: Schema fields reported under the form field that feeds them.
_FORM_FIELD = {
    "ward_code": "ward_id",
    "isolation_end": "isolation_days",
    "risk_factors": "comorbidities",
}


def person_create(
    values: dict[str, str],
    ward: Area | None,
    field_errors: dict[str, str],
    *,
    zone: ZoneInfo,
    now: datetime,
    invalid_text: str,
) -> PersonCreate | None:
    """The enrolment form's ``values`` as a ``PersonCreate``, or None with ``field_errors``
    filled (``invalid_text`` for a start day or length that is no date or number). An
    isolation starting today starts now; another day, at its local midnight."""
    try:
        start_day = datetime.fromisoformat(values["isolation_start"]).date()
        days = int(values["isolation_days"] or 7)
    except ValueError:
        field_errors.setdefault("isolation_start", invalid_text)
        return None
    start = datetime.combine(start_day, datetime.min.time(), tzinfo=zone)
    if start_day == now.astimezone(zone).date():
        start = now
    comorbidities = [
        c.strip().lower().replace(" ", "_") for c in values["comorbidities"].split(",") if c.strip()
    ]
    try:
        return PersonCreate(
            full_name=values["full_name"],
            phone=values["phone"],
            date_of_birth=values["date_of_birth"] or None,
            national_id=values["national_id"] or None,
            category=values["category"] or "F0",
            ward_code=ward.code if ward else "-",
            home_address=values["home_address"],
            home_lat=values["home_lat"] or None,
            home_lon=values["home_lon"] or None,
            geofence_radius_m=values["geofence_radius_m"] or 100,
            isolation_start=start,
            isolation_end=start + timedelta(days=days),
            risk_factors={"comorbidities": comorbidities, "pregnant": values["pregnant"] == "1"},
        )
    except ValidationError as exc:
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else (
                "home_lat" if "home_lat" in e["msg"] else "isolation_start"
            )
            name = _FORM_FIELD.get(name, name)
            field_errors.setdefault(name, e["msg"].removeprefix("Value error, "))
        return None


def parse_local(value: str, zone: ZoneInfo) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` or ``YYYY-MM-DD`` in the deployment's ``zone``, as an aware
    date-time; None for an empty field (``ValueError`` for anything else)."""
    value = value.strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def short_error(exc: Exception) -> str:
    """A form error in one line (at most ~300 characters) for a flash message."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())[
            :300
        ]
    if isinstance(exc, ApiError | DomainError):
        fields = getattr(exc, "fields", ())
        errs = exc.extra.get("errors") or [f.render(request_language()) for f in fields]
        return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errs) or exc.code
    return str(exc)[:300]
