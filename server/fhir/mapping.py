"""isocheck records → FHIR R4 resources, built and validated with ``fhir.resources.R4B``.

Every builder returns a validated model (``model_validate`` raises on anything the R4B
definitions reject). Choices are documented in docs/fhir.md. Face images, templates, scores and
locations are never mapped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.core.enums import AlertState, PersonStatus, PromptState
from server.declarations.models import Declaration
from server.people.models import Area, Person

#: Our own code systems / identifier namespaces (stable URIs, not resolvable).
BASE = "https://isocheck.vn/fhir"
PERSON_ID_SYSTEM = f"{BASE}/sid/person"
CCCD_SYSTEM = f"{BASE}/sid/cccd"  # Vietnamese citizen identity card number (CCCD/CMND)
SYMPTOM_SYSTEM = f"{BASE}/CodeSystem/symptom"
RISK_SYSTEM = f"{BASE}/CodeSystem/risk-level"
ALERT_SYSTEM = f"{BASE}/CodeSystem/alert-kind"
CHECKIN_SYSTEM = f"{BASE}/CodeSystem/checkin-outcome"
QUESTIONNAIRE = f"{BASE}/Questionnaire/health-declaration"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
VITALS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"

#: (declaration column, id suffix, LOINC code, display, UCUM unit, unit display).
VITALS = [
    ("temperature_c", "temp", "8310-5", "Body temperature", "Cel", "°C"),
    ("spo2", "spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%"),
    ("heart_rate", "hr", "8867-4", "Heart rate", "/min", "beats/minute"),
]
#: Outcome of a check-in prompt (closed prompts only); "missed_system" is the server's fault.
CHECKIN_OUTCOMES = {
    PromptState.completed: "Verified check-in",
    PromptState.failed: "Check-in not verified (awaiting or after staff review)",
    PromptState.missed: "Check-in missed",
    PromptState.missed_system: "Check-in window missed while the system was down (no blame)",
}
EPISODE_STATUS = {
    PersonStatus.enrolled: "planned",
    PersonStatus.active: "active",
    PersonStatus.released: "finished",
}


def instant(value: datetime | None) -> str | None:
    """A FHIR instant; naive datetimes (SQLite) are UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _latest(*values: datetime | None) -> datetime:
    present = [v if v.tzinfo else v.replace(tzinfo=UTC) for v in values if v is not None]
    return max(present)


def _meta(updated: datetime, profile: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"lastUpdated": instant(updated)}
    if profile:
        meta["profile"] = [profile]
    return meta


def patient_ref(person_id: int) -> dict[str, str]:
    return {"reference": f"Patient/{person_id}"}


def patient(person: Person, areas: dict[int, Area]) -> Patient:
    ward = areas.get(person.ward_id)
    district = areas.get(ward.parent_id) if ward and ward.parent_id else None
    city = areas.get(district.parent_id) if district and district.parent_id else None
    identifiers = [{"use": "usual", "system": PERSON_ID_SYSTEM, "value": str(person.id)}]
    if person.national_id:
        identifiers.append({"use": "official", "system": CCCD_SYSTEM, "value": person.national_id})
    names = person.full_name.split()
    data: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(person.id),
        "meta": _meta(person.updated_at),
        "identifier": identifiers,
        "active": person.status is not PersonStatus.released,
        # Vietnamese order: family name first, given names last.
        "name": [
            {
                "use": "official",
                "text": person.full_name,
                "family": names[0] if names else None,
                "given": names[1:] or None,
            }
        ],
        "telecom": [{"system": "phone", "value": person.phone, "use": "mobile"}],
        # isocheck does not record sex; FHIR's "unknown" says so rather than guessing.
        "gender": "unknown",
        "address": [
            {
                "use": "home",
                "type": "physical",
                "text": person.home_address,
                "line": [person.home_address],
                "district": district.name if district else None,
                "city": city.name if city else None,
                "country": "VN",
            }
        ],
    }
    if ward is not None:
        # R4 Address has no ward element; VN Core carries the ward in line/text; we add it too.
        data["address"][0]["line"].append(ward.name)
    if isinstance(person.date_of_birth, date):
        data["birthDate"] = person.date_of_birth.isoformat()
    return Patient.model_validate(data)


def episode_of_care(person: Person, areas: dict[int, Area]) -> EpisodeOfCare:
    ward = areas.get(person.ward_id)
    end = person.released_at or person.isolation_end
    data: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "id": str(person.id),
        "meta": _meta(person.updated_at),
        "status": EPISODE_STATUS[person.status],
        "type": [{"text": f"Home isolation ({person.category.value})"}],
        "patient": patient_ref(person.id),
        "period": {"start": instant(person.isolation_start), "end": instant(end)},
        "managingOrganization": {
            "identifier": {"system": f"{BASE}/sid/area", "value": ward.code},
            "display": f"Trạm Y tế {ward.name}",
        }
        if ward
        else None,
    }
    if person.doctor_id is not None:
        data["careManager"] = {"reference": f"Practitioner/{person.doctor_id}"}
    return EpisodeOfCare.model_validate(data)


def _declaration_updated(d: Declaration) -> datetime:
    return _latest(d.received_at, d.measured_at)


def vital_observations(d: Declaration) -> list[Observation]:
    """One vital-signs Observation per measured value of a declaration."""
    out = []
    for column, suffix, code, display, unit, unit_display in VITALS:
        value = getattr(d, column)
        if value is None:
            continue
        out.append(
            Observation.model_validate(
                {
                    "resourceType": "Observation",
                    "id": f"decl-{d.id}-{suffix}",
                    "meta": _meta(_declaration_updated(d), VITALS_PROFILE),
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": OBS_CATEGORY,
                                    "code": "vital-signs",
                                    "display": "Vital Signs",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [{"system": LOINC, "code": code, "display": display}],
                        "text": display,
                    },
                    "subject": patient_ref(d.person_id),
                    "effectiveDateTime": instant(d.measured_at),
                    "issued": instant(d.received_at),
                    "valueQuantity": {
                        "value": value,
                        "unit": unit_display,
                        "system": UCUM,
                        "code": unit,
                    },
                    "derivedFrom": [{"reference": f"QuestionnaireResponse/{d.id}"}],
                }
            )
        )
    return out


def symptom_observation(d: Declaration) -> Observation:
    """The declared symptoms (possibly none) as one survey Observation, a component each."""
    symptoms = list(d.symptoms or [])
    data: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"decl-{d.id}-symptoms",
        "meta": _meta(_declaration_updated(d)),
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "survey"}]}],
        "code": {
            "coding": [{"system": LOINC, "code": "75325-1", "display": "Symptom"}],
            "text": "Declared symptoms",
        },
        "subject": patient_ref(d.person_id),
        "effectiveDateTime": instant(d.measured_at),
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{d.id}"}],
    }
    if symptoms:
        data["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": "75325-1", "display": "Symptom"}]},
                "valueCodeableConcept": {"coding": [{"system": SYMPTOM_SYSTEM, "code": s}]},
            }
            for s in symptoms
        ]
    else:
        data["valueBoolean"] = False  # "no symptoms" is a declaration too
    return Observation.model_validate(data)


def questionnaire_response(d: Declaration) -> QuestionnaireResponse:
    items: list[dict[str, Any]] = []
    if d.temperature_c is not None:
        items.append({"linkId": "temperature_c", "answer": [{"valueDecimal": d.temperature_c}]})
    if d.spo2 is not None:
        items.append({"linkId": "spo2", "answer": [{"valueInteger": d.spo2}]})
    if d.heart_rate is not None:
        items.append({"linkId": "heart_rate", "answer": [{"valueInteger": d.heart_rate}]})
    items.append(
        {
            "linkId": "symptoms",
            "answer": [
                {"valueCoding": {"system": SYMPTOM_SYSTEM, "code": s}} for s in d.symptoms or []
            ]
            or None,
        }
    )
    if d.note:
        items.append({"linkId": "note", "answer": [{"valueString": d.note}]})
    data: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(d.id),
        "meta": _meta(_declaration_updated(d)),
        "questionnaire": QUESTIONNAIRE,
        "status": "completed",
        "subject": patient_ref(d.person_id),
        "authored": instant(d.measured_at),
        "item": items,
    }
    if d.entered_by_id is not None:
        data["author"] = {"reference": f"Practitioner/{d.entered_by_id}"}
    return QuestionnaireResponse.model_validate(data)


def risk_flag(person: Person) -> Flag:
    return Flag.model_validate(
        {
            "resourceType": "Flag",
            "id": f"risk-{person.id}",
            "meta": _meta(person.updated_at),
            "status": "active" if person.status is not PersonStatus.released else "inactive",
            "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical"}]}],
            "code": {
                "coding": [{"system": RISK_SYSTEM, "code": person.risk_level.value}],
                "text": f"Risk level: {person.risk_level.value}"
                + (" (high-risk group)" if person.is_high_risk else ""),
            },
            "subject": patient_ref(person.id),
        }
    )


def alert_updated(a: Alert) -> datetime:
    return _latest(a.created_at, a.acknowledged_at, a.resolved_at)


def alert_flag(a: Alert) -> Flag:
    return Flag.model_validate(
        {
            "resourceType": "Flag",
            "id": f"alert-{a.id}",
            "meta": _meta(alert_updated(a)),
            "status": "inactive" if a.state is AlertState.resolved else "active",
            "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical"}]}],
            "code": {
                "coding": [{"system": ALERT_SYSTEM, "code": a.kind.value}],
                "text": f"Alert {a.kind.value} ({a.state.value}, severity {a.severity})",
            },
            "subject": patient_ref(a.person_id),
            "period": {"start": instant(a.created_at), "end": instant(a.resolved_at)},
        }
    )


def prompt_updated(p: CheckinPrompt) -> datetime:
    return _latest(p.created_at, p.closed_at)


def checkin_observation(p: CheckinPrompt) -> Observation:
    """The outcome of a closed check-in prompt. Only the outcome: no image, template, score or
    location. A failed face match is reported as such, never as non-compliance."""
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "id": f"checkin-{p.id}",
            "meta": _meta(prompt_updated(p)),
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": "activity"}]}],
            "code": {"text": "Home-isolation check-in outcome"},
            "subject": patient_ref(p.person_id),
            "effectivePeriod": {"start": instant(p.opens_at), "end": instant(p.due_at)},
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": CHECKIN_SYSTEM,
                        "code": p.state.value,
                        "display": CHECKIN_OUTCOMES[p.state],
                    }
                ]
            },
        }
    )
