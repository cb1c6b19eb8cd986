"""JSON shapes of the API (they are the schemas of mobile_api_spec/openapi.yaml)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.checkins.service import attempts_left
from server.core.enums import PromptState
from server.http.problem import message
from server.people.home import home_status
from server.people.models import Person


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def prompt_json(prompt: CheckinPrompt, now: datetime | None = None) -> dict[str, Any]:
    """A prompt for the phone. One that is due to open (``planned`` with ``opens_at`` passed:
    the open sweep has not run yet) is answerable, so the phone sees it as ``open``."""
    state = prompt.state
    if state is PromptState.planned and now is not None and prompt.opens_at <= now:
        state = PromptState.open
    return {
        "id": prompt.id,
        "kind": prompt.kind.value,
        "state": state.value,
        "nonce": prompt.nonce,
        "opens_at": iso(prompt.opens_at),
        "due_at": iso(prompt.due_at),
        "attempts_left": attempts_left(prompt),
        "max_attempts": prompt.max_attempts,
        "challenge": prompt.challenge,
    }


def person_summary(person: Person) -> dict[str, Any]:
    """What the phone may know about its own person."""
    return {
        "id": person.id,
        "full_name": person.full_name,
        "status": person.status.value,
        "category": person.category.value,
        "isolation_start": iso(person.isolation_start),
        "isolation_end": iso(person.isolation_end),
        "home_address": person.home_address,
        "geofence_radius_m": person.geofence_radius_m,
        "risk_level": person.risk_level.value,
        "home_position": home_status(person),
    }


def person_admin(person: Person, *, templates: int, devices: int) -> dict[str, Any]:
    return {
        **person_summary(person),
        "phone": person.phone,
        "date_of_birth": person.date_of_birth.isoformat() if person.date_of_birth else None,
        "national_id": person.national_id,
        "ward_id": person.ward_id,
        "home_lat": person.home_lat,
        "home_lon": person.home_lon,
        "timezone": person.timezone,
        "risk_factors": person.risk_factors or {},
        "is_high_risk": person.is_high_risk,
        "max_devices": person.max_devices,
        "enrolment_templates": templates,
        "active_devices": devices,
        "created_at": iso(person.created_at),
    }


def attempt_json(attempt: CheckinAttempt, prompt: CheckinPrompt, lang: str) -> dict[str, Any]:
    """The check-in result the phone shows: decision, code, message and attempts left."""
    code = attempt.code or "internal_error"
    title, detail = message(code, lang)
    return {
        "attempt_id": attempt.id,
        "prompt_id": prompt.id,
        "result": attempt.decision.value if attempt.decision else "review",
        "code": code,
        "title": title,
        "message": detail,
        "attempts_left": attempts_left(prompt),
        "prompt_state": prompt.state.value,
        "score": attempt.score,
        "distance_from_home_m": attempt.distance_from_home_m,
        "received_at": iso(attempt.received_at),
    }
