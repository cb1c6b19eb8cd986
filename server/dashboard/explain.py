"""Sentences that say *why* on the dashboard's pages (issue 19, item 9): why a check-in's face
thresholds differ from the README's defaults, and why an alert in the queue was raised (the SpO2
value, the missed window, the distance from home …). Small pure-ish functions used by the
templates (registered in ``views._template_context``); every text is in :mod:`i18n`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.alerts.models import AlertOccurrence
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import AlertKind
from server.dashboard import i18n
from server.declarations.models import Declaration


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def threshold_note(details: dict[str, Any] | None, lang: str) -> str | None:
    """Why the accept threshold of a judged check-in is what it is.

    The verifier compares the selfie with each of the person's templates and the best (smallest)
    distance decides; the best of k comparisons gives an impostor k chances, so the accept
    threshold is the one-template threshold (``ISOCHECK_SFACE_ACCEPT``, the README's 0.504)
    plus ``sface_accept_shift[k-1]`` (negative) — ``Verifier.thresholds``. The review threshold
    does not move. ``details`` is the attempt's stored verification result (``distances`` holds
    one distance per template); None when it carries no thresholds."""
    if not details:
        return None
    accept, review = details.get("accept_threshold"), details.get("review_threshold")
    distances = details.get("distances")
    if not isinstance(accept, int | float) or not isinstance(review, int | float):
        return None
    if not isinstance(distances, list) or not distances:
        return None  # an older or hand-made record: the template count is not known
    from server.face_verifier import get_verifier

    s = get_verifier().settings
    embedder = details.get("embedder") or "sface"
    shifts: Sequence[float] = s.sface_accept_shift if embedder == "sface" else s.dlib_accept_shift
    k = len(distances)
    shift = shifts[min(k, len(shifts)) - 1] if shifts else 0.0
    base = round(accept - shift, 4)
    args = {
        "accept": _fmt(accept),
        "review": _fmt(review),
        "base": _fmt(base),
        "k": k,
        "shift": _fmt(abs(shift)),
        "env": "ISOCHECK_SFACE_ACCEPT" if embedder == "sface" else "ISOCHECK_DLIB_ACCEPT",
    }
    key = "threshold_note_shifted" if shift < 0 else "threshold_note_single"
    note = i18n.text(key, lang).format(**args)
    retake = details.get("retake")
    if isinstance(retake, dict) and embedder == "sface":
        note += " " + i18n.text("threshold_note_retake", lang).format(
            retake=_fmt(s.retake_accept)
        )
    return note


# --- why an alert was raised --------------------------------------------------------------


def _window(prompt: CheckinPrompt | None, zone: ZoneInfo) -> dict[str, str] | None:
    if prompt is None:
        return None
    opens, due = prompt.opens_at.astimezone(zone), prompt.due_at.astimezone(zone)
    return {"opens": opens.strftime("%H:%M"), "due": due.strftime("%H:%M"),
            "day": due.strftime("%d/%m")}


def _declaration_reason(d: Declaration, details: dict[str, Any], lang: str) -> str:
    parts = []
    if d.spo2 is not None:
        parts.append(f"SpO2 {d.spo2} %")
    if d.temperature_c is not None:
        parts.append(f"{d.temperature_c:.1f} °C")
    if d.heart_rate is not None:
        parts.append(f"{d.heart_rate} {i18n.text('per_minute', lang)}")
    parts += [i18n.label("symptom", code, lang) for code in (d.symptoms or [])]
    wanted = set(details.get("rules") or [])
    rules = [r.get(lang) or r.get("vi") for r in (d.fired_rules or [])
             if not wanted or r.get("id") in wanted]
    text = ", ".join(parts)
    if rules:
        text += (" — " if text else "") + "; ".join(str(r) for r in rules if r)
    return text


def alert_reasons(
    *, session: Session, alerts: Iterable[Any], zone: ZoneInfo, lang: str
) -> dict[int, str]:
    """``{alert id: one line saying why}`` for the queue's rows (a few queries for all rows).
    An alert that absorbed repeats says what its latest occurrence showed (the row also shows
    "×N, last at …"): the current SpO2, not the first one."""
    alerts = list(alerts)
    repeated = [a.id for a in alerts if (a.occurrences or 1) > 1]
    latest: dict[int, AlertOccurrence] = {}
    if repeated:
        for o in session.scalars(
            select(AlertOccurrence)
            .where(AlertOccurrence.alert_id.in_(repeated))
            .order_by(AlertOccurrence.occurred_at, AlertOccurrence.id)
        ):
            latest[o.alert_id] = o  # the last one wins
    evidence = [(a, latest.get(a.id, a)) for a in alerts]
    prompt_ids = {e.prompt_id for _, e in evidence if e.prompt_id}
    attempt_ids = {e.attempt_id for _, e in evidence if e.attempt_id}
    declaration_ids = {e.declaration_id for _, e in evidence if e.declaration_id}
    prompts = {p.id: p for p in session.scalars(
        select(CheckinPrompt).where(CheckinPrompt.id.in_(prompt_ids)))} if prompt_ids else {}
    attempts = {a.id: a for a in session.scalars(
        select(CheckinAttempt).where(CheckinAttempt.id.in_(attempt_ids)))} if attempt_ids else {}
    declarations = {d.id: d for d in session.scalars(
        select(Declaration).where(Declaration.id.in_(declaration_ids)))} if declaration_ids else {}
    out: dict[int, str] = {}
    for a, e in evidence:
        details = e.details or {}
        window = _window(prompts.get(e.prompt_id), zone)
        attempt = attempts.get(e.attempt_id)
        text = ""
        if a.kind is AlertKind.missed_checkin and window:
            text = i18n.text("why_missed", lang).format(**window)
        elif a.kind is AlertKind.failed_verification:
            code = details.get("last_code") or (attempt.code if attempt else None)
            title = i18n.code_message(code, lang)[0] if code else ""
            if window:
                text = i18n.text("why_failed", lang).format(**window)
            if title:
                text += (": " if text else "") + title
            if attempt is not None and attempt.score is not None:
                text += f" ({i18n.text('distance_score', lang).lower()} {attempt.score:.3f})"
        elif a.kind is AlertKind.outside_home:
            distance = details.get("distance_m")
            if distance is None and attempt is not None:
                distance = attempt.distance_from_home_m
            if distance is not None:
                text = i18n.text("why_outside", lang).format(m=f"{distance:.0f}")
                accuracy = details.get("accuracy_m")
                if accuracy is not None:
                    text += f" (± {accuracy:.0f} m)"
            if window:
                text += (" — " if text else "") + i18n.text("why_window", lang).format(**window)
        elif a.kind is AlertKind.severe_symptoms and e.declaration_id in declarations:
            text = _declaration_reason(declarations[e.declaration_id], details, lang)
        elif a.kind is AlertKind.high_risk:
            text = "; ".join(
                str(r.get(lang) or r.get("vi")) for r in details.get("reasons") or []
                if isinstance(r, dict)
            )
        elif a.kind is AlertKind.non_reporting:
            hours = details.get("hours_without_declaration")
            if isinstance(hours, int | float):
                text = i18n.text("why_non_reporting", lang).format(h=f"{hours:.0f}")
        if text:
            out[a.id] = text
    return out
