"""Planning: idempotent, jittered, inside the isolation period, DST-safe, re-planned on change."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduler_helpers import World, count
from sqlalchemy import select

from server.checkins.models import CheckinPrompt
from server.checkins.planning import local_to_utc, plan_batch, replan_person
from server.core.enums import PersonStatus, PromptKind, PromptState
from server.schedule.models import SchedulePlan
from server.schedule.policy import SchedulePolicy

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
WAW = ZoneInfo("Europe/Warsaw")
#: 00:30 in Ho Chi Minh City on Tuesday 24 November 2026.
MIDNIGHT = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)


def _plan_all(session, now, settings):
    total, after = 0, 0
    while True:
        batch = plan_batch(session=session, now=now, settings=settings, limit=50,
                           after_id=after)
        session.commit()
        total, after = total + batch.inserted, batch.last_id
        if not batch.people:
            return total


def _prompts(session, person=None):
    q = select(CheckinPrompt).order_by(CheckinPrompt.opens_at)
    if person is not None:
        q = q.where(CheckinPrompt.person_id == person.id)
    return list(session.scalars(q))


def test_planning_is_idempotent_one_row_per_slot(session, settings):
    world = World(session)
    people = [world.person(start=MIDNIGHT, end=MIDNIGHT + timedelta(days=10)) for _ in range(5)]
    first = _plan_all(session, MIDNIGHT, settings)
    # the 36 h horizon from 00:30 reaches tomorrow noon: today and tomorrow are planned whole
    assert first == 5 * 4 * 2
    assert _plan_all(session, MIDNIGHT, settings) == 0
    assert _plan_all(session, MIDNIGHT + timedelta(hours=1), settings) == 0
    rows = _prompts(session)
    assert len({(r.person_id, r.slot_key) for r in rows}) == len(rows) == first
    assert len({r.nonce for r in rows}) == len(rows)
    assert all(r.state is PromptState.planned and r.max_attempts == 3 for r in rows)
    assert Counter(r.kind for r in rows) == {PromptKind.scheduled: 30, PromptKind.spot: 10}
    assert count(session, SchedulePlan) == len(people)
    # a day later only the new day is planned
    assert _plan_all(session, MIDNIGHT + timedelta(days=1), settings) == 5 * 4


def test_prompts_are_jittered_inside_their_windows(session, settings):
    world = World(session)
    for _ in range(40):
        world.person(start=MIDNIGHT, end=MIDNIGHT + timedelta(days=3))
    _plan_all(session, MIDNIGHT, settings)
    policy = SchedulePolicy()
    morning = [r for r in _prompts(session) if r.slot_key == "2026-11-24/morning"]
    assert len(morning) == 40
    assert len({r.opens_at for r in morning}) >= 38  # spread, not the same second
    for r in morning:
        start = local_to_utc(r.opens_at.astimezone(HCM).date(), time(7, 30), HCM)
        assert start <= r.opens_at and r.due_at <= start + timedelta(hours=2)
        assert r.due_at - r.opens_at == timedelta(minutes=20)
        assert r.remind_at == r.due_at - timedelta(minutes=5)
    spread = max(r.opens_at for r in morning) - min(r.opens_at for r in morning)
    assert spread > timedelta(minutes=60)
    # deterministic: the same person and slot always get the same moment
    for r in _prompts(session):
        assert not policy.is_quiet(r.opens_at, HCM)
        assert not policy.is_quiet(r.due_at - timedelta(seconds=1), HCM)


def test_planning_starts_at_isolation_start_and_stops_at_its_end(session, settings):
    world = World(session)
    start = local_to_utc(datetime(2026, 11, 24).date(), time(12, 0), HCM)
    end = local_to_utc(datetime(2026, 11, 25).date(), time(12, 0), HCM)
    person = world.person(start=start, end=end, status=PersonStatus.enrolled)
    _plan_all(session, MIDNIGHT, settings)
    rows = _prompts(session, person)
    assert rows and all(start <= r.opens_at and r.due_at <= end for r in rows)
    keys = {r.slot_key for r in rows}
    assert "2026-11-24/morning" not in keys and "2026-11-24/evening" in keys
    assert "2026-11-25/morning" in keys and "2026-11-25/evening" not in keys
    assert _plan_all(session, MIDNIGHT + timedelta(days=2), settings) == 0


def test_challenges_follow_the_policy_probability(session, settings):
    world = World(session)
    always = world.person(start=MIDNIGHT, end=MIDNIGHT + timedelta(days=2),
                          policy={"challenge_probability": 1.0})
    never = world.person(start=MIDNIGHT, end=MIDNIGHT + timedelta(days=2),
                         policy={"challenge_probability": 0.0, "max_attempts": 5})
    _plan_all(session, MIDNIGHT, settings)
    assert all(r.challenge["kind"] in {"blink", "turn_left", "turn_right"}
               and len(r.challenge["nonce"]) == 16 for r in _prompts(session, always))
    assert all(r.challenge is None and r.max_attempts == 5 for r in _prompts(session, never))


def test_local_times_survive_a_dst_change(session, settings):
    """Europe/Warsaw springs forward on 28 March 2027: 07:30 is 06:30 UTC before, 05:30 after."""
    world = World(session, city_zone="Europe/Warsaw")
    now = datetime(2027, 3, 26, 23, 0, tzinfo=UTC)  # 00:00 CET on Saturday 27 March
    person = world.person(start=now, end=now + timedelta(days=6))
    for day in range(4):
        _plan_all(session, now + timedelta(days=day), settings)
    policy = SchedulePolicy()
    rows = _prompts(session, person)
    by_key = {r.slot_key: r for r in rows}
    for stamp in ("2027-03-27", "2027-03-28", "2027-03-29", "2027-03-30"):
        assert {f"{stamp}/{w}" for w in ("morning", "midday", "evening", "spot-1")} <= set(by_key)
        for w in policy.windows:
            r = by_key[f"{stamp}/{w.name}"]
            local_open = r.opens_at.astimezone(WAW)
            local_due = r.due_at.astimezone(WAW)
            assert w.start <= local_open.time() and local_due.time() <= w.end, r.slot_key
            assert r.due_at - r.opens_at == timedelta(minutes=20)
    before = by_key["2027-03-27/morning"].opens_at.astimezone(WAW).utcoffset()
    after = by_key["2027-03-29/morning"].opens_at.astimezone(WAW).utcoffset()
    assert (before, after) == (timedelta(hours=1), timedelta(hours=2))
    for r in rows:
        assert not policy.is_quiet(r.opens_at, WAW) and not policy.is_quiet(
            r.due_at - timedelta(seconds=1), WAW)


def test_replan_moves_cancels_and_revives(session, settings):
    world = World(session)
    person = world.person(start=MIDNIGHT, end=MIDNIGHT + timedelta(days=5))
    _plan_all(session, MIDNIGHT, settings)
    before = {r.slot_key: r for r in _prompts(session, person)}
    now = MIDNIGHT + timedelta(hours=2)

    # a longer response window moves every future prompt
    person.schedule_policy = {"response_minutes": 30, "spot_checks_per_day": 0}
    result = replan_person(session=session, person=person, now=now, settings=settings)
    session.commit()
    after = {r.slot_key: r for r in _prompts(session, person)}
    assert result.cancelled == 2 + (1 if "2026-11-26/spot-1" in before else 0)
    assert result.moved >= 6
    live = [r for r in after.values() if r.state is PromptState.planned]
    assert all(r.due_at - r.opens_at == timedelta(minutes=30) for r in live)
    assert all(after[k].state is PromptState.cancelled for k in before if "spot" in k)

    # isolation shortened to end tomorrow noon: later prompts are cancelled
    person.isolation_end = local_to_utc(datetime(2026, 11, 25).date(), time(12), HCM)
    replan_person(session=session, person=person, now=now, settings=settings)
    session.commit()
    rows = _prompts(session, person)
    assert all(r.state is PromptState.cancelled for r in rows if r.due_at > person.isolation_end)

    # ...and extended again: the cancelled slots come back with fresh nonces
    old_nonce = after["2026-11-25/evening"].nonce
    person.isolation_end = MIDNIGHT + timedelta(days=5)
    person.schedule_policy = None
    result = replan_person(session=session, person=person, now=now, settings=settings)
    session.commit()
    session.expire_all()
    back = {r.slot_key: r for r in _prompts(session, person)}
    assert back["2026-11-25/evening"].state is PromptState.planned
    assert back["2026-11-25/evening"].nonce != old_nonce
    assert back["2026-11-25/spot-1"].state is PromptState.planned
    assert result.created >= 3

    # release: every future prompt is cancelled, nothing is planned any more
    person.status = PersonStatus.released
    replan_person(session=session, person=person, now=now, settings=settings)
    session.commit()
    assert all(r.state is PromptState.cancelled for r in _prompts(session, person)
               if r.opens_at > now)
    assert _plan_all(session, now + timedelta(days=1), settings) == 0
