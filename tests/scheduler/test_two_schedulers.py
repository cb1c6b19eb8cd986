"""Two ``isocheck scheduler`` processes racing on the same due rows of one PostgreSQL database,
for every sweep: no duplicate row, no sweep error, and both processes win some of each sweep's
rows (batches of 5, so neither can take a whole backlog in one transaction).

How the race is made real and fair: the test holds ``ACCESS EXCLUSIVE`` locks on the tables the
sweeps read first, starts both processes, waits until both have their sweeps queued on those
locks (``pg_stat_activity``, by ``application_name``), then lets go: every sweep of both
processes starts on the same rows at the same moment. Each process logs ``sweep <name> moved N
rows`` (scheduler/runner.py); the per-process counts show that both won rows.

PostgreSQL only (SQLite has one writer: nothing to race); skips without
``ISOCHECK_TEST_DATABASE_URL``. Runs in CI (``.ci/run`` sets it when a server answers).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from server.alerts.models import Alert
from server.checkins.models import CheckinPrompt
from server.core import audit
from server.core.db import make_engine, make_session_factory
from server.core.enums import (
    AlertKind,
    AlertState,
    AreaKind,
    NotificationState,
    PersonStatus,
    PromptKind,
    PromptState,
    StaffRole,
)
from server.heartbeat import SchedulerHeartbeat
from server.notify.models import Notification
from server.people.models import Area, Person, StaffUser

PG_URL = os.environ.get("ISOCHECK_TEST_DATABASE_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason="needs ISOCHECK_TEST_DATABASE_URL (PostgreSQL)"),
]

PEOPLE = 120  # active: one prompt of each kind, one declaration reminder, one non-reporting alert
RELEASED = 40  # released long ago: their biometrics are due for purging
ESCALATING = 50  # open alerts past their deadline
PENDING = 60  # outbox rows due before the race (more are enqueued by the other sweeps)
BATCH = 5
THREADS = 10  # APScheduler's default thread pool; 12 sweeps run at start-up
#: The sweeps of the issue, each with rows due for it.
RACED = [
    "open_due",
    "remind_due",
    "close_overdue",
    "escalate_alerts",
    "non_reporting",
    "declaration_reminders",
    "purge_biometrics",
    "deliver_notifications",
]
#: Tables the sweeps' first statements read: holding them holds every sweep at its start.
BARRIER_TABLES = [
    "areas", "persons", "checkin_prompts", "checkin_attempts", "alerts", "notifications",
    "declarations", "scheduler_heartbeats", "stored_images", "face_templates", "devices",
]  # fmt: skip
MOVED = re.compile(r"sweep (\w+) moved (\d+) rows")


def _zone_at_local_21h(now: datetime) -> str:
    """A fixed-offset zone where it is now 21:xx: past the declaration reminder time (20:00),
    before quiet hours (22:00) and the end of the local day."""
    offset = (21 - now.hour) % 24
    if offset > 12:
        offset -= 24
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-7 is UTC+7


def _world(session, now: datetime) -> dict:
    areas = []
    parent = None
    for code, kind in (("R", AreaKind.city), ("R-D", AreaKind.district), ("R-D-W", AreaKind.ward)):
        area = Area(code=code, name=code, kind=kind, parent_id=parent.id if parent else None)
        session.add(area)
        session.flush()
        area.path = f"{parent.path if parent else ''}{area.id}/"
        session.add(StaffUser(username=f"s-{code}", full_name=code, password_hash="x",
                              email=f"{code.lower()}@example.invalid",
                              role=StaffRole.area_staff, area_id=area.id))  # fmt: skip
        areas.append(area)
        parent = area
    ward = areas[-1]
    zone = _zone_at_local_21h(now)

    def person(**kw) -> Person:
        p = Person(full_name="Nguyễn Văn A", phone="0900000000", ward_id=ward.id,
                   home_address="1 Đường A", home_lat=10.8, home_lon=106.7, timezone=zone,
                   risk_factors={}, **kw)  # fmt: skip
        session.add(p)
        return p

    active = [person(isolation_start=now - timedelta(days=3), isolation_end=now + timedelta(days=5),
                     status=PersonStatus.active) for _ in range(PEOPLE)]  # fmt: skip
    released = [person(isolation_start=now - timedelta(days=40),
                       isolation_end=now - timedelta(days=20), status=PersonStatus.released,
                       released_at=now - timedelta(days=20)) for _ in range(RELEASED)]
    session.flush()
    prompts: dict[str, list[CheckinPrompt]] = defaultdict(list)
    m = timedelta(minutes=1)
    shapes = {  # (state, opens_at, remind_at, due_at, opened_at)
        "open_due": (PromptState.planned, now - m, None, now + 19 * m, None),
        "remind_due": (PromptState.open, now - 15 * m, now - m, now + 5 * m, now - 15 * m),
        "close_overdue": (PromptState.open, now - 40 * m, None, now - 20 * m, now - 40 * m),
    }
    for kind, (state, opens, remind, due, opened) in shapes.items():
        for i, p in enumerate(active):
            prompt = CheckinPrompt(person_id=p.id, slot_key=f"race/{kind}/{i}",
                                   kind=PromptKind.scheduled, state=state, opens_at=opens,
                                   remind_at=remind, due_at=due, nonce=uuid.uuid4().hex,
                                   opened_at=opened)  # fmt: skip
            session.add(prompt)
            prompts[kind].append(prompt)
    alerts = [
        Alert(person_id=active[i % PEOPLE].id, area_id=ward.id, kind=AlertKind.high_risk,
              severity=2, state=AlertState.open, dedupe_key=f"race:{i}", escalation_level=0,
              next_escalation_at=now - m, created_at=now - 2 * timedelta(hours=1))
        for i in range(ESCALATING)
    ]  # fmt: skip
    session.add_all(alerts)
    session.add_all(
        Notification(channel="log", recipient=f"person:{active[i % PEOPLE].id}",
                     payload={"kind": "race"}, idempotency_key=f"race:{i}",
                     state=NotificationState.pending, next_attempt_at=now - m, created_at=now)
        for i in range(PENDING)
    )  # fmt: skip
    # the scheduler was alive until just now: overdue prompts are the person's (missed + alert)
    session.add(SchedulerHeartbeat(name="close_overdue", last_run_at=now - timedelta(seconds=5),
                                   instance="test"))  # fmt: skip
    session.commit()
    return {
        "active": [p.id for p in active],
        "released": [p.id for p in released],
        "prompts": {k: [p.id for p in v] for k, v in prompts.items()},
        "alerts": [a.id for a in alerts],
    }


def _isocheck() -> str:
    found = Path(sys.executable).with_name("isocheck")
    return str(found) if found.exists() else (shutil.which("isocheck") or "isocheck")


def _waiting(conn, tag: str) -> int:
    n = conn.execute(
        text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :t "
             "AND wait_event_type = 'Lock'"), {"t": tag},
    ).scalar()  # fmt: skip
    return int(n or 0)


def _finished(s, world) -> bool:
    P = CheckinPrompt
    done = [
        s.scalar(select(func.count()).where(P.id.in_(world["prompts"]["open_due"]),
                                            P.state == PromptState.planned)) == 0,
        s.scalar(select(func.count()).where(P.id.in_(world["prompts"]["remind_due"]),
                                            P.reminded_at.is_(None))) == 0,
        s.scalar(select(func.count()).where(P.id.in_(world["prompts"]["close_overdue"]),
                                            P.state == PromptState.open)) == 0,
        s.scalar(select(func.count()).where(Alert.id.in_(world["alerts"]),
                                            Alert.escalation_level == 0)) == 0,
        s.scalar(select(func.count()).where(Alert.kind == AlertKind.non_reporting)) == PEOPLE,
        s.scalar(select(func.count()).where(
            Notification.idempotency_key.startswith("declaration_reminder:"))) == PEOPLE,
        s.scalar(select(func.count()).where(Person.id.in_(world["released"]),
                                            Person.biometrics_purged_at.is_(None))) == 0,
        s.scalar(select(func.count()).where(
            Notification.state.in_((NotificationState.pending, NotificationState.sending)))) == 0,
    ]  # fmt: skip
    return all(done)


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    """Build the world in a fresh schema, run the two processes through the barrier, stop them
    when every due row is done; yields what the tests inspect."""
    from server.models import Base

    schema = f"race_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url = base.render_as_string(hide_password=False)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    with factory() as s:
        world = _world(s, now)

    data_dir = tmp_path_factory.mktemp("race-data")
    tag = f"race-{uuid.uuid4().hex[:8]}"
    env_common = {
        **os.environ,
        "ISOCHECK_MODE": "demo",
        "ISOCHECK_DATA_DIR": str(data_dir),
        "ISOCHECK_SECRET_KEY": "race-test-" + "k" * 40,
        "ISOCHECK_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ISOCHECK_SCHEDULER_BATCH_SIZE": str(BATCH),
        "ISOCHECK_NOTIFY_BATCH_SIZE": str(BATCH),
        "ISOCHECK_SCHEDULER_INTERVAL_SECONDS": "1",
        "ISOCHECK_LOG_LEVEL": "INFO",
        "ISOCHECK_LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
    }
    barrier = engine.connect()
    barrier.execute(text(f"LOCK TABLE {', '.join(BARRIER_TABLES)} IN ACCESS EXCLUSIVE MODE"))
    procs, logs = {}, {}
    try:
        for name in ("a", "b"):
            app_url = base.update_query_dict({"application_name": f"{tag}-{name}"})
            logs[name] = data_dir / f"scheduler-{name}.log"
            procs[name] = subprocess.Popen(  # noqa: S603 - our own command
                [_isocheck(), "scheduler"],
                env={**env_common,
                     "ISOCHECK_DATABASE_URL": app_url.render_as_string(hide_password=False)},
                stdout=subprocess.DEVNULL, stderr=logs[name].open("w"),
            )  # fmt: skip
        # both processes' sweeps queue on the locks, then go at once. Every worker thread (10
        # each, APScheduler's default pool, all taken by start-up sweeps) must be waiting: with
        # 8, a sweep whose thread had not reached its lock yet on a loaded machine came late,
        # found its rows taken by the other process, and the race was not one.
        deadline = time.monotonic() + 90
        with admin.connect() as watch:
            while time.monotonic() < deadline:
                queued = [_waiting(watch, f"{tag}-{n}") for n in procs]
                watch.commit()
                if min(queued) >= THREADS or any(p.poll() is not None for p in procs.values()):
                    break
                time.sleep(0.1)
        barrier.rollback()  # let go: the race starts
        started = time.monotonic()
        finished = False
        while time.monotonic() - started < 120 and not finished:
            time.sleep(0.5)
            if any(p.poll() is not None for p in procs.values()):
                break
            with factory() as s:
                finished = _finished(s, world)
        time.sleep(1.5)  # a last tick of each, on nothing
    finally:
        barrier.close()
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
    outputs = {n: logs[n].read_text(errors="replace") for n in procs}
    moved: dict[str, Counter] = {n: Counter() for n in procs}
    for n, out in outputs.items():
        for sweep, count in MOVED.findall(out):
            moved[n][sweep] += int(count)
    try:
        yield {"factory": factory, "world": world, "outputs": outputs, "moved": moved,
               "finished": finished, "queued": queued}  # fmt: skip
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_both_processes_ran_and_finished_the_work(race):
    assert race["finished"], {n: out[-3000:] for n, out in race["outputs"].items()}
    assert min(race["queued"]) >= THREADS, race["queued"]  # the barrier held every thread of both
    for name, out in race["outputs"].items():
        assert "isocheck scheduler running" in out, (name, out[-2000:])
        assert "Traceback" not in out, (name, out[-4000:])
        assert "could not record heartbeat" not in out, name


def _count(s, *where, model=Notification) -> int:
    return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _no_duplicates(s, sweep: str, world: dict) -> None:
    P = CheckinPrompt
    N = Notification
    if sweep in ("open_due", "remind_due"):
        ids = world["prompts"][sweep]
        suffix = "open" if sweep == "open_due" else "remind"
        per = Counter(
            s.scalars(select(N.prompt_id).where(N.prompt_id.in_(ids),
                                                N.idempotency_key.like(f"prompt:%:{suffix}:%")))
        )  # fmt: skip
        assert set(per) == set(ids) and set(per.values()) == {1}
        if sweep == "open_due":
            assert _count(s, P.id.in_(ids), P.state == PromptState.open, model=P) == len(ids)
    elif sweep == "close_overdue":
        ids = world["prompts"][sweep]
        assert _count(s, P.id.in_(ids), P.state == PromptState.missed, model=P) == len(ids)
        per = Counter(s.scalars(select(Alert.prompt_id).where(Alert.prompt_id.in_(ids))))
        assert set(per) == set(ids) and set(per.values()) == {1}
        told = Counter(s.scalars(select(N.alert_id).join(Alert, Alert.id == N.alert_id)
                                 .where(Alert.prompt_id.in_(ids))))  # fmt: skip
        assert len(told) == len(ids) and set(told.values()) == {1}  # the ward's one staff
    elif sweep == "escalate_alerts":
        ids = world["alerts"]
        levels = Counter(s.scalars(select(Alert.escalation_level).where(Alert.id.in_(ids))))
        assert levels == {1: len(ids)}  # one step each, not two
        steps = Counter(s.scalars(select(audit.AuditEvent.target_id).where(
            audit.AuditEvent.action == "alert.escalate")))  # fmt: skip
        assert set(steps) == set(ids) and set(steps.values()) == {1}
        district = Counter(s.scalars(select(N.alert_id).where(
            N.alert_id.in_(ids), N.idempotency_key.like("alert:%:L1:%"))))  # fmt: skip
        assert set(district) == set(ids) and set(district.values()) == {1}
    elif sweep == "non_reporting":
        per = Counter(s.scalars(select(Alert.person_id).where(
            Alert.kind == AlertKind.non_reporting)))  # fmt: skip
        assert set(per) == set(world["active"]) and set(per.values()) == {1}
    elif sweep == "declaration_reminders":
        per = Counter(s.scalars(select(N.person_id).where(
            N.idempotency_key.startswith("declaration_reminder:"))))  # fmt: skip
        assert set(per) == set(world["active"]) and set(per.values()) == {1}
    elif sweep == "purge_biometrics":
        ids = world["released"]
        assert _count(s, Person.id.in_(ids), Person.biometrics_purged_at.is_(None),
                      model=Person) == 0  # fmt: skip
        per = Counter(s.scalars(select(audit.AuditEvent.target_id).where(
            audit.AuditEvent.action == "biometrics.purge")))  # fmt: skip
        assert set(per) == set(ids) and set(per.values()) == {1}
    elif sweep == "deliver_notifications":
        states = Counter(s.scalars(select(N.state)))
        assert set(states) == {NotificationState.sent}, states
        # claimed once each: a row two senders had both sent would show attempts == 2
        assert _count(s, N.attempts != 1) == 0
    else:  # pragma: no cover
        raise AssertionError(sweep)


@pytest.mark.parametrize("sweep", RACED)
def test_two_processes_race_on_the_sweep(race, sweep):
    assert race["finished"]
    for name, out in race["outputs"].items():
        assert f"sweep {sweep} failed" not in out, (name, out[-4000:])
    with race["factory"]() as s:
        beat = s.get(SchedulerHeartbeat, sweep)
        assert beat is not None and beat.last_error is None
        _no_duplicates(s, sweep, race["world"])
    wins = {n: race["moved"][n][sweep] for n in race["moved"]}
    assert min(wins.values()) > 0, f"one process took every row of {sweep}: {wins}"
