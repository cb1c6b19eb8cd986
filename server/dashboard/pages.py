"""What every dashboard page shares: the request's clock, address and language, bounded
integer arguments, and the template helpers (``local`` times, ``ago``, texts and labels)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, g, request

from server.dashboard import explain, i18n, schedule_form
from server.dashboard.service import is_manager
from server.http.context import ctx, db_session

#: Largest number a dashboard query or form field takes (pages, days): anything beyond is no
#: page or period a person asks for, and would overflow a timedelta or an SQL OFFSET (issue 13).
MAX_FORM_INT = 1_000_000


def install(bp: Blueprint) -> None:
    """Register the template filter ``local`` and the template context on ``bp``."""
    bp.add_app_template_filter(local_time, "local")
    bp.context_processor(_template_context)


def t(key: str) -> str:
    """The text ``key`` in the request's language."""
    return i18n.text(key, g.get("lang", "vi"))


def now() -> datetime:
    return ctx().clock.now()


def ip() -> str | None:
    return request.remote_addr


def int_value(raw: str | None) -> int | None:
    """An integer of at most :data:`MAX_FORM_INT` in size, else None."""
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if abs(value) <= MAX_FORM_INT else None


def int_arg(name: str) -> int | None:
    return int_value(request.args.get(name))


def local_time(moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if moment is None:
        return "—"
    try:
        return moment.astimezone(ctx().settings.zone).strftime(fmt)
    except (OverflowError, ValueError):  # a stored moment at the edge of the calendar
        return moment.strftime(fmt) + " UTC"


def _template_context() -> dict[str, Any]:
    lang = getattr(g, "lang", "vi")
    return {
        "lang": lang,
        "t": lambda key: i18n.text(key, lang),
        "label": lambda group, value: i18n.label(group, value, lang),
        "code_message": lambda code: i18n.code_message(code, lang),
        "staff": g.get("staff"),
        "now": ctx().clock.now(),
        "ago": _ago,
        "is_manager": bool(g.get("staff")) and is_manager(g.staff),
        "threshold_note": lambda details: explain.threshold_note(details, lang),
        "schedule_form_for": lambda person: schedule_form.for_person(
            session=db_session(), person=person, settings=ctx().settings
        ),
        "alert_reasons": lambda rows: explain.alert_reasons(
            session=db_session(), alerts=[r.alert for r in rows], zone=ctx().settings.zone,
            lang=lang,
        ),
    }


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    lang = getattr(g, "lang", "vi")
    minutes = int((ctx().clock.now() - moment).total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    if minutes < 60:
        return f"{sign}{minutes} {i18n.text('minutes_short', lang)}"
    if minutes < 48 * 60:
        return f"{sign}{minutes // 60} {i18n.text('hours_short', lang)} {minutes % 60:02d}"
    return f"{sign}{minutes // 1440} {i18n.text('days_short', lang)}"
