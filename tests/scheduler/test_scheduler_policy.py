"""The schedule policy: validation, merging of levels, time zone resolution."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

import pytest
from pydantic import ValidationError
from scheduler_helpers import World

from server.config import load_settings
from server.schedule.policy import (
    PolicyError,
    SchedulePolicy,
    effective_policy,
    effective_zone,
    in_daily_period,
    merge_levels,
    validate_overrides,
)

T = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def test_defaults_are_three_windows_twenty_minutes_one_spot_check():
    p = SchedulePolicy()
    assert [w.name for w in p.windows] == ["morning", "midday", "evening"]
    assert p.response_minutes == 20 and p.spot_checks_per_day == 1 and p.max_attempts == 3
    assert (p.waking_start, p.waking_end) == (time(7), time(21))
    assert (p.quiet_start, p.quiet_end) == (time(22), time(6))


@pytest.mark.parametrize("minutes", [4, 61, 0])
def test_response_window_outside_5_to_60_minutes_is_refused(minutes):
    with pytest.raises(PolicyError, match="response_minutes"):
        validate_overrides({"response_minutes": minutes})


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"windows": [{"name": "late", "start": "21:30", "end": "23:00"}]}, "quiet"),
        ({"windows": [{"name": "a", "start": "08:00", "end": "10:00"},
                      {"name": "b", "start": "09:00", "end": "11:00"}]}, "overlap"),
        ({"windows": [{"name": "short", "start": "08:00", "end": "08:10"}]}, "shorter"),
        ({"windows": [{"name": "x", "start": "10:00", "end": "09:00"}]}, "before end"),
        ({"remind_before_due_minutes": 20}, "remind"),
        ({"quiet_start": "05:00", "quiet_end": "08:00"}, "quiet"),
        ({"declaration_reminder_at": "23:00"}, "quiet"),
        ({"challenge_probability": 1.5}, "challenge_probability"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_incoherent_policies_are_refused_with_a_reason(overrides, reason):
    with pytest.raises(PolicyError, match=reason):
        validate_overrides(overrides)


def test_quiet_hours_may_wrap_midnight():
    assert in_daily_period(time(23), time(22), time(6))
    assert in_daily_period(time(5, 59), time(22), time(6))
    assert not in_daily_period(time(6), time(22), time(6))
    assert not in_daily_period(time(12), time(12), time(12))  # empty


def test_settings_refuse_an_invalid_default_policy(tmp_path):
    with pytest.raises(ValidationError):
        load_settings(data_dir=tmp_path, schedule_policy={"response_minutes": 90})


def test_levels_merge_settings_city_district_ward_person(session, settings, caplog):
    world = World(session)
    world.city.schedule_policy = {"response_minutes": 30, "max_attempts": 5}
    world.district.schedule_policy = {"spot_checks_per_day": 2}
    world.ward.schedule_policy = {"response_minutes": 25}
    settings = settings.model_copy(update={"schedule_policy": {"challenge_probability": 0.9}})
    person = world.person(start=T, end=T + timedelta(days=7), policy={"max_attempts": 2})
    p = effective_policy(session=session, person=person, settings=settings)
    assert p.response_minutes == 25  # ward over city
    assert p.spot_checks_per_day == 2  # district
    assert p.max_attempts == 2  # person over city
    assert p.challenge_probability == 0.9  # settings

    # an invalid level is skipped (logged), the rest still applies
    world.ward.schedule_policy = {"response_minutes": 3}
    with caplog.at_level(logging.ERROR, logger="isocheck.schedule"):
        p = effective_policy(session=session, person=person, settings=settings)
    assert p.response_minutes == 30 and "area W" in caplog.text


def test_merge_replaces_windows_whole():
    p = merge_levels([("city", {"windows": [{"name": "noon", "start": "11:00",
                                             "end": "13:00"}]})])
    assert [w.name for w in p.windows] == ["noon"]


def test_zone_comes_from_person_then_areas_then_settings(session, settings):
    world = World(session, city_zone="Europe/Warsaw")
    person = world.person(start=T, end=T + timedelta(days=7))
    assert effective_zone(session=session, person=person, settings=settings).key == "Europe/Warsaw"
    world.ward.timezone = "Asia/Bangkok"
    assert effective_zone(session=session, person=person, settings=settings).key == "Asia/Bangkok"
    person.timezone = "Asia/Ho_Chi_Minh"
    assert effective_zone(session=session, person=person, settings=settings).key == (
        "Asia/Ho_Chi_Minh"
    )
    other = World(session, prefix="x")
    lone = other.person(start=T, end=T + timedelta(days=7))
    assert effective_zone(session=session, person=lone, settings=settings).key == (
        settings.timezone
    )
