"""Killed mid-sweep and restarted: nothing lost, nothing doubled. Sweeps running concurrently
never double-push or double-alert. The bulk person messages equal notify_person's. The
operators' status command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from scheduler_helpers import World, count, notifications, tick
from sqlalchemy import select

from scheduler.cli import scheduler_status_command
from scheduler.jobs import SWEEPS
from scheduler.runner import run_sweep
from server.alerts.models import Alert, AlertOccurrence
from server.checkins import lifecycle
from server.checkins.models import CheckinPrompt
from server.core.clock import FrozenClock
from server.core.enums import PromptKind, PromptState, StaffRole
from server.heartbeat import SchedulerHeartbeat
from server.notify.models import Notification
from server.notify.persons import PersonMessage, send_to_persons
from server.notify.routing import notify_person
from server.people.models import Device, StaffUser

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def _prompts(session_factory, n, *, state, opens_at, due_at, people=10):
    """``n`` prompts spread over ``people`` people, all in ``state``."""
    with session_factory() as s:
        world = World(s)
        persons = [world.person(start=NOW - timedelta(days=2), end=NOW + timedelta(days=5))
                   for _ in range(people)]
        opened = opens_at if state is PromptState.open else None
        s.add_all(
            CheckinPrompt(person_id=persons[i % people].id, slot_key=f"t/{i}",
                          kind=PromptKind.scheduled, state=state, opens_at=opens_at,
                          remind_at=None, due_at=due_at, nonce=f"n{i}", opened_at=opened)
            for i in range(n)
        )
        # the scheduler was alive just now (the downtime rule reads this)
        s.add(SchedulerHeartbeat(name="close_overdue", last_run_at=NOW - timedelta(seconds=5),
                                 instance="test"))
        s.commit()


def _job(name):
    return next(j for j in SWEEPS if j.name == name)


CHILD = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    sys.path.insert(0, sys.argv[1])
    import server.notify.persons as m
    from scheduler.jobs import SWEEPS
    from scheduler.runner import run_sweep
    from server.core.clock import FrozenClock
    from server.config import load_settings
    from server.core.db import make_engine, make_session_factory

    real, calls = m.send_to_persons, []
    def stall(**kw):
        real(**kw)  # the outbox rows are written, inside the uncommitted transaction
        calls.append(1)
        if len(calls) == 2:  # the first batch is committed; die holding the second
            print("READY", flush=True)
            time.sleep(600)
    m.send_to_persons = stall
    settings = load_settings(database_url=sys.argv[2], data_dir=sys.argv[3],
                             secret_key="k" * 40, scheduler_batch_size=20)
    job = next(j for j in SWEEPS if j.name == "open_due")
    run_sweep(job.name, job.fn, session_factory=make_session_factory(make_engine(sys.argv[2])),
              clock=FrozenClock(datetime.fromisoformat(sys.argv[4])), settings=settings)
""")


@pytest.mark.slow
def test_killed_mid_sweep_then_restarted_loses_and_doubles_nothing(
    session_factory, settings, db_url, tmp_path
):
    _prompts(session_factory, 50, state=PromptState.planned, opens_at=NOW - timedelta(minutes=1),
             due_at=NOW + timedelta(minutes=19))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(REPO), db_url, str(tmp_path / "d"), NOW.isoformat()],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert child.stdout.readline().strip() == "READY"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    with session_factory() as s:
        states = Counter(p.state for p in s.scalars(select(CheckinPrompt)))
        assert states == {PromptState.open: 20, PromptState.planned: 30}  # batch 2 rolled back
        assert count(s, Notification) == 20

    clock = FrozenClock(NOW + timedelta(seconds=5))
    for _ in range(2):
        tick(session_factory, clock, settings, ["open_due"])
    with session_factory() as s:
        assert count(s, CheckinPrompt, CheckinPrompt.state == PromptState.open) == 50
        pushes = Counter(n.prompt_id for n in notifications(s))
        assert len(pushes) == 50 and set(pushes.values()) == {1}


def test_failure_mid_sweep_rolls_back_only_its_batch(session_factory, settings, monkeypatch):
    # one prompt per person: a person's second missed prompt would be absorbed by the first's
    # open alert (tested in test_scheduler_lifecycle), and this test counts alerts per prompt
    _prompts(session_factory, 30, state=PromptState.open, opens_at=NOW - timedelta(minutes=30),
             due_at=NOW - timedelta(minutes=10), people=30)
    real, calls = lifecycle.raise_alerts, []

    def flaky(**kw):
        calls.append(1)
        if len(calls) == 2:  # the second batch
            raise RuntimeError("database went away")
        return real(**kw)

    monkeypatch.setattr(lifecycle, "raise_alerts", flaky)
    small = settings.model_copy(update={"scheduler_batch_size": 10})
    clock = FrozenClock(NOW)
    job = _job("close_overdue")
    outcome = run_sweep(job.name, job.fn, session_factory=session_factory, clock=clock,
                        settings=small)
    assert outcome.error and "database went away" in outcome.error
    with session_factory() as s:
        assert count(s, CheckinPrompt, CheckinPrompt.state == PromptState.missed) == 10
        assert count(s, Alert) == 10
    monkeypatch.setattr(lifecycle, "raise_alerts", real)
    clock.advance(seconds=5)
    for _ in range(2):
        tick(session_factory, clock, small, ["close_overdue"])
    with session_factory() as s:
        assert count(s, CheckinPrompt, CheckinPrompt.state == PromptState.missed) == 30
        alerts = Counter(a.prompt_id for a in s.scalars(select(Alert)))
        assert len(alerts) == 30 and set(alerts.values()) == {1}
        per_alert = Counter(
            n.alert_id for n in notifications(s, Notification.alert_id.is_not(None))
        )
        assert set(per_alert.values()) == {1}


@pytest.mark.parametrize("sweep, state", [("close_overdue", PromptState.open),
                                          ("open_due", PromptState.planned)])
def test_concurrent_sweeps_never_double_alert_or_push(session_factory, settings, sweep, state):
    if state is PromptState.open:
        times = {"opens_at": NOW - timedelta(minutes=30), "due_at": NOW - timedelta(minutes=10)}
    else:
        times = {"opens_at": NOW - timedelta(minutes=1), "due_at": NOW + timedelta(minutes=19)}
    # close_overdue: one prompt per person (a repeat would be absorbed, not a second alert)
    _prompts(session_factory, 200, state=state, people=200 if sweep == "close_overdue" else 10,
             **times)
    small = settings.model_copy(update={"scheduler_batch_size": 25})
    clock = FrozenClock(NOW)
    barrier = threading.Barrier(4)
    errors = []

    def worker():
        barrier.wait()
        out = run_sweep(sweep, _job(sweep).fn, session_factory=session_factory, clock=clock,
                        settings=small)
        if out.error:
            errors.append(out.error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    tick(session_factory, clock, small, [sweep])  # whatever a lock made one skip
    with session_factory() as s:
        moved = PromptState.missed if state is PromptState.open else PromptState.open
        assert count(s, CheckinPrompt, CheckinPrompt.state == moved) == 200
        if sweep == "close_overdue":
            alerts = Counter(a.prompt_id for a in s.scalars(select(Alert)))
            assert len(alerts) == 200 and set(alerts.values()) == {1}
            rows = Counter(n.alert_id for n in notifications(s))
            assert len(rows) == 200 and set(rows.values()) == {1}
        else:
            pushes = Counter(n.prompt_id for n in notifications(s))
            assert len(pushes) == 200 and set(pushes.values()) == {1}


def test_bulk_person_messages_equal_notify_person(session, settings):
    world = World(session)
    a = world.person(start=NOW, end=NOW + timedelta(days=3), zone="Europe/Warsaw")
    b = world.person(start=NOW, end=NOW + timedelta(days=3))
    session.add_all([
        Device(person_id=a.id, token_hash="1" * 64, push_token="tok-1"),
        Device(person_id=a.id, token_hash="2" * 64, push_token="tok-2", revoked_at=NOW),
        Device(person_id=a.id, token_hash="3" * 64, push_token="tok-3"),
        Device(person_id=b.id, token_hash="4" * 64, push_token=None),
    ])
    session.commit()
    payload = {"prompt_id": None, "due_at": NOW + timedelta(minutes=20)}
    for person in (a, b):
        send_to_persons(session=session, now=NOW, messages=[
            PersonMessage(person.id, "checkin_prompt", payload, f"bulk:{person.id}")])
        notify_person(session=session, person=person, kind="checkin_prompt", payload=payload,
                      now=NOW, idempotency_key=f"one:{person.id}")
    session.commit()

    def shape(prefix):
        return sorted(
            (n.channel, n.recipient, n.idempotency_key.split(":", 2)[2], n.person_id,
             {k: v for k, v in n.payload.items() if k != "idempotency_key"}.__repr__())
            for n in notifications(session, Notification.idempotency_key.startswith(prefix))
        )

    assert shape("bulk:") == shape("one:") and len(shape("bulk:")) == 3


def test_status_command_shows_sweeps_and_counts(session_factory, settings, db_url, monkeypatch):
    _prompts(session_factory, 3, state=PromptState.planned, opens_at=NOW - timedelta(minutes=1),
             due_at=NOW + timedelta(minutes=19))
    tick(session_factory, FrozenClock(NOW), settings)
    with session_factory() as s:
        s.get(SchedulerHeartbeat, "remind_due").last_error = "OperationalError: boom"
        s.commit()
    monkeypatch.setenv("ISOCHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("ISOCHECK_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(scheduler_status_command, [])
    assert result.exit_code == 0, result.output
    for text in ("open_due", "close_overdue", "plan_prompts", "error: OperationalError: boom",
                 "open", "missed_system", "alerts by state"):
        assert text in result.output
    assert any(line.split()[:2] == ["open", "3"] for line in result.output.splitlines())


def test_bulk_alert_notifications_equal_notify_alert(session, settings):
    from server.core.enums import AlertKind, StaffRole
    from server.notify.alerts import notify_alert, notify_levels
    from server.people.models import StaffUser

    world = World(session)
    doctor = StaffUser(username="doc", full_name="Bác sĩ", password_hash="x",
                       role=StaffRole.doctor,
                       area_id=world.ward.id, push_token="doc-token", email=None)
    session.add(doctor)
    session.flush()
    world.district.escalation_policy = {"notify": {
        "staff": [{"roles": ["area_staff", "doctor"], "kinds": "*",
                   "channels": ["fcm", "email", "log"]},
                  {"roles": ["admin"], "kinds": ["severe_symptoms"], "channels": ["email"],
                   "levels": [2]}],
        "webhooks": [{"url": "https://ops.example/hook", "kinds": ["missed_checkin"]}]}}
    person = world.person(start=NOW, end=NOW + timedelta(days=3))
    person.doctor_id = doctor.id
    alerts = [
        Alert(person_id=person.id, area_id=world.ward.id, kind=AlertKind(kind), severity=2,
              dedupe_key=f"k{i}", escalation_level=level, created_at=NOW)
        for i, (kind, level) in enumerate([("missed_checkin", 0), ("severe_symptoms", 1),
                                           ("severe_symptoms", 2), ("non_reporting", 2)])
    ]
    session.add_all(alerts)
    session.commit()
    alert_ids = [a.id for a in alerts]

    def rows():
        return sorted(
            (n.channel, n.recipient, n.idempotency_key, n.staff_id, n.alert_id,
             repr(sorted(n.payload.items())))
            for n in notifications(session)
        )

    for alert in alerts:
        notify_alert(session=session, alert=alert, now=NOW)
    one_by_one = rows()
    session.rollback()
    alerts = list(session.scalars(select(Alert).where(Alert.id.in_(alert_ids))))
    notify_levels(session=session, alerts=alerts, now=NOW)
    assert rows() == one_by_one and len(one_by_one) >= 8


def test_missed_prompts_of_one_person_are_one_alert_while_it_is_open(session_factory, settings):
    """Three missed prompts of one person in one sweep: one missed_checkin alert counting 3,
    the other two kept as evidence, the ward told once; the next sweep adds nothing."""
    _prompts(session_factory, 3, state=PromptState.open, opens_at=NOW - timedelta(minutes=30),
             due_at=NOW - timedelta(minutes=10), people=1)
    clock = FrozenClock(NOW)
    for _ in range(2):
        tick(session_factory, clock, settings, ["close_overdue"])
    with session_factory() as s:
        assert count(s, CheckinPrompt, CheckinPrompt.state == PromptState.missed) == 3
        [alert] = s.scalars(select(Alert)).all()
        assert alert.occurrences == 3 and alert.last_occurred_at == NOW
        repeats = s.scalars(select(AlertOccurrence).order_by(AlertOccurrence.id)).all()
        prompt_ids = {p.id for p in s.scalars(select(CheckinPrompt))}
        assert {alert.prompt_id, *(o.prompt_id for o in repeats)} == prompt_ids
        assert [o.dedupe_key for o in repeats] == [
            f"missed_checkin:prompt:{o.prompt_id}" for o in repeats]
        told = Counter(n.alert_id for n in notifications(s, Notification.alert_id.is_not(None)))
        assert set(told) == {alert.id}
        first_round = sum(told.values())

        # the ward takes it on: a later missed prompt is a new alert, told again
        from server.alerts.service import acknowledge_alert

        staff = s.scalar(select(StaffUser).where(StaffUser.role == StaffRole.area_staff))
        acknowledge_alert(session=s, alert_id=alert.id, staff=staff, now=NOW)
        person_id = alert.person_id
        s.add(CheckinPrompt(person_id=person_id, slot_key="t/later", kind=PromptKind.scheduled,
                            state=PromptState.open, opens_at=NOW, remind_at=None,
                            due_at=NOW + timedelta(minutes=20), nonce="later", opened_at=NOW))
        s.commit()
    for _ in range(8):  # the scheduler keeps running (a silent one would excuse the prompt)
        clock.advance(minutes=5)
        tick(session_factory, clock, settings, ["close_overdue"])
    with session_factory() as s:
        assert count(s, Alert) == 2
        told = Counter(n.alert_id for n in notifications(s, Notification.alert_id.is_not(None)))
        assert len(told) == 2 and sum(told.values()) > first_round
