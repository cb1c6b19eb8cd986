"""Whole days on a simulated clock: a month end (31 March → 1 April 2027) and a DST change
(Europe/Warsaw springs forward on 28 March) alongside Asia/Ho_Chi_Minh, then release."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from scheduler_helpers import World, notifications, run_until
from sqlalchemy import select, update

from server.alerts.models import Alert, AlertOccurrence
from server.alerts.service import acknowledge_alert
from server.checkins.models import CheckinPrompt
from server.core.clock import FrozenClock
from server.core.enums import AlertKind, AlertState, PersonStatus, PromptState
from server.notify.models import Notification
from server.people.models import Person
from server.schedule.policy import SchedulePolicy

START = datetime(2027, 3, 27, 0, 0, tzinfo=UTC)
END = datetime(2027, 4, 1, 6, 0, tzinfo=UTC)  # isolation ends; the clock runs on past it
STOP = datetime(2027, 4, 1, 12, 0, tzinfo=UTC)
SLOTS = {"morning", "midday", "evening", "spot-1"}


@pytest.mark.slow  # days of sweeps across a month end and a DST change: ~18 s per database
def test_days_across_month_end_and_dst(session_factory, settings):
    clock = FrozenClock(START)
    with session_factory() as s:
        world = World(s)
        silent_hcm = world.person(start=START, end=END, zone="Asia/Ho_Chi_Minh", name="A")
        silent_waw = world.person(start=START, end=END, zone="Europe/Warsaw", name="B")
        diligent = world.person(start=START, end=END, zone="Asia/Ho_Chi_Minh", name="C")
        district_staff = world.staff[world.district.kind]
        ids = {p.id: p.timezone for p in (silent_hcm, silent_waw, diligent)}

    def on_tick(now):
        with session_factory() as s:
            # C answers every prompt as soon as it opens (as the check-in service would)
            s.execute(update(CheckinPrompt).where(
                CheckinPrompt.person_id == diligent.id, CheckinPrompt.state == PromptState.open,
            ).values(state=PromptState.completed, closed_at=now))
            # the district acknowledges whatever reaches it (the chain itself is tested in
            # test_scheduler_escalation)
            for alert in s.scalars(select(Alert).where(
                    Alert.state == AlertState.open, Alert.escalation_level == 1)):
                acknowledge_alert(session=s, alert_id=alert.id, staff=district_staff, now=now)
            s.commit()

    run_until(session_factory, clock, settings, STOP, on_tick=on_tick)

    policy = SchedulePolicy()
    with session_factory() as s:
        prompts = list(s.scalars(select(CheckinPrompt).order_by(CheckinPrompt.opens_at)))
        by_person: dict[int, list[CheckinPrompt]] = {}
        for p in prompts:
            by_person.setdefault(p.person_id, []).append(p)
            zone = ZoneInfo(ids[p.person_id])
            # nobody is ever prompted in quiet hours (opened, reminded or due)
            for moment in (p.opens_at, p.remind_at, p.due_at - timedelta(seconds=1)):
                assert not policy.is_quiet(moment, zone), (p.slot_key, moment.astimezone(zone))
            assert p.opens_at >= START and p.due_at <= END

        # exactly one prompt per slot: every whole local day has the four slots
        for person_id, rows in by_person.items():
            zone = ZoneInfo(ids[person_id])
            keys = Counter(r.slot_key for r in rows)
            assert max(keys.values()) == 1
            first = START.astimezone(zone).date() + timedelta(days=1)
            last = END.astimezone(zone).date() - timedelta(days=1)
            day = first
            while day <= last:
                assert {k.split("/")[1] for k in keys if k.startswith(day.isoformat())} == SLOTS
                day += timedelta(days=1)
            assert any(k.startswith("2027-03-31") for k in keys)
            assert any(k.startswith("2027-04-01") for k in keys) or zone.key == "Europe/Warsaw"

        # the scheduler never stopped: nobody's prompt is excused, nothing is left open
        states = Counter(p.state for p in prompts)
        assert states[PromptState.missed_system] == 0
        assert states[PromptState.open] == states[PromptState.planned] == 0
        assert all(p.state is PromptState.completed for p in by_person[diligent.id]
                   if p.state is not PromptState.cancelled)
        assert all(p.state is PromptState.missed for pid in (silent_hcm.id, silent_waw.id)
                   for p in by_person[pid] if p.state is not PromptState.cancelled)

        # exactly one push per opened prompt, one reminder per unanswered one
        pushes = Counter(n.prompt_id for n in notifications(
            s, Notification.payload["kind"].as_string() == "checkin_prompt"))
        reminders = Counter(n.prompt_id for n in notifications(
            s, Notification.payload["kind"].as_string() == "checkin_reminder"))
        opened = {p.id for p in prompts if p.opened_at is not None}
        assert set(pushes) == opened and set(pushes.values()) == {1}
        unanswered = {p.id for p in prompts if p.state is PromptState.missed}
        assert set(reminders) == unanswered and set(reminders.values()) == {1}
        assert len(unanswered) >= 2 * 4 * 4

        # every missed prompt is one alert, or one repeat absorbed by its person's alert that was
        # still open (docs/declarations.md, Repeated alerts); none for the person who answered
        missed_alerts = list(s.scalars(select(Alert).where(
            Alert.kind == AlertKind.missed_checkin)))
        repeats = list(s.scalars(select(AlertOccurrence)))
        by_id = {a.id: a for a in missed_alerts}
        assert all(by_id[o.alert_id].person_id == next(
            p.person_id for p in prompts if p.id == o.prompt_id) for o in repeats)
        assert sorted([a.prompt_id for a in missed_alerts] + [o.prompt_id for o in repeats]) \
            == sorted(unanswered)
        assert all(a.occurrences == 1 + sum(o.alert_id == a.id for o in repeats)
                   for a in missed_alerts)
        assert all(a.person_id != diligent.id for a in missed_alerts)
        assert all(a.escalation_level == 1 and a.state is AlertState.acknowledged
                   for a in missed_alerts)

        # released at the end: status, time, nothing live, the phone told once
        for pid in ids:
            person = s.get(Person, pid)
            assert person.status is PersonStatus.released and person.released_at >= END
            told = notifications(s, Notification.person_id == pid,
                                 Notification.payload["kind"].as_string() == "isolation_ended")
            assert len(told) == 1
