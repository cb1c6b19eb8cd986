"""The person's check-in schedule as a form (issue 19, item 6): the policy's fields — the daily
windows, minutes to answer, spot checks per day, quiet hours — instead of a JSON textarea, each
refusal shown at its field.

The form starts from the person's effective policy (ward chain + their overrides). Saving stores
as the person's overrides only what differs from the ward's policy (so a later change of the
ward's schedule still reaches them), and keeps overrides of fields the form does not show (set
in the advanced JSON field). Validation is :class:`server.schedule.policy.SchedulePolicy`'s: its
refusals are mapped to the field they are about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from pydantic import ValidationError

from server.dashboard import i18n

#: Policy fields the form edits; the others stay as they are.
FORM_FIELDS = ("windows", "response_minutes", "spot_checks_per_day", "quiet_start", "quiet_end")
#: Window rows the form offers (the person's windows and one empty row to add one).
MAX_WINDOWS = 6
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::00)?$")


@dataclass
class WindowRow:
    name: str
    start: str
    end: str
    remove: bool = False


@dataclass
class ScheduleForm:
    """What the form shows: values as typed, errors by field id (``w0_start``, ``quiet_end``,
    ``response_minutes`` …, ``form`` for the form as a whole)."""

    windows: list[WindowRow]
    response_minutes: str
    spot_checks_per_day: str
    quiet_start: str
    quiet_end: str
    own: bool  # the person has overrides of their own
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def first_error(self) -> str | None:
        return next(iter(self.errors), None)


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M")


def from_policy(policy: Any, *, own: bool) -> ScheduleForm:
    """The form showing ``policy`` (a SchedulePolicy), with one empty row to add a window."""
    rows = [WindowRow(w.name, _hhmm(w.start), _hhmm(w.end)) for w in policy.windows]
    if len(rows) < MAX_WINDOWS:
        rows.append(WindowRow("", "", ""))
    return ScheduleForm(
        windows=rows,
        response_minutes=str(policy.response_minutes),
        spot_checks_per_day=str(policy.spot_checks_per_day),
        quiet_start=_hhmm(policy.quiet_start),
        quiet_end=_hhmm(policy.quiet_end),
        own=own,
    )


def for_person(*, session, person, settings) -> ScheduleForm:
    from server.schedule.policy import effective_policy

    policy = effective_policy(session=session, person=person, settings=settings)
    return from_policy(policy, own=bool(person.schedule_policy))


def ward_policy(*, session, person, settings) -> Any:
    """The policy the person would have without overrides of their own."""
    from server.schedule.policy import resolver_for

    return resolver_for(session=session, settings=settings).policy(
        ward_id=person.ward_id, person_overrides=None
    )


def _msg(key: str, lang: str, **args: Any) -> str:
    return i18n.text(key, lang).format(**args)


def _time(raw: str) -> time | None:
    m = _TIME.match(raw.strip())
    return time(int(m.group(1)), int(m.group(2))) if m else None


def _int(raw: str, low: int, high: int) -> int | None:
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def parse(
    form: Any, *, base: Any, existing: dict[str, Any] | None, lang: str
) -> tuple[dict[str, Any] | None, ScheduleForm]:
    """``(overrides, shown)`` from the posted ``form``: ``overrides`` is what to store as the
    person's ``schedule_policy`` (None: the ward's schedule applies), or None with
    ``shown.errors`` set when something is refused."""
    count = _int(form.get("windows_count", "0"), 0, MAX_WINDOWS) or 0
    rows = [
        WindowRow(
            name=str(form.get(f"w{i}_name", ""))[:20],
            start=str(form.get(f"w{i}_start", "")).strip()[:8],
            end=str(form.get(f"w{i}_end", "")).strip()[:8],
            remove=form.get(f"w{i}_remove") == "1",
        )
        for i in range(count)
    ]
    shown = ScheduleForm(
        windows=rows,
        response_minutes=str(form.get("response_minutes", "")).strip()[:8],
        spot_checks_per_day=str(form.get("spot_checks_per_day", "")).strip()[:8],
        quiet_start=str(form.get("quiet_start", "")).strip()[:8],
        quiet_end=str(form.get("quiet_end", "")).strip()[:8],
        own=bool(existing),
    )
    errors = shown.errors
    kept = {k: v for k, v in (existing or {}).items() if k not in FORM_FIELDS}
    if form.get("reset") == "1":
        return (kept or None), shown

    windows: list[tuple[int, dict[str, str]]] = []
    used = {r.name for r in rows if r.name}
    for i, r in enumerate(rows):
        if r.remove or (not r.start and not r.end):
            continue
        start, end = _time(r.start), _time(r.end)
        if start is None:
            errors[f"w{i}_start"] = _msg("sched_err_time", lang)
        if end is None:
            errors[f"w{i}_end"] = _msg("sched_err_time", lang)
        if start is not None and end is not None and not start < end:
            errors[f"w{i}_end"] = _msg("sched_err_window_order", lang)
        if not r.name or not re.fullmatch(r"[a-z0-9_]{1,20}", r.name) or r.name.startswith("spot"):
            n = 1
            while f"w{n}" in used:
                n += 1
            r.name = f"w{n}"
            used.add(r.name)
        windows.append((i, {"name": r.name, "start": r.start, "end": r.end}))
    if not windows and not errors:
        errors["w0_start"] = _msg("sched_err_no_window", lang)
    response = _int(shown.response_minutes, 5, 60)
    if response is None:
        errors["response_minutes"] = _msg("sched_err_range", lang, low=5, high=60)
    spots = _int(shown.spot_checks_per_day, 0, 6)
    if spots is None:
        errors["spot_checks_per_day"] = _msg("sched_err_range", lang, low=0, high=6)
    for key in ("quiet_start", "quiet_end"):
        if _time(getattr(shown, key)) is None:
            errors[key] = _msg("sched_err_time", lang)
    if errors:
        return None, shown

    chosen = {
        "windows": [w for _, w in windows],
        "response_minutes": response,
        "spot_checks_per_day": spots,
        "quiet_start": shown.quiet_start,
        "quiet_end": shown.quiet_end,
    }
    base_values = base.model_dump(mode="json")
    overrides = dict(kept)
    for key, value in chosen.items():
        if key == "windows":
            mine = [(w["name"], w["start"][:5], w["end"][:5]) for w in value]
            theirs = [(w["name"], w["start"][:5], w["end"][:5]) for w in base_values["windows"]]
            if mine != theirs:
                overrides[key] = value
        elif str(base_values[key])[:5] != str(value)[:5]:
            overrides[key] = value
    from server.schedule.policy import SchedulePolicy

    try:
        SchedulePolicy.model_validate(base_values | overrides)
    except ValidationError as exc:
        rows_by_name = {w["name"]: i for i, w in windows}
        for e in exc.errors():
            where, text = _place(str(e.get("msg", "")), e.get("loc", ()), rows_by_name, lang,
                                 response)
            errors.setdefault(where, text)
        return None, shown
    return (overrides or None), shown


def _place(
    msg: str, loc: tuple, rows: dict[str, int], lang: str, response: int | None
) -> tuple[str, str]:
    """The field a policy refusal is about, and its text there."""
    msg = msg.removeprefix("Value error, ")
    if m := re.fullmatch(r"window '([^']+)' \(.*\) is shorter than.*", msg):
        return f"w{rows.get(m.group(1), 0)}_end", _msg("sched_err_short", lang, n=response)
    if m := re.fullmatch(r"window '([^']+)' overlaps quiet hours", msg):
        return f"w{rows.get(m.group(1), 0)}_start", _msg("sched_err_quiet", lang)
    if m := re.fullmatch(r"windows '([^']+)' and '([^']+)' overlap", msg):
        return f"w{rows.get(m.group(2), 0)}_start", _msg(
            "sched_err_overlap", lang, n=rows.get(m.group(1), 0) + 1
        )
    if m := re.fullmatch(r"window '([^']+)': start must be before end.*", msg):
        return f"w{rows.get(m.group(1), 0)}_end", _msg("sched_err_window_order", lang)
    if msg.startswith("remind_before_due_minutes"):
        return "response_minutes", _msg("sched_err_remind", lang)
    if msg.startswith("waking hours are shorter"):
        return "spot_checks_per_day", _msg("sched_err_waking", lang)
    if msg.startswith("waking hours overlap quiet hours"):
        return "quiet_start", _msg("sched_err_quiet_waking", lang)
    if msg.startswith("quiet hours must last"):
        return "quiet_end", _msg("sched_err_quiet_short", lang)
    if msg.startswith("declaration_reminder_at"):
        return "quiet_start", _msg("sched_err_quiet_reminder", lang)
    return "form", i18n.policy_message(msg, lang)
