"""Health declarations: store, assess, keep the person's risk level, raise alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.alerts.service import raise_alert
from server.config import Settings
from server.core import audit
from server.core.enums import AlertKind, AlertState, RiskLevel
from server.core.errors import FieldProblem, InvalidFields
from server.declarations import risk
from server.declarations.models import Declaration
from server.declarations.schemas import DeclarationIn
from server.people.models import Person
from server.schedule.policy import effective_zone

#: A declaration may be entered a little ahead of the server's clock (phone clocks drift) and
#: up to a week late (staff entering a paper record).
FUTURE_SKEW = timedelta(minutes=10)
MAX_AGE = timedelta(days=7)


@dataclass
class Outcome:
    declaration: Declaration
    assessment: risk.Assessment
    alerts_raised: list[str]


def refresh_high_risk(
    *, session: Session, person: Person, now: datetime, zone: ZoneInfo, rules: risk.RuleSet
) -> list[dict[str, str]]:
    """Recompute the high-risk flag (age changes, risk factors are edited); raise the
    ``high_risk`` consultation alert once per person when they are in the group."""
    factors = person.risk_factors or {}
    reasons = risk.high_risk_reasons(
        birth=person.date_of_birth,
        comorbidities=factors.get("comorbidities", []),
        pregnant=bool(factors.get("pregnant")),
        today=now.astimezone(zone).date(),
        rules=rules,
    )
    person.is_high_risk = bool(reasons)
    if reasons:
        raise_alert(
            session=session,
            person=person,
            kind=AlertKind.high_risk,
            now=now,
            dedupe_key=f"high_risk:person:{person.id}",
            details={"reasons": reasons},
        )
    return reasons


def _history(
    *, session: Session, person: Person, measured_at: datetime, zone: ZoneInfo, fever_c: float
) -> risk.History:
    max_spo2 = session.scalar(
        select(func.max(Declaration.spo2)).where(
            Declaration.person_id == person.id,
            Declaration.measured_at >= measured_at - timedelta(hours=24),
            Declaration.measured_at < measured_at,
        )
    )
    rows = session.execute(
        select(Declaration.measured_at, Declaration.temperature_c, Declaration.symptoms).where(
            Declaration.person_id == person.id,
            Declaration.measured_at >= person.isolation_start,
            Declaration.measured_at < measured_at,
        )
    ).all()
    fever_dates = frozenset(
        at.astimezone(zone).date()
        for at, temp, symptoms in rows
        if "fever" in (symptoms or []) or (temp is not None and temp >= fever_c)
    )
    return risk.History(max_spo2_24h=max_spo2, fever_dates=fever_dates)


def submit(
    *,
    session: Session,
    settings: Settings,
    person: Person,
    data: DeclarationIn,
    now: datetime,
    entered_by_id: int | None = None,
) -> Outcome:
    """Store and assess one declaration.

    1. Check ``measured_at`` is plausible (not in the future, not older than a week).
    2. Refresh the high-risk flag (and its once-per-person alert).
    3. Assess with the rules, using the last 24 h (SpO2 trend) and the isolation (fever days).
    4. Store the declaration with its level and fired rules; keep the person's current level.
    5. Red → a ``severe_symptoms`` alert with the shortest acknowledgement deadline, exactly
       once per triggering declaration; while one is open, a new red declaration is absorbed by
       it (counted, evidence kept, no second message: docs/declarations.md).
    """
    if data.measured_at > now + FUTURE_SKEW:
        raise InvalidFields(FieldProblem("measured_at", "in_the_future"))
    if data.measured_at < now - MAX_AGE:
        raise InvalidFields(FieldProblem("measured_at", "older_than_7_days"))
    rules = risk.load_rules(settings.risk_rules_file)
    zone = effective_zone(session=session, person=person, settings=settings)
    refresh_high_risk(session=session, person=person, now=now, zone=zone, rules=rules)
    obs = risk.Observation(
        symptoms=frozenset(s.value for s in data.symptoms),
        temperature_c=data.temperature_c,
        spo2=data.spo2,
        heart_rate=data.heart_rate,
    )
    assessment = risk.evaluate(
        obs,
        history=_history(
            session=session,
            person=person,
            measured_at=data.measured_at,
            zone=zone,
            fever_c=rules.fever_threshold_c,
        ),
        high_risk=person.is_high_risk,
        today=data.measured_at.astimezone(zone).date(),
        rules=rules,
    )
    declaration = Declaration(
        person_id=person.id,
        measured_at=data.measured_at,
        received_at=now,
        temperature_c=data.temperature_c,
        spo2=data.spo2,
        heart_rate=data.heart_rate,
        symptoms=sorted(obs.symptoms),
        note=data.note,
        entered_by_id=entered_by_id,
        risk_level=assessment.level,
        fired_rules=assessment.fired,
    )
    session.add(declaration)
    session.flush()
    latest = session.scalar(
        select(func.max(Declaration.measured_at)).where(Declaration.person_id == person.id)
    )
    if latest == data.measured_at:  # a late paper record does not overwrite a newer state
        person.risk_level = assessment.level
    raised = []
    if assessment.level is RiskLevel.red:
        _alert, created = raise_alert(
            session=session,
            person=person,
            kind=AlertKind.severe_symptoms,
            now=now,
            dedupe_key=f"severe_symptoms:declaration:{declaration.id}",
            declaration_id=declaration.id,
            details={"rules": [r["id"] for r in assessment.fired if r["level"] == "red"]},
        )
        # created, or absorbed by the person's open severe_symptoms alert (counted there, no
        # second message): either way the ward has an open alert for this declaration
        if created or _alert.state is AlertState.open:
            raised.append(AlertKind.severe_symptoms.value)
    audit.record(
        session=session,
        actor_kind="staff" if entered_by_id else "device",
        actor_id=entered_by_id,
        action="declaration.submit",
        target_kind="person",
        target_id=person.id,
        area_id=person.ward_id,
        at=now,
        details={"declaration_id": declaration.id, "level": assessment.level.value},
    )
    return Outcome(declaration=declaration, assessment=assessment, alerts_raised=raised)
