"""The schedule policy: when a person is prompted to check in, and how long they have to answer.

A policy is a validated :class:`SchedulePolicy`. It is assembled from levels, each a partial
dictionary of fields, later levels overriding earlier ones (a field is replaced whole, so a
level that sets ``windows`` replaces every window):

1. the built-in defaults of :class:`SchedulePolicy`;
2. ``Settings.schedule_policy`` (``ISOCHECK_SCHEDULE_POLICY``, JSON);
3. the city's, then the district's, then the ward's ``Area.schedule_policy``;
4. the person's ``Person.schedule_policy``.

The same chain (person → ward → district → city → settings) gives the person's time zone.

Times of day are local wall-clock times in the person's zone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.people.models import Area, Person, path_ids

#: The zone of a person when neither they nor any area above them names one and no settings say
#: otherwise (``Settings.timezone`` defaults to it).
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

log = logging.getLogger("isocheck.schedule")


class PolicyError(ValueError):
    """A schedule policy (or one level of overrides) is invalid; the message says why."""


def _minutes(t: time) -> int:
    """Minutes since local midnight of a wall-clock time."""
    return t.hour * 60 + t.minute


def in_daily_period(t: time, start: time, end: time) -> bool:
    """Whether wall-clock ``t`` lies in the daily period ``[start, end)``, which may wrap
    midnight (``22:00``–``06:00``). An empty period (start == end) contains nothing."""
    m, s, e = _minutes(t) + t.second / 60, _minutes(start), _minutes(end)
    if s == e:
        return False
    if s < e:
        return s <= m < e
    return m >= s or m < e


class Window(BaseModel):
    """A fixed daily check-in window (e.g. morning 07:30–09:30, local time).

    The prompt opens at a per-person jittered moment inside the window and is due
    ``response_minutes`` later, so the whole answering period lies inside the window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,20}$", description="slot name, part of slot_key")
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if not self.start < self.end:
            raise ValueError(f"window {self.name!r}: start must be before end (same day)")
        return self

    @property
    def length_minutes(self) -> int:
        return _minutes(self.end) - _minutes(self.start)


DEFAULT_WINDOWS = (
    Window(name="morning", start=time(7, 30), end=time(9, 30)),
    Window(name="midday", start=time(11, 30), end=time(13, 30)),
    Window(name="evening", start=time(17, 30), end=time(19, 30)),
)


class SchedulePolicy(BaseModel):
    """Everything that decides a person's prompts. Defaults follow the pilots named in the issue:
    three fixed daily windows (Vietnam's VHD pilot), 20 minutes to answer (Poland's
    Kwarantanna domowa), one random spot check per day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Fixed daily windows (default: morning, midday, evening). Names must be unique.
    windows: tuple[Window, ...] = DEFAULT_WINDOWS
    #: Minutes the person has to answer a prompt (thời gian phản hồi); 5–60.
    response_minutes: int = Field(20, ge=5, le=60)
    #: Minutes before the due time a reminder is pushed if not yet answered; 0 = no reminder.
    remind_before_due_minutes: int = Field(5, ge=0, le=55)
    #: Random spot checks per day, inside waking hours and outside the fixed windows.
    spot_checks_per_day: int = Field(1, ge=0, le=6)
    waking_start: time = time(7, 0)
    waking_end: time = time(21, 0)
    #: Nobody is ever prompted (opened, reminded or due) in quiet hours; may wrap midnight.
    quiet_start: time = time(22, 0)
    quiet_end: time = time(6, 0)
    #: Selfie attempts allowed per prompt before it fails.
    max_attempts: int = Field(3, ge=1, le=10)
    #: Local time of the daily health-declaration reminder (used by the declarations sweep).
    declaration_reminder_at: time = time(20, 0)
    #: Probability (0–1) that a prompt carries a liveness challenge.
    challenge_probability: float = Field(0.3, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _coherent(self) -> SchedulePolicy:
        names = [w.name for w in self.windows]
        if len(set(names)) != len(names):
            raise ValueError("window names must be unique")
        if any(n.startswith("spot") for n in names):
            raise ValueError("window names may not start with 'spot' (reserved for spot checks)")
        if self.remind_before_due_minutes >= self.response_minutes:
            raise ValueError("remind_before_due_minutes must be shorter than response_minutes")
        if not self.waking_start < self.waking_end:
            raise ValueError("waking_start must be before waking_end (same day)")
        if self.spot_checks_per_day and (
            _minutes(self.waking_end) - _minutes(self.waking_start) < self.response_minutes
        ):
            raise ValueError("waking hours are shorter than one response window")
        for w in self.windows:
            if w.length_minutes < self.response_minutes:
                raise ValueError(
                    f"window {w.name!r} ({w.length_minutes} min) is shorter than the response "
                    f"window ({self.response_minutes} min)"
                )
            if self._hits_quiet(w.start, w.end):
                raise ValueError(f"window {w.name!r} overlaps quiet hours")
        ordered = sorted(self.windows, key=lambda w: w.start)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.start < a.end:
                raise ValueError(f"windows {a.name!r} and {b.name!r} overlap")
        if self.spot_checks_per_day and self._hits_quiet(self.waking_start, self.waking_end):
            raise ValueError("waking hours overlap quiet hours")
        quiet = (_minutes(self.quiet_end) - _minutes(self.quiet_start)) % (24 * 60)
        if self.quiet_start != self.quiet_end and quiet < 60:
            # a shorter quiet period could hide inside one response window unnoticed
            raise ValueError("quiet hours must last at least 60 minutes (or be empty)")
        if in_daily_period(self.declaration_reminder_at, self.quiet_start, self.quiet_end):
            raise ValueError("declaration_reminder_at falls in quiet hours")
        return self

    def _hits_quiet(self, start: time, end: time) -> bool:
        """Whether the same-day period ``[start, end)`` touches quiet hours (minute by minute)."""
        return any(
            in_daily_period(time(m // 60, m % 60), self.quiet_start, self.quiet_end)
            for m in range(_minutes(start), _minutes(end))
        )

    @property
    def response(self) -> timedelta:
        return timedelta(minutes=self.response_minutes)

    def is_quiet(self, moment: datetime, zone: ZoneInfo) -> bool:
        """Whether the UTC ``moment`` falls in quiet hours in ``zone``."""
        return in_daily_period(moment.astimezone(zone).time(), self.quiet_start, self.quiet_end)

    def quiet_ends_at(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """When the quiet hours ``moment`` falls in end (UTC), or None when it is not quiet:
        the moment a message to the person may go out instead."""
        if not self.is_quiet(moment, zone):
            return None
        local = moment.astimezone(zone)
        end = datetime.combine(local.date(), self.quiet_end, tzinfo=zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, tzinfo=zone)
        return end.astimezone(UTC)

    def is_waking(self, moment: datetime, zone: ZoneInfo) -> bool:
        local = moment.astimezone(zone).time()
        return in_daily_period(local, self.waking_start, self.waking_end) or (
            local == self.waking_end
        )


def merge_levels(levels: Iterable[tuple[str, Mapping[str, Any] | None]]) -> SchedulePolicy:
    """Merge ``(label, overrides)`` levels onto the defaults, validating after each level.

    An invalid level is skipped with an error in the log (naming ``label``), so one bad area
    setting never leaves the people below it without prompts; :func:`validate_overrides` is
    what callers use to refuse such a setting before saving it."""
    merged: dict[str, Any] = {}
    policy = SchedulePolicy()
    for label, overrides in levels:
        if not overrides:
            continue
        candidate = {**merged, **overrides}
        try:
            policy = SchedulePolicy.model_validate(candidate)
        except ValidationError as exc:
            log.error("ignoring invalid schedule policy of %s: %s", label, _short(exc))
            continue
        merged = candidate
    return policy


def validate_overrides(
    overrides: Mapping[str, Any], *, base: SchedulePolicy | None = None
) -> SchedulePolicy:
    """The policy ``overrides`` would produce on top of ``base`` (default: the built-in
    defaults); raises :class:`PolicyError` with a readable reason when they are invalid.
    Call it before saving ``Area.schedule_policy`` or ``Person.schedule_policy``."""
    data = (base or SchedulePolicy()).model_dump() | dict(overrides)
    try:
        return SchedulePolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_short(exc)) from exc


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()
    )


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("ignoring unknown time zone %r", name)
        return None


class PolicyResolver:
    """Resolves policies and zones for many people with one query for the areas.

    ``settings_overrides`` and ``default_zone`` come from the settings. Areas are loaded once
    and cached; policies are cached per (ward, person overrides)."""

    def __init__(
        self,
        *,
        session: Session,
        settings_overrides: Mapping[str, Any] | None,
        default_zone: str,
    ) -> None:
        self.session = session
        self.settings_overrides = dict(settings_overrides or {})
        self.default_zone = ZoneInfo(default_zone)
        self._areas: dict[int, Area] = {}
        self._policies: dict[tuple[int, str], SchedulePolicy] = {}
        self._zones: dict[tuple[int, str | None], ZoneInfo] = {}

    def chain(self, ward_id: int) -> list[Area]:
        """The areas from the top (city) down to ``ward_id``."""
        if ward_id not in self._areas:
            self._load([ward_id])
        ward = self._areas.get(ward_id)
        if ward is None:
            return []
        ids = ward.chain_ids
        missing = [i for i in ids if i not in self._areas]
        if missing:
            self._load(missing)
        return [self._areas[i] for i in ids if i in self._areas]

    def _load(self, ids: list[int]) -> None:
        wanted = set(ids)
        rows = self.session.scalars(select(Area).where(Area.id.in_(wanted))).all()
        for area in rows:
            self._areas[area.id] = area
        # paths are loaded with the rows; fetch ancestors in the same way
        ancestors = {
            i for a in rows for i in path_ids(a.path) if i not in self._areas
        }
        if ancestors:
            for area in self.session.scalars(select(Area).where(Area.id.in_(ancestors))):
                self._areas[area.id] = area

    def policy(self, *, ward_id: int, person_overrides: Mapping[str, Any] | None) -> SchedulePolicy:
        key = (ward_id, json.dumps(person_overrides, sort_keys=True, default=str))
        cached = self._policies.get(key)
        if cached is None:
            levels: list[tuple[str, Mapping[str, Any] | None]] = [
                ("settings (ISOCHECK_SCHEDULE_POLICY)", self.settings_overrides)
            ]
            levels += [(f"area {a.code}", a.schedule_policy) for a in self.chain(ward_id)]
            levels.append(("person", person_overrides))
            cached = self._policies[key] = merge_levels(levels)
        return cached

    def zone(self, *, ward_id: int, person_zone: str | None) -> ZoneInfo:
        key = (ward_id, person_zone)
        cached = self._zones.get(key)
        if cached is None:
            cached = _zone(person_zone)
            for area in reversed(self.chain(ward_id)):
                if cached is not None:
                    break
                cached = _zone(area.timezone)
            cached = self._zones[key] = cached or self.default_zone
        return cached


def resolver_for(*, session: Session, settings) -> PolicyResolver:
    """A :class:`PolicyResolver` configured from ``settings`` (a :class:`server.config.Settings`,
    passed in by the caller: this module never reads the environment)."""
    return PolicyResolver(
        session=session,
        settings_overrides=settings.schedule_policy,
        default_zone=settings.timezone,
    )


def effective_policy(*, session: Session, person: Person, settings) -> SchedulePolicy:
    """The person's policy: defaults ← settings ← city ← district ← ward ← person."""
    return resolver_for(session=session, settings=settings).policy(
        ward_id=person.ward_id, person_overrides=person.schedule_policy
    )


def zone_resolver(*, session: Session, settings=None) -> PolicyResolver:
    """A resolver for time zones only (person → ward → district → city → the settings' zone,
    or :data:`DEFAULT_TIMEZONE` for a caller without settings, e.g. a message text)."""
    return PolicyResolver(
        session=session,
        settings_overrides=None,
        default_zone=settings.timezone if settings is not None else DEFAULT_TIMEZONE,
    )


def effective_zone(*, session: Session, person: Person, settings) -> ZoneInfo:
    """The person's time zone: person → ward → district → city → ``settings.timezone``."""
    return resolver_for(session=session, settings=settings).zone(
        ward_id=person.ward_id, person_zone=person.timezone
    )
